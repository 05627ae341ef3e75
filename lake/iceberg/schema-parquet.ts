// Iceberg schema -> Parquet schema, per the spec's Appendix A: every column carries its Iceberg field id (readers
// resolve columns by id, not name), logical types follow the spec's mapping, lists use the 3-level form. Also
// turns rows into the column arrays hyparquet-writer takes, checking each value on the way.
import type { ColumnSource, SchemaElement } from 'hyparquet-writer';
import { IcebergError } from './errors.ts';
import { columnName, decimalType, isList } from './schema.ts';
import type { IcebergField, IcebergPrimitive, IcebergSchema, IcebergType, Row } from './types.ts';
import { toStored } from './values.ts';

/** Bytes a two's-complement integer needs to hold every value of `precision` decimal digits. */
export function decimalBytes(precision: number): number {
  const max = 10n ** BigInt(precision) - 1n;
  let bytes = 1;
  while ((1n << BigInt(bytes * 8 - 1)) - 1n < max) bytes++;
  return bytes;
}

function primitiveElement(type: IcebergPrimitive): Omit<SchemaElement, 'name'> {
  const dec = decimalType(type);
  if (dec) {
    const { precision, scale } = dec;
    const logical = { converted_type: 'DECIMAL', logical_type: { type: 'DECIMAL', precision, scale }, precision, scale } as const;
    if (precision <= 9) return { type: 'INT32', ...logical };
    if (precision <= 18) return { type: 'INT64', ...logical };
    return { type: 'FIXED_LEN_BYTE_ARRAY', type_length: decimalBytes(precision), ...logical };
  }
  switch (type) {
    case 'boolean':
      return { type: 'BOOLEAN' };
    case 'int':
      return { type: 'INT32' };
    case 'long':
      return { type: 'INT64' };
    case 'float':
      return { type: 'FLOAT' };
    case 'double':
      return { type: 'DOUBLE' };
    case 'date':
      return { type: 'INT32', converted_type: 'DATE', logical_type: { type: 'DATE' } };
    case 'timestamp':
      // No converted type: TIMESTAMP_MICROS would claim the value is adjusted to UTC, which a local timestamp is not.
      return { type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: false, unit: 'MICROS' } };
    case 'timestamptz':
      return { type: 'INT64', converted_type: 'TIMESTAMP_MICROS', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' } };
    case 'string':
      return { type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } };
    case 'uuid':
      return { type: 'FIXED_LEN_BYTE_ARRAY', type_length: 16, logical_type: { type: 'UUID' } };
    case 'binary':
      return { type: 'BYTE_ARRAY' };
    default:
      throw new IcebergError('invalid_schema', `type ${JSON.stringify(type)} has no Parquet mapping here`);
  }
}

/** The schema elements (depth-first) of one field: a primitive leaf, or a 3-level LIST group. */
function fieldElements(name: string, id: number, required: boolean, type: IcebergType): SchemaElement[] {
  const repetition_type = required ? 'REQUIRED' : 'OPTIONAL';
  if (!isList(type)) return [{ name, field_id: id, repetition_type, ...primitiveElement(type) }];
  return [
    { name, field_id: id, repetition_type, converted_type: 'LIST', logical_type: { type: 'LIST' }, num_children: 1 },
    { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
    ...fieldElements('element', type['element-id'], type['element-required'], type.element),
  ];
}

/** The Parquet schema (flattened, root first) of an Iceberg schema. */
export function parquetSchema(schema: IcebergSchema): SchemaElement[] {
  const root: SchemaElement = { name: 'table', num_children: schema.fields.length };
  return [root, ...schema.fields.flatMap((f) => fieldElements(columnName(f.name), f.id, f.required, f.type))];
}

function columnValues(field: IcebergField, rows: Row[]): unknown[] {
  return rows.map((row, i) => {
    const value = row[field.name];
    if (value === null || value === undefined) {
      if (field.required) {
        throw new IcebergError('invalid_row', `row ${i}: field ${JSON.stringify(field.name)} is required but has no value`);
      }
      return null;
    }
    return toStored(field.type, value, `row ${i}: field ${JSON.stringify(field.name)}`);
  });
}

/** Rows as hyparquet-writer column data, every value checked; fields a row does not name must be optional. */
export function columnData(schema: IcebergSchema, rows: Row[]): ColumnSource[] {
  const known = new Set(schema.fields.map((f) => f.name));
  for (const [i, row] of rows.entries()) {
    if (!row || typeof row !== 'object') throw new IcebergError('invalid_row', `row ${i} is not an object`);
    for (const key of Object.keys(row)) {
      if (!known.has(key)) {
        throw new IcebergError('invalid_row', `row ${i} has field ${JSON.stringify(key)}, which the table schema does not have; evolve the schema first (commit with schema)`);
      }
    }
  }
  return schema.fields.map((f) => ({ name: columnName(f.name), data: columnValues(f, rows) }));
}
