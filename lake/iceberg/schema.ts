// Iceberg schemas as rules: what a valid schema is (unique field ids, known types, identifier fields the spec
// allows, names that stay distinct as Parquet column names), how one evolves (columns are only added, with ids
// never used before), and the small type helpers the Parquet, statistics and manifest code share.
import { IcebergError } from './errors.ts';
import type { IcebergField, IcebergSchema, IcebergType, ListType } from './types.ts';

const PRIMITIVES = new Set<string>([
  'boolean', 'int', 'long', 'float', 'double', 'date', 'timestamp', 'timestamptz', 'string', 'uuid', 'binary',
]);
const DECIMAL = /^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$/;

export interface DecimalType {
  precision: number;
  scale: number;
}

export function isList(type: IcebergType): type is ListType {
  return typeof type === 'object' && type !== null && type.type === 'list';
}

/** Precision and scale of a `decimal(P, S)` type, or null for any other type. */
export function decimalType(type: IcebergType): DecimalType | null {
  if (typeof type !== 'string') return null;
  const m = DECIMAL.exec(type);
  return m ? { precision: Number(m[1]), scale: Number(m[2]) } : null;
}

/**
 * A field name as a Parquet column name. Iceberg writers store names made Avro-compatible (letters, digits and
 * `_`; a leading digit gets a `_` in front; any other character becomes `_x` + its hex code), and readers such
 * as icebird look the column up under that name, so this writer does the same.
 */
export function columnName(name: string): string {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const ch = name.charAt(i);
    const letter = /[A-Za-z]/.test(ch);
    const digit = /[0-9]/.test(ch);
    if (letter || ch === '_' || (digit && i > 0)) out += ch;
    else if (digit) out += `_${ch}`;
    else out += `_x${ch.charCodeAt(0).toString(16).toUpperCase()}`;
  }
  return out;
}

const invalid = (message: string) => new IcebergError('invalid_schema', message);

function checkType(type: unknown, where: string, ids: Set<number>): void {
  if (typeof type === 'string') {
    if (PRIMITIVES.has(type)) return;
    const d = decimalType(type as IcebergType);
    if (!d) throw invalid(`${where}: unknown type ${JSON.stringify(type)}; use one of ${[...PRIMITIVES].join(', ')}, decimal(P, S) or a list`);
    if (d.precision < 1 || d.precision > 38 || d.scale > d.precision) {
      throw invalid(`${where}: ${type} is out of range; precision must be 1..38 and scale 0..precision`);
    }
    return;
  }
  const list = type as Partial<ListType> | null;
  if (!list || typeof list !== 'object' || list.type !== 'list') {
    throw invalid(`${where}: type must be a primitive name or {type: 'list', ...}, got ${JSON.stringify(type)}`);
  }
  claimId(list['element-id'], `${where}.element`, ids);
  if (typeof list['element-required'] !== 'boolean') throw invalid(`${where}: list needs a boolean 'element-required'`);
  checkType(list.element, `${where}.element`, ids);
}

function claimId(id: unknown, where: string, ids: Set<number>): void {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > 2_147_483_647) {
    throw invalid(`${where}: field id must be a positive 32-bit integer, got ${String(id)}`);
  }
  if (ids.has(id)) throw invalid(`${where}: field id ${id} is used twice; every field and list element needs its own id`);
  ids.add(id);
}

/** Throws an IcebergError unless `schema` is a schema this writer can store; returns it typed. */
export function validateSchema(schema: IcebergSchema): IcebergSchema {
  if (!schema || typeof schema !== 'object' || schema.type !== 'struct' || !Array.isArray(schema.fields)) {
    throw invalid("a schema is {'schema-id', type: 'struct', fields: [...]}");
  }
  if (!Number.isInteger(schema['schema-id']) || schema['schema-id'] < 0) throw invalid("'schema-id' must be a non-negative integer");
  if (schema.fields.length === 0) throw invalid('a schema needs at least one field');
  const ids = new Set<number>();
  const names = new Map<string, string>();
  for (const f of schema.fields) {
    const where = `field ${JSON.stringify(f?.name)}`;
    if (typeof f?.name !== 'string' || f.name === '') throw invalid(`every field needs a non-empty name`);
    const stored = columnName(f.name);
    if (names.has(stored)) throw invalid(`${where}: the name is used twice, or is stored as ${stored} like field ${JSON.stringify(names.get(stored))}`);
    names.set(stored, f.name);
    if (typeof f.required !== 'boolean') throw invalid(`${where}: 'required' must be a boolean`);
    claimId(f.id, where, ids);
    checkType(f.type, where, ids);
  }
  for (const id of schema['identifier-field-ids'] ?? []) {
    const f = schema.fields.find((x) => x.id === id);
    if (!f) throw invalid(`identifier field id ${id} is not a top-level field`);
    if (!f.required || isList(f.type) || f.type === 'float' || f.type === 'double') {
      throw invalid(`identifier field ${JSON.stringify(f.name)} must be a required primitive that is not float or double`);
    }
  }
  return schema;
}

