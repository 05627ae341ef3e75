// Table metadata JSON (format v2): its shape, how a new table's looks, how a snapshot is added, and its
// serialisation. Snapshot ids are 63-bit, beyond a JS number, so they are bigints here and written as exact JSON
// numbers by hand, then parsed back as bigints (a plain JSON.parse would round them).
import { randomUUID } from 'node:crypto';
import * as v from 'valibot';
import { parse } from '../../lib/validate.ts';
import { tableError } from './errors.ts';
import { maxFieldId, validateSchema } from './schema.ts';
import type { IcebergSchema } from './types.ts';

export interface Snapshot {
  'snapshot-id': bigint;
  'parent-snapshot-id'?: bigint;
  'sequence-number': number;
  'timestamp-ms': number;
  'manifest-list': string;
  summary: Record<string, string>;
  'schema-id'?: number;
}

export interface SnapshotRef {
  'snapshot-id': bigint;
  type: 'branch' | 'tag';
}

export interface TableMetadata {
  'format-version': 2;
  'table-uuid': string;
  location: string;
  'last-sequence-number': number;
  'last-updated-ms': number;
  'last-column-id': number;
  schemas: IcebergSchema[];
  'current-schema-id': number;
  'partition-specs': { 'spec-id': number; fields: unknown[] }[];
  'default-spec-id': number;
  'last-partition-id': number;
  properties: Record<string, string>;
  'current-snapshot-id'?: bigint;
  snapshots: Snapshot[];
  'snapshot-log': { 'snapshot-id': bigint; 'timestamp-ms': number }[];
  'metadata-log': { 'metadata-file': string; 'timestamp-ms': number }[];
  'sort-orders': { 'order-id': number; fields: unknown[] }[];
  'default-sort-order-id': number;
  refs: Record<string, SnapshotRef>;
}

/** How many previous metadata files the metadata-log remembers (the reference implementation's default). */
const METADATA_LOG_MAX = 100;
const BIGINT_KEYS = ['snapshot-id', 'parent-snapshot-id', 'current-snapshot-id'];

/** The metadata of a new, empty, unpartitioned and unsorted table. */
export function newTableMetadata(location: string, schema: IcebergSchema, properties: Record<string, string>): TableMetadata {
  const first = { ...validateSchema(schema), 'schema-id': 0 };
  return {
    'format-version': 2,
    'table-uuid': randomUUID(),
    location,
    'last-sequence-number': 0,
    'last-updated-ms': Date.now(),
    'last-column-id': maxFieldId(first),
    schemas: [first],
    'current-schema-id': 0,
    'partition-specs': [{ 'spec-id': 0, fields: [] }],
    'default-spec-id': 0,
    // partition field ids start at 1000; none assigned yet
    'last-partition-id': 999,
    properties: { ...properties },
    snapshots: [],
    'snapshot-log': [],
    'metadata-log': [],
    'sort-orders': [{ 'order-id': 0, fields: [] }],
    'default-sort-order-id': 0,
    refs: {},
  };
}

/** JSON text with every bigint written as an exact JSON number. */
export function stringifyMetadata(meta: TableMetadata): string {
  const token = `__bigint_${randomUUID()}__`;
  const text = JSON.stringify(meta, (_key, value: unknown) => (typeof value === 'bigint' ? `${token}${value}` : value), 2);
  return text.replace(new RegExp(`"${token}(-?\\d+)"`, 'g'), '$1');
}

/** JSON.parse that keeps snapshot ids (`snapshot-id`, `parent-snapshot-id`, `current-snapshot-id`) as bigints. */
export function parseJsonWithIds(text: string): unknown {
  const token = `__bigint_${randomUUID()}__`;
  // Quote the integers of the id keys (a key inside a JSON string has an escaped quote and does not match).
  const keys = new RegExp(`"(${BIGINT_KEYS.join('|')})"(\\s*):(\\s*)(-?\\d+)(?=\\s*[,}\\]])`, 'g');
  const quoted = text.replace(keys, `"$1"$2:$3"${token}$4"`);
  return JSON.parse(quoted, (_key, value: unknown) =>
    typeof value === 'string' && value.startsWith(token) ? BigInt(value.slice(token.length)) : value,
  );
}

