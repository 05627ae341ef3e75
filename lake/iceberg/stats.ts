// Column metrics for manifest entries (value, null and NaN counts, lower/upper bounds, column sizes, split
// offsets). Engines prune files with them, so a bound is only written where its order and serialisation are
// unambiguous (spec Appendix D): booleans, ints, longs, dates, timestamps and decimals of top-level columns.
import type { FileMetaData } from 'hyparquet';
import type { SchemaElement } from 'hyparquet-writer';
import { decimalType, isList } from './schema.ts';
import type { IcebergField, IcebergSchema } from './types.ts';

export interface FileMetrics {
  recordCount: number;
  columnSizes: Map<number, bigint>;
  valueCounts: Map<number, bigint>;
  nullValueCounts: Map<number, bigint>;
  nanValueCounts: Map<number, bigint>;
  lowerBounds: Map<number, Uint8Array>;
  upperBounds: Map<number, Uint8Array>;
  splitOffsets: bigint[];
}

type Bounded = number | bigint | boolean;

function le(bytes: number, write: (view: DataView) => void): Uint8Array {
  const out = new Uint8Array(bytes);
  write(new DataView(out.buffer));
  return out;
}

/** Minimal two's-complement big-endian bytes of an integer (decimal bounds). */
export function minimalBigEndian(value: bigint): Uint8Array {
  const bytes: number[] = [];
  let v = value;
  for (;;) {
    const byte = Number(v & 0xffn);
    bytes.unshift(byte);
    v >>= 8n;
    if ((v === 0n && !(byte & 0x80)) || (v === -1n && byte & 0x80)) return new Uint8Array(bytes);
  }
}

/** Appendix D single-value serialisation for the types that get bounds; null for the others. */
function serializeBound(field: IcebergField, value: Bounded): Uint8Array | null {
  if (decimalType(field.type)) return minimalBigEndian(BigInt(value));
  switch (field.type) {
    case 'boolean':
      return new Uint8Array([value ? 1 : 0]);
    case 'int':
    case 'date':
      return le(4, (v) => v.setInt32(0, Number(value), true));
    case 'long':
    case 'timestamp':
    case 'timestamptz':
      return le(8, (v) => v.setBigInt64(0, BigInt(value), true));
    default:
      return null;
  }
}

function hasBounds(field: IcebergField): boolean {
  if (isList(field.type)) return false;
  return decimalType(field.type) !== null || ['boolean', 'int', 'date', 'long', 'timestamp', 'timestamptz'].includes(field.type);
}

/** Counts and bounds of the top-level columns, from the stored column values (after values.ts `toStored`). */
export function columnMetrics(schema: IcebergSchema, columns: unknown[][], metrics: FileMetrics): void {
  schema.fields.forEach((field, i) => {
    if (isList(field.type)) return;
    const values = columns[i];
    let nulls = 0n;
    let nans = 0n;
    let min: Bounded | undefined;
    let max: Bounded | undefined;
    for (const v of values) {
      if (v === null || v === undefined) nulls++;
      else if (typeof v === 'number' && Number.isNaN(v)) nans++;
      else if (hasBounds(field)) {
        const b = v as Bounded;
        if (min === undefined || b < min) min = b;
        if (max === undefined || b > max) max = b;
      }
    }
    metrics.valueCounts.set(field.id, BigInt(values.length));
    metrics.nullValueCounts.set(field.id, nulls);
    if (field.type === 'float' || field.type === 'double') metrics.nanValueCounts.set(field.id, nans);
    if (min !== undefined && max !== undefined) {
      const lo = serializeBound(field, min);
      const hi = serializeBound(field, max);
      if (lo && hi) {
        metrics.lowerBounds.set(field.id, lo);
        metrics.upperBounds.set(field.id, hi);
      }
    }
  });
}

/** Leaf column path (names joined by '.') -> field id, from the Parquet schema this writer built. */
function leafIds(elements: SchemaElement[]): Map<string, number> {
  const out = new Map<string, number>();
  let next = 1;
  const walk = (path: string[]): void => {
    const e = elements[next++];
    const here = [...path, e.name];
    if (!e.num_children) {
      if (e.field_id !== undefined) out.set(here.join('.'), e.field_id);
      return;
    }
    for (let i = 0; i < e.num_children; i++) walk(here);
  };
  while (next < elements.length) walk([]);
  return out;
}

/** Column sizes per leaf field id and the row groups' start offsets, from the written file's footer. */
export function footerMetrics(footer: FileMetaData, elements: SchemaElement[], metrics: FileMetrics): void {
  const ids = leafIds(elements);
  for (const rg of footer.row_groups) {
    let start: bigint | undefined;
    for (const chunk of rg.columns) {
      const md = chunk.meta_data;
      if (!md) continue;
      const id = ids.get(md.path_in_schema.join('.'));
      if (id !== undefined) metrics.columnSizes.set(id, (metrics.columnSizes.get(id) ?? 0n) + md.total_compressed_size);
      const offset = md.dictionary_page_offset ?? md.data_page_offset;
      if (start === undefined || offset < start) start = offset;
    }
    if (start !== undefined) metrics.splitOffsets.push(start);
  }
  metrics.splitOffsets.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export function emptyMetrics(recordCount: number): FileMetrics {
  return {
    recordCount,
    columnSizes: new Map(),
    valueCounts: new Map(),
    nullValueCounts: new Map(),
    nanValueCounts: new Map(),
    lowerBounds: new Map(),
    upperBounds: new Map(),
    splitOffsets: [],
  };
}