/** Every field id a type uses (its list element ids, recursively). */
function typeIds(type: IcebergType): number[] {
  return isList(type) ? [type['element-id'], ...typeIds(type.element)] : [];
}

/** Every field id in the schema, top-level and nested. */
export function schemaIds(schema: IcebergSchema): number[] {
  return schema.fields.flatMap((f) => [f.id, ...typeIds(f.type)]);
}

export function maxFieldId(schema: IcebergSchema): number {
  return Math.max(0, ...schemaIds(schema));
}

function sameField(a: IcebergField, b: IcebergField): boolean {
  return a.name === b.name && a.required === b.required && JSON.stringify(a.type) === JSON.stringify(b.type);
}

/**
 * The schema `next` as the table's new schema, or null when it adds nothing to `current`. Only additions are
 * allowed: every current field must be in `next` unchanged (same id, name, type, required), and every new field
 * must be optional (old rows have no value for it) with ids above `lastColumnId`, so no id is ever reused.
 */
export function evolveSchema(current: IcebergSchema, next: IcebergSchema, lastColumnId: number, newSchemaId: number): IcebergSchema | null {
  for (const f of current.fields) {
    const g = Array.isArray(next?.fields) ? next.fields.find((x) => x?.id === f.id) : undefined;
    if (!g) throw invalid(`the new schema drops field ${JSON.stringify(f.name)} (id ${f.id}); only adding columns is supported, keep every existing field`);
    if (!sameField(f, g)) throw invalid(`the new schema changes field id ${f.id} (${JSON.stringify(f.name)}); existing fields must stay as they are`);
  }
  validateSchema(next);
  const added = next.fields.filter((g) => !current.fields.some((f) => f.id === g.id));
  for (const g of added) {
    const low = [g.id, ...typeIds(g.type)].filter((id) => id <= lastColumnId);
    if (low.length > 0) {
      throw invalid(`new field ${JSON.stringify(g.name)} uses id ${low[0]}, which is not above the table's last-column-id ${lastColumnId}; give new fields ids from ${lastColumnId + 1} up`);
    }
    if (g.required) throw invalid(`new field ${JSON.stringify(g.name)} must be optional: rows already written have no value for it`);
  }
  const sameIdentifiers = JSON.stringify(next['identifier-field-ids'] ?? []) === JSON.stringify(current['identifier-field-ids'] ?? []);
  const sameOrder = next.fields.every((g, i) => current.fields[i] === undefined || current.fields[i].id === g.id);
  if (added.length === 0 && sameIdentifiers && sameOrder) return null;
  return { ...next, 'schema-id': newSchemaId };
}

/** The schema restricted to the given top-level field ids (the columns of an equality-delete file). */
export function projectSchema(schema: IcebergSchema, ids: number[]): IcebergSchema {
  const fields = ids.map((id) => {
    const f = schema.fields.find((x) => x.id === id);
    if (!f) throw invalid(`field id ${id} is not in schema ${schema['schema-id']}`);
    return f;
  });
  return { 'schema-id': schema['schema-id'], type: 'struct', fields };
}

/** The fields that identify a row, which equality deletes are written on. */
export function identifierFields(schema: IcebergSchema): IcebergField[] {
  const ids = schema['identifier-field-ids'] ?? [];
  if (ids.length === 0) {
    throw new IcebergError(
      'no_identifier_fields',
      "deletes need the schema's 'identifier-field-ids' (e.g. the primary key); evolve the schema to declare them first",
    );
  }
  return projectSchema(schema, ids).fields;
}
