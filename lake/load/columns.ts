// A synced table's columns (lake -> Postgres): the Postgres type each source column becomes and the kind of JS
// value its reader hands over, from an Iceberg schema here (Parquet schemas: parquet-columns.ts). Also the comparison
// of the columns a table was made with against the source's now: added columns are added to the table, any other
// change stops the load (the rows would not fit the table).
import { quoteIdent } from '../../lib/sql-quote.ts';
import { decimalType, isList } from '../iceberg/schema.ts';
import type { IcebergSchema, IcebergType } from '../iceberg/types.ts';
import { loadError } from './errors.ts';

/** The JS form a value comes in (lake/iceberg/types.ts Row, and what the Parquet reader is told to give). */
export type ValueKind =
  | 'int' | 'bigint' | 'float' | 'bool' | 'text' | 'bytes' | 'date' | 'timestamp' | 'timestamptz' | 'time'
  | 'decimal' | 'uuid' | 'json';

export interface LoadColumn {
  /** The column's name in the source and in Postgres (quoted there, so any name of up to 63 bytes). */
  name: string;
  /** The Postgres type: `integer`, `numeric(10,2)`, `text[]`... */
  pgType: string;
  kind: ValueKind;
  /** An array of `kind` (a list of a primitive). */
  list: boolean;
  notNull: boolean;
  /** Decimals given as unscaled integers (raw Parquet) are at this scale. */
  scale?: number;
  /** Times given as integers are in this unit. */
  unit?: 'ms' | 'us' | 'ns';
  /** The Iceberg field id (Iceberg sources: columns are matched by id, as Iceberg readers do). */
  fieldId?: number;
}

const ICEBERG_PRIMITIVES: Record<string, { pgType: string; kind: ValueKind }> = {
  boolean: { pgType: 'boolean', kind: 'bool' },
  int: { pgType: 'integer', kind: 'int' },
  long: { pgType: 'bigint', kind: 'bigint' },
  float: { pgType: 'real', kind: 'float' },
  double: { pgType: 'double precision', kind: 'float' },
  date: { pgType: 'date', kind: 'date' },
  timestamp: { pgType: 'timestamp', kind: 'timestamp' },
  timestamptz: { pgType: 'timestamptz', kind: 'timestamptz' },
  string: { pgType: 'text', kind: 'text' },
  uuid: { pgType: 'uuid', kind: 'uuid' },
  binary: { pgType: 'bytea', kind: 'bytes' },
};

function icebergPrimitive(type: IcebergType): { pgType: string; kind: ValueKind } | null {
  const dec = decimalType(type);
  if (dec) return { pgType: `numeric(${dec.precision},${dec.scale})`, kind: 'decimal' };
  return typeof type === 'string' ? (ICEBERG_PRIMITIVES[type] ?? null) : null;
}

/** Postgres columns for an Iceberg schema; a list of lists (no rectangular Postgres array) becomes jsonb. */
export function icebergColumns(schema: IcebergSchema): LoadColumn[] {
  const columns = schema.fields.map((f): LoadColumn => {
    const base = { name: f.name, notNull: f.required, fieldId: f.id };
    if (isList(f.type)) {
      const element = icebergPrimitive(f.type.element);
      if (!element) return { ...base, pgType: 'jsonb', kind: 'json', list: false };
      return { ...base, pgType: `${element.pgType}[]`, kind: element.kind, list: true };
    }
    const p = icebergPrimitive(f.type);
    if (!p) throw loadError(422, 'SOURCE_NOT_SUPPORTED', `column ${JSON.stringify(f.name)} has type ${JSON.stringify(f.type)}, which a synced table cannot hold`);
    return { ...base, ...p, list: false };
  });
  return checkNames(columns);
}

/** Names Postgres keeps as given: 1 to 63 bytes, no NUL, each once. */
export function checkNames(columns: LoadColumn[]): LoadColumn[] {
  if (columns.length === 0) throw loadError(422, 'SOURCE_NOT_SUPPORTED', 'the source has no columns');
  if (columns.length > 1600) throw loadError(422, 'SOURCE_NOT_SUPPORTED', `the source has ${columns.length} columns; a Postgres table holds at most 1600`);
  const seen = new Set<string>();
  for (const c of columns) {
    if (c.name === '' || c.name.includes('\0') || Buffer.byteLength(c.name) > 63) {
      throw loadError(422, 'SOURCE_NOT_SUPPORTED', `column name ${JSON.stringify(c.name)} cannot be a Postgres column name (1 to 63 bytes, no NUL)`);
    }
    if (seen.has(c.name)) throw loadError(422, 'SOURCE_NOT_SUPPORTED', `the source has two columns named ${JSON.stringify(c.name)}`);
    seen.add(c.name);
  }
  return columns;
}

/** A column's definition in CREATE TABLE / ADD COLUMN. */
export function columnDefinition(c: LoadColumn, withNotNull: boolean): string {
  return `${quoteIdent(c.name)} ${c.pgType}${withNotNull && c.notNull ? ' NOT NULL' : ''}`;
}

/** The same source column: by field id for Iceberg (a rename keeps the id), else by name. */
const sameColumn = (a: LoadColumn, b: LoadColumn): boolean => (a.fieldId !== undefined && b.fieldId !== undefined ? a.fieldId === b.fieldId : a.name === b.name);

/**
 * What changed between the columns the table has and the source's now: the columns to add, or why the source no
 * longer fits the table. A column the source dropped is loaded as null (the table keeps it).
 */
export function columnChanges(table: LoadColumn[], source: LoadColumn[]): { added: LoadColumn[] } {
  for (const s of source) {
    const t = table.find((c) => sameColumn(c, s));
    if (!t) continue;
    if (t.name !== s.name) throw schemaChanged(`column "${t.name}" was renamed to "${s.name}"`);
    if (t.pgType !== s.pgType) throw schemaChanged(`column "${t.name}" changed from ${t.pgType} to ${s.pgType}`);
  }
  const added = source.filter((s) => !table.some((c) => sameColumn(c, s)));
  for (const a of added) {
    if (table.some((c) => c.name === a.name)) throw schemaChanged(`column "${a.name}" was dropped and added again with another type`);
  }
  return { added: added.map((a) => ({ ...a, notNull: false })) };
}

function schemaChanged(what: string) {
  return loadError(409, 'SOURCE_SCHEMA_CHANGED', `the source changed: ${what}; the synced table cannot follow that: delete it, drop the table and create the synced table again`);
}
