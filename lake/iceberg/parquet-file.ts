// Parquet data and equality-delete files: written with hyparquet-writer from an Iceberg schema (field ids, spec
// types, the schema JSON under `iceberg.schema`), read back with hyparquet for compaction. Reading resolves
// columns by field id, so files written before a column was added read that column as null.
import { parquetMetadata, parquetReadObjects, parquetSchema as parquetTree, type FileMetaData } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { tableError } from './errors.ts';
import { columnData, parquetSchema } from './schema-parquet.ts';
import { columnMetrics, emptyMetrics, footerMetrics, type FileMetrics } from './stats.ts';
import type { IcebergSchema, Row } from './types.ts';
import { fromStored } from './values.ts';

/** Rows per row group: large enough for efficient scans, small enough to bound a reader's memory per group. */
const ROW_GROUP_ROWS = 100_000;

export interface WrittenFile {
  bytes: Uint8Array;
  metrics: FileMetrics;
}

/** One Parquet file holding `rows` under `schema` (snappy-compressed, statistics on). */
export function writeParquet(schema: IcebergSchema, rows: Row[]): WrittenFile {
  const elements = parquetSchema(schema);
  const columns = columnData(schema, rows);
  const buffer = parquetWriteBuffer({
    schema: elements,
    columnData: columns,
    codec: 'SNAPPY',
    rowGroupSize: ROW_GROUP_ROWS,
    kvMetadata: [{ key: 'iceberg.schema', value: JSON.stringify(schema) }],
    createdBy: 'lakebase iceberg writer',
  });
  const metrics = emptyMetrics(rows.length);
  columnMetrics(schema, columns.map((c) => Array.from(c.data as ArrayLike<unknown>)), metrics);
  footerMetrics(parquetMetadata(buffer), elements, metrics);
  return { bytes: new Uint8Array(buffer), metrics };
}

/** The footer with decimal annotations dropped, so hyparquet hands back exact unscaled integers, not floats. */
function rawDecimals(footer: FileMetaData): FileMetaData {
  const schema = footer.schema.map((e) =>
    e.converted_type === 'DECIMAL' || e.logical_type?.type === 'DECIMAL' ? { ...e, converted_type: undefined, logical_type: undefined } : e,
  );
  return { ...footer, schema };
}

/** The rows of a Parquet file as `schema` sees them: columns matched by field id, absent columns null. */
export async function readParquet(bytes: Uint8Array, schema: IcebergSchema, where: string): Promise<Row[]> {
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let footer: FileMetaData;
  try {
    footer = parquetMetadata(file);
  } catch (err) {
    throw tableError('bad_parquet', `${where} is not a readable Parquet file; the table is damaged`, err);
  }
  const byId = new Map<number, string>();
  for (const child of parquetTree(footer).children) {
    if (child.element.field_id !== undefined) byId.set(child.element.field_id, child.element.name);
  }
  const raw = await parquetReadObjects({
    file,
    metadata: rawDecimals(footer),
    utf8: false,
    parsers: {
      dateFromDays: (days: number) => days,
      timestampFromMilliseconds: (ms: bigint) => ms * 1000n,
      timestampFromMicroseconds: (us: bigint) => us,
      timestampFromNanoseconds: (ns: bigint) => ns / 1000n,
    },
  });
  return raw.map((r) => {
    const row: Row = {};
    for (const f of schema.fields) {
      const column = byId.get(f.id);
      row[f.name] = column === undefined ? null : fromStored(f.type, r[column]);
    }
    return row;
  });
}