const id = v.bigint();
const metadataShape = v.looseObject({
  'format-version': v.literal(2, 'format-version must be 2: this writer reads and writes Iceberg v2 tables only'),
  'table-uuid': v.string(),
  location: v.string(),
  'last-sequence-number': v.number(),
  'last-updated-ms': v.number(),
  'last-column-id': v.number(),
  schemas: v.array(v.looseObject({ 'schema-id': v.number(), type: v.literal('struct'), fields: v.array(v.looseObject({})) })),
  'current-schema-id': v.number(),
  'partition-specs': v.array(v.looseObject({ 'spec-id': v.number(), fields: v.array(v.unknown()) })),
  'default-spec-id': v.number(),
  'last-partition-id': v.number(),
  properties: v.optional(v.record(v.string(), v.string()), {}),
  'current-snapshot-id': v.optional(v.nullable(id)),
  snapshots: v.optional(
    v.array(
      v.looseObject({
        'snapshot-id': id,
        'parent-snapshot-id': v.optional(id),
        'sequence-number': v.number(),
        'timestamp-ms': v.number(),
        'manifest-list': v.string('a snapshot without manifest-list (v1 style) is not supported'),
        summary: v.record(v.string(), v.string()),
        'schema-id': v.optional(v.number()),
      }),
    ),
    [],
  ),
  'snapshot-log': v.optional(v.array(v.looseObject({ 'snapshot-id': id, 'timestamp-ms': v.number() })), []),
  'metadata-log': v.optional(v.array(v.looseObject({ 'metadata-file': v.string(), 'timestamp-ms': v.number() })), []),
  'sort-orders': v.array(v.looseObject({ 'order-id': v.number(), fields: v.array(v.unknown()) })),
  'default-sort-order-id': v.number(),
  refs: v.optional(v.record(v.string(), v.looseObject({ 'snapshot-id': id, type: v.picklist(['branch', 'tag']) })), {}),
});

/** Parsed and checked table metadata; `where` names the file in errors. */
export function parseTableMetadata(text: string, where: string): TableMetadata {
  let json: unknown;
  try {
    json = parseJsonWithIds(text);
  } catch (err) {
    throw tableError('bad_metadata', `${where} is not valid JSON; the table metadata is damaged`, err);
  }
  const meta = parse(metadataShape, json, (message) => tableError('bad_metadata', `${where}: ${message}`)) as unknown as TableMetadata;
  // Java writes -1 for "no current snapshot" in v2 tables
  if (meta['current-snapshot-id'] === null || meta['current-snapshot-id'] === -1n) delete meta['current-snapshot-id'];
  if (meta['partition-specs'].some((s) => s.fields.length > 0)) {
    throw tableError('partitioned_table', `${where} describes a partitioned table; this writer handles unpartitioned tables only`);
  }
  for (const s of meta.schemas) validateSchema(s);
  if (!meta.schemas.some((s) => s['schema-id'] === meta['current-schema-id'])) {
    throw tableError('bad_metadata', `${where}: current-schema-id ${meta['current-schema-id']} is not among the schemas`);
  }
  return meta;
}

export function currentSchema(meta: TableMetadata): IcebergSchema {
  const schema = meta.schemas.find((s) => s['schema-id'] === meta['current-schema-id']);
  if (!schema) throw tableError('bad_metadata', `current-schema-id ${meta['current-schema-id']} is not among the schemas`);
  return schema;
}

export function currentSnapshot(meta: TableMetadata): Snapshot | null {
  const current = meta['current-snapshot-id'];
  if (current === undefined) return null;
  const snap = meta.snapshots.find((s) => s['snapshot-id'] === current);
  if (!snap) throw tableError('bad_metadata', `current-snapshot-id ${current} is not among the snapshots`);
  return snap;
}

/** The metadata after a change, remembering the metadata file it replaces in the metadata-log. */
export function nextMetadata(meta: TableMetadata, previousFile: string, change: Partial<TableMetadata>): TableMetadata {
  const now = Math.max(Date.now(), meta['last-updated-ms']);
  const log = [...meta['metadata-log'], { 'metadata-file': previousFile, 'timestamp-ms': meta['last-updated-ms'] }];
  return { ...meta, ...change, 'last-updated-ms': now, 'metadata-log': log.slice(-METADATA_LOG_MAX) };
}

/** The metadata with `snapshot` added and made current (on the main branch). */
export function withSnapshot(meta: TableMetadata, previousFile: string, snapshot: Snapshot): TableMetadata {
  const sid = snapshot['snapshot-id'];
  const next = nextMetadata(meta, previousFile, {
    'last-sequence-number': snapshot['sequence-number'],
    'current-snapshot-id': sid,
    snapshots: [...meta.snapshots, snapshot],
    'snapshot-log': [...meta['snapshot-log'], { 'snapshot-id': sid, 'timestamp-ms': snapshot['timestamp-ms'] }],
    refs: { ...meta.refs, main: { 'snapshot-id': sid, type: 'branch' } },
  });
  return next;
}

/** A random positive 63-bit snapshot id not used by the table yet. */
export function newSnapshotId(meta: TableMetadata): bigint {
  const used = new Set(meta.snapshots.map((s) => s['snapshot-id']));
  for (;;) {
    const bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    const candidate = new DataView(bytes.buffer).getBigUint64(0) & 0x7fff_ffff_ffff_ffffn;
    if (candidate !== 0n && !used.has(candidate)) return candidate;
  }
}
