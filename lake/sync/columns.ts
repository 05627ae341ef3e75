// A synced table's columns: what Postgres says about them (describeTableSql), their Iceberg types and field ids, and
// the comparison that tells a column added (the Iceberg schema evolves) from any other DDL (the sync pauses: writing
// on would put wrong data in the lake).
import type { IcebergField, IcebergSchema, IcebergType } from '../iceberg/types.ts';

/** One column as recorded with the lake table (field ids never change once given). */
export interface SyncedColumn {
  attnum: number;
  name: string;
  /** format_type(): `integer`, `numeric(10,2)`, `text[]` ... */
  pgType: string;
  fieldId: number;
  /** Field id of a list's element (arrays only). */
  elementId?: number;
  type: IcebergType;
  notNull: boolean;
  /** 1-based position in the primary key, or 0. */
  keyPosition: number;
}

/** One row of describeTableSql, parsed. */
export interface DescribedColumn {
  attnum: number;
  name: string;
  typname: string;
  pgType: string;
  elementTypname: string | null;
  notNull: boolean;
  keyPosition: number;
  relationOid: string;
  triggerState: string | null;
}

export function parseDescription(rows: (string | null)[][]): DescribedColumn[] {
  return rows.map((r) => ({
    attnum: Number(r[0]), name: r[1] ?? '', typname: r[2] ?? '', pgType: r[3] ?? '', elementTypname: r[4],
    notNull: r[5] === 'true', keyPosition: r[6] === null ? 0 : Number(r[6]), relationOid: r[7] ?? '', triggerState: r[8],
  }));
}

const PRIMITIVES: Record<string, IcebergType> = {
  int2: 'int', int4: 'int', int8: 'long', oid: 'long', float4: 'float', float8: 'double', bool: 'boolean',
  text: 'string', varchar: 'string', bpchar: 'string', name: 'string', char: 'string', citext: 'string',
  json: 'string', jsonb: 'string', bytea: 'binary', date: 'date', timestamp: 'timestamp', timestamptz: 'timestamptz',
  uuid: 'uuid',
};

/** Iceberg decimals hold at most 38 digits: an unconstrained numeric is decimal(38, 9). */
export const UNCONSTRAINED_NUMERIC: IcebergType = 'decimal(38, 9)';

function primitiveOf(typname: string, pgType: string): IcebergType {
  if (typname === 'numeric') {
    const m = /^numeric\((\d+),(\d+)\)/.exec(pgType);
    if (!m) return UNCONSTRAINED_NUMERIC;
    const precision = Math.min(38, Number(m[1]));
    return `decimal(${precision}, ${Math.min(Number(m[2]), precision)})`;
  }
  // anything else (time, interval, inet, enums, ...) goes as its text form
  return PRIMITIVES[typname] ?? 'string';
}

/** Element type name of an array column (typname `_int4` has element `int4`); the element's format has no `[]`. */
function elementFormat(pgType: string): string {
  return pgType.replace(/\[\]$/, '');
}

/** Gives the new column its Iceberg type and field ids, taking ids from `nextId`. */
export function syncedColumn(d: DescribedColumn, nextId: () => number): SyncedColumn {
  const fieldId = nextId();
  if (d.elementTypname) {
    const elementId = nextId();
    const element = primitiveOf(d.elementTypname, elementFormat(d.pgType));
    return {
      attnum: d.attnum, name: d.name, pgType: d.pgType, fieldId, elementId, notNull: d.notNull, keyPosition: d.keyPosition,
      type: { type: 'list', 'element-id': elementId, element, 'element-required': false },
    };
  }
  return { attnum: d.attnum, name: d.name, pgType: d.pgType, fieldId, type: primitiveOf(d.typname, d.pgType), notNull: d.notNull, keyPosition: d.keyPosition };
}

/** The lake's columns added after the source's: an operation (I, U, D), the change's WAL position, xid, commit time. */
export const HISTORY_COLUMNS = ['_op', '_lsn', '_xid', '_commit_time'] as const;

function field(c: SyncedColumn): IcebergField {
  // key columns are required (identifier fields must be); the rest may be null in the lake even if NOT NULL now
  return { id: c.fieldId, name: c.name, required: c.keyPosition > 0, type: c.type };
}

export function currentSchema(columns: SyncedColumn[], schemaId: number): IcebergSchema {
  const keys = columns.filter((c) => c.keyPosition > 0).sort((a, b) => a.keyPosition - b.keyPosition);
  return { 'schema-id': schemaId, type: 'struct', fields: columns.map(field), 'identifier-field-ids': keys.map((c) => c.fieldId) };
}

/**
 * The history's field ids: its own four columns take 1-4 and each source column its current id + 4. Iceberg wants a
 * column added later to have an id above every id so far, which holds here as it does in the current table.
 */
const HISTORY_SHIFT = 4;

function shifted(t: IcebergType): IcebergType {
  return typeof t === 'object' ? { ...t, 'element-id': t['element-id'] + HISTORY_SHIFT } : t;
}

export function historySchema(columns: SyncedColumn[], schemaId: number): IcebergSchema {
  const extra: IcebergField[] = [
    { id: 1, name: '_op', required: true, type: 'string' },
    { id: 2, name: '_lsn', required: true, type: 'string' },
    { id: 3, name: '_xid', required: true, type: 'long' },
    { id: 4, name: '_commit_time', required: false, type: 'timestamptz' },
  ];
  const source = columns.map((c) => ({ id: c.fieldId + HISTORY_SHIFT, name: c.name, required: false, type: shifted(c.type) }));
  return { 'schema-id': schemaId, type: 'struct', fields: [...source, ...extra] };
}

export type SchemaChange =
  | { kind: 'same' }
  | { kind: 'added'; columns: DescribedColumn[] }
  | { kind: 'incompatible'; message: string };

/** Compares the source as it is now with the columns the lake table was made from. */
export function compareColumns(recorded: SyncedColumn[], now: DescribedColumn[]): SchemaChange {
  const byAttnum = new Map(now.map((d) => [d.attnum, d]));
  for (const c of recorded) {
    const d = byAttnum.get(c.attnum);
    if (!d) return { kind: 'incompatible', message: `column "${c.name}" was dropped` };
    if (d.name !== c.name) return { kind: 'incompatible', message: `column "${c.name}" was renamed to "${d.name}"` };
    if (d.pgType !== c.pgType) return { kind: 'incompatible', message: `column "${c.name}" changed type from ${c.pgType} to ${d.pgType}` };
    if ((d.keyPosition > 0) !== (c.keyPosition > 0)) return { kind: 'incompatible', message: 'the primary key changed' };
  }
  const known = new Set(recorded.map((c) => c.attnum));
  const added = now.filter((d) => !known.has(d.attnum));
  return added.length > 0 ? { kind: 'added', columns: added } : { kind: 'same' };
}
