// The public vocabulary of the Iceberg writer: Iceberg schemas as the spec serialises them (Appendix C), and rows
// as plain JS objects. Kept apart from the code so callers (and the tests) can import the types alone.

export type IcebergPrimitive =
  | 'boolean'
  | 'int'
  | 'long'
  | 'float'
  | 'double'
  | 'date'
  | 'timestamp'
  | 'timestamptz'
  | 'string'
  | 'uuid'
  | 'binary'
  | `decimal(${number}, ${number})`;

export interface ListType {
  type: 'list';
  'element-id': number;
  element: IcebergType;
  'element-required': boolean;
}

export type IcebergType = IcebergPrimitive | ListType;

export interface IcebergField {
  id: number;
  name: string;
  required: boolean;
  type: IcebergType;
  doc?: string;
}

export interface IcebergSchema {
  'schema-id': number;
  type: 'struct';
  fields: IcebergField[];
  'identifier-field-ids'?: number[];
}

/**
 * A row: field name -> value. JS representation per type: boolean; int: number; long: bigint; float/double: number;
 * date: days since epoch (number); timestamp/timestamptz: microseconds since epoch (bigint); string: string;
 * uuid: string 'xxxxxxxx-xxxx-...'; binary: Uint8Array; decimal: string of the exact decimal (e.g. '-12.50');
 * list: array of element values; null for missing.
 *
 * Writers also accept a safe-integer number for long/timestamp/timestamptz; readers always return bigint.
 */
export type Row = Record<string, unknown>;

/** What the current snapshot is, as `IcebergTable.currentSnapshot` shows it. */
export interface SnapshotInfo {
  snapshotId: bigint;
  sequenceNumber: number;
  summary: Record<string, string>;
  timestampMs: number;
}

/** One live file of the current snapshot, as `IcebergTable.files()` lists it. */
export interface LiveFile {
  path: string;
  content: 'data' | 'equality-deletes';
  records: number;
  bytes: number;
}

/** The argument of `IcebergTable.commit`. */
export interface TableChange {
  rows?: Row[];
  deletes?: Row[];
  summary?: Record<string, string>;
  schema?: IcebergSchema;
}
