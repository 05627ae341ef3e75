// One Parquet file of a synced table's source, read with hyparquet: checked to be Parquet (the PAR1 magic at both
// ends), its schema as Postgres columns, and its rows in the JS forms lake/load/pg-json.ts takes: dates as days,
// timestamps as microseconds (bigint), decimals as their unscaled integers (no float ever holds one), JSON as text.
import { parquetMetadata, parquetReadObjects, parquetSchema, type FileMetaData } from 'hyparquet';
import type { LoadColumn } from './columns.ts';
import { loadError } from './errors.ts';
import { parquetColumns } from './parquet-columns.ts';

export type SourceRow = Record<string, unknown>;

const MAGIC = 'PAR1';

/** Whether the bytes are a Parquet file (its magic at the start and the end). */
export function isParquet(bytes: Uint8Array): boolean {
  if (bytes.length < 12) return false;
  const text = (from: number) => String.fromCharCode(...bytes.subarray(from, from + 4));
  return text(0) === MAGIC && text(bytes.length - 4) === MAGIC;
}

function arrayBufferOf(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** The footer of a file, or a 400 naming it. */
export function footerOf(bytes: Uint8Array, where: string): FileMetaData {
  if (!isParquet(bytes)) throw loadError(400, 'BAD_SOURCE', `${where} is not a Parquet file (no PAR1 magic)`);
  try {
    return parquetMetadata(arrayBufferOf(bytes));
  } catch (e) {
    throw loadError(400, 'BAD_SOURCE', `${where} is not a readable Parquet file: ${(e as Error).message}`, e);
  }
}

export function fileColumns(footer: FileMetaData): LoadColumn[] {
  return parquetColumns(parquetSchema(footer));
}

/** The footer with decimal annotations dropped, so hyparquet hands back exact unscaled integers, not floats. */
function rawDecimals(footer: FileMetaData): FileMetaData {
  const schema = footer.schema.map((e) =>
    e.converted_type === 'DECIMAL' || e.logical_type?.type === 'DECIMAL' ? { ...e, converted_type: undefined, logical_type: undefined } : e,
  );
  return { ...footer, schema };
}

const decoder = new TextDecoder();

/** Every row of the file, as objects keyed by top-level column name. */
export async function readParquetRows(bytes: Uint8Array, footer: FileMetaData, where: string): Promise<SourceRow[]> {
  try {
    return (await parquetReadObjects({
      file: arrayBufferOf(bytes),
      metadata: rawDecimals(footer),
      utf8: false,
      parsers: {
        dateFromDays: (days: number) => days,
        timestampFromMilliseconds: (ms: bigint) => BigInt(ms) * 1000n,
        timestampFromMicroseconds: (us: bigint) => BigInt(us),
        timestampFromNanoseconds: (ns: bigint) => BigInt(ns) / 1000n,
        stringFromBytes: (b: Uint8Array) => b && decoder.decode(b),
        jsonFromBytes: (b: Uint8Array) => b && { jsonText: decoder.decode(b) },
        geometryFromBytes: (b: Uint8Array) => b,
        geographyFromBytes: (b: Uint8Array) => b,
        uuidFromBytes: (b: Uint8Array) => b && uuidText(b),
      },
    })) as SourceRow[];
  } catch (e) {
    throw loadError(422, 'SOURCE_NOT_LOADABLE', `${where} could not be read: ${(e as Error).message}`, e);
  }
}

function uuidText(b: Uint8Array): string {
  const hex = Buffer.from(b).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
