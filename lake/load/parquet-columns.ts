// A Parquet file's top-level columns as Postgres columns: each physical type with its annotation (converted or
// logical type) to the Postgres type that holds every value exactly (int64 -> bigint, decimal(p,s) -> numeric(p,s),
// timestamps adjusted to UTC -> timestamptz, a 3-level LIST of a primitive -> an array); structs, maps and lists of
// lists become jsonb.
import type { SchemaElement, SchemaTree } from 'hyparquet';
import { type LoadColumn, type ValueKind, checkNames } from './columns.ts';
import { loadError } from './errors.ts';

type Leaf = Pick<LoadColumn, 'pgType' | 'kind' | 'scale' | 'unit'>;

const leaf = (pgType: string, kind: ValueKind, extra: Partial<Leaf> = {}): Leaf => ({ pgType, kind, ...extra });

function decimalOf(e: SchemaElement): Leaf | null {
  const lt = e.logical_type;
  if (lt?.type === 'DECIMAL') return leaf(`numeric(${lt.precision},${lt.scale})`, 'decimal', { scale: lt.scale });
  if (e.converted_type === 'DECIMAL') return leaf(`numeric(${e.precision ?? 38},${e.scale ?? 0})`, 'decimal', { scale: e.scale ?? 0 });
  return null;
}

function timeUnit(e: SchemaElement): 'ms' | 'us' | 'ns' {
  const lt = e.logical_type;
  if (lt?.type === 'TIME' || lt?.type === 'TIMESTAMP') return lt.unit === 'MILLIS' ? 'ms' : lt.unit === 'MICROS' ? 'us' : 'ns';
  return e.converted_type === 'TIME_MILLIS' || e.converted_type === 'TIMESTAMP_MILLIS' ? 'ms' : 'us';
}

function int32Leaf(e: SchemaElement): Leaf {
  const ct = e.converted_type;
  const lt = e.logical_type;
  if (ct === 'DATE' || lt?.type === 'DATE') return leaf('date', 'date');
  if (ct === 'TIME_MILLIS' || lt?.type === 'TIME') return leaf('time', 'time', { unit: timeUnit(e) });
  if (ct === 'UINT_32' || (lt?.type === 'INTEGER' && !lt.isSigned && lt.bitWidth === 32)) return leaf('bigint', 'bigint');
  if (ct === 'INT_8' || ct === 'INT_16' || (lt?.type === 'INTEGER' && lt.isSigned && lt.bitWidth <= 16)) return leaf('smallint', 'int');
  return leaf('integer', 'int');
}

function int64Leaf(e: SchemaElement): Leaf {
  const ct = e.converted_type;
  const lt = e.logical_type;
  if (lt?.type === 'TIMESTAMP') return leaf(lt.isAdjustedToUTC ? 'timestamptz' : 'timestamp', lt.isAdjustedToUTC ? 'timestamptz' : 'timestamp');
  // the converted types TIMESTAMP_* mean an instant (adjusted to UTC)
  if (ct === 'TIMESTAMP_MILLIS' || ct === 'TIMESTAMP_MICROS') return leaf('timestamptz', 'timestamptz');
  if (ct === 'TIME_MICROS' || lt?.type === 'TIME') return leaf('time', 'time', { unit: timeUnit(e) });
  if (ct === 'UINT_64' || (lt?.type === 'INTEGER' && !lt.isSigned && lt.bitWidth === 64)) return leaf('numeric(20,0)', 'bigint');
  return leaf('bigint', 'bigint');
}

function byteArrayLeaf(e: SchemaElement): Leaf {
  const ct = e.converted_type;
  const lt = e.logical_type?.type;
  if (ct === 'UTF8' || ct === 'ENUM' || lt === 'STRING' || lt === 'ENUM') return leaf('text', 'text');
  if (ct === 'JSON' || lt === 'JSON') return leaf('jsonb', 'json');
  return leaf('bytea', 'bytes');
}

/** The Postgres type of a primitive column, or null for one no Postgres type holds as such. */
function leafOf(e: SchemaElement): Leaf | null {
  const dec = decimalOf(e);
  if (dec) return dec;
  switch (e.type) {
    case 'BOOLEAN': return leaf('boolean', 'bool');
    case 'INT32': return int32Leaf(e);
    case 'INT64': return int64Leaf(e);
    // Spark's legacy timestamps: instants, as nanoseconds since the Julian day
    case 'INT96': return leaf('timestamptz', 'timestamptz');
    case 'FLOAT': return leaf('real', 'float');
    case 'DOUBLE': return leaf('double precision', 'float');
    case 'BYTE_ARRAY': return byteArrayLeaf(e);
    case 'FIXED_LEN_BYTE_ARRAY':
      if (e.logical_type?.type === 'UUID') return leaf('uuid', 'uuid');
      if (e.logical_type?.type === 'FLOAT16') return leaf('real', 'float');
      return leaf('bytea', 'bytes');
    default: return null;
  }
}

const isListGroup = (e: SchemaElement): boolean => e.converted_type === 'LIST' || e.logical_type?.type === 'LIST';

/** The element of a LIST group: its 3-level form (repeated group of one leaf) or the legacy 2-level (repeated leaf). */
function listElement(node: SchemaTree): SchemaElement | null {
  if (node.children.length !== 1) return null;
  const repeated = node.children[0];
  if (repeated.children.length === 0) return repeated.element;
  if (repeated.children.length === 1 && repeated.children[0].children.length === 0) return repeated.children[0].element;
  return null;
}

function columnOf(node: SchemaTree): LoadColumn {
  const e = node.element;
  const base = { name: e.name, notNull: e.repetition_type === 'REQUIRED' };
  const json: LoadColumn = { ...base, pgType: 'jsonb', kind: 'json', list: false };
  if (node.children.length === 0) {
    const l = leafOf(e);
    if (!l) throw loadError(422, 'SOURCE_NOT_SUPPORTED', `Parquet column ${JSON.stringify(e.name)} has type ${String(e.type)}, which a synced table cannot hold`);
    // a repeated primitive outside a LIST group is a list too (the oldest form)
    if (e.repetition_type === 'REPEATED') return { ...base, ...l, pgType: `${l.pgType}[]`, list: true, notNull: false };
    return { ...base, ...l, list: false };
  }
  if (!isListGroup(e)) return json; // a struct or a map
  const element = listElement(node);
  const l = element && leafOf(element);
  return l ? { ...base, ...l, pgType: `${l.pgType}[]`, list: true } : json;
}

/** The Postgres columns of a Parquet file's schema tree (its root's children). */
export function parquetColumns(root: SchemaTree): LoadColumn[] {
  return checkNames(root.children.map(columnOf));
}
