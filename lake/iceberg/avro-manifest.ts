// Manifests and manifest lists: the v2 Avro schemas of the spec (a `field-id` on every field, `element-id` on
// lists, maps as arrays of key/value records with the `map` logical type, an empty `partition` struct for an
// unpartitioned table), the file metadata the spec requires, and reading them back with sequence-number
// inheritance applied.
import { decodeContainer, encodeContainer } from './avro-container.ts';
import { tableError } from './errors.ts';
import type { FileMetrics } from './stats.ts';
import type { IcebergSchema } from './types.ts';

const opt = (type: unknown) => ['null', type];
const field = (name: string, id: number, type: unknown, optional = false) =>
  optional ? { name, type: opt(type), default: null, 'field-id': id } : { name, type, 'field-id': id };
const intMap = (keyId: number, valueId: number, value: 'long' | 'bytes') => ({
  type: 'array',
  logicalType: 'map',
  items: { type: 'record', name: `k${keyId}_v${valueId}`, fields: [field('key', keyId, 'int'), field('value', valueId, value)] },
});
const list = (elementId: number, items: string) => ({ type: 'array', items, 'element-id': elementId });

/** `manifest_entry` (v2) for an unpartitioned table. */
export const MANIFEST_ENTRY_SCHEMA = {
  type: 'record',
  name: 'manifest_entry',
  fields: [
    field('status', 0, 'int'),
    field('snapshot_id', 1, 'long', true),
    field('sequence_number', 3, 'long', true),
    field('file_sequence_number', 4, 'long', true),
    field('data_file', 2, {
      type: 'record',
      name: 'r2',
      fields: [
        field('content', 134, 'int'),
        field('file_path', 100, 'string'),
        field('file_format', 101, 'string'),
        field('partition', 102, { type: 'record', name: 'r102', fields: [] }),
        field('record_count', 103, 'long'),
        field('file_size_in_bytes', 104, 'long'),
        field('column_sizes', 108, intMap(117, 118, 'long'), true),
        field('value_counts', 109, intMap(119, 120, 'long'), true),
        field('null_value_counts', 110, intMap(121, 122, 'long'), true),
        field('nan_value_counts', 137, intMap(138, 139, 'long'), true),
        field('lower_bounds', 125, intMap(126, 127, 'bytes'), true),
        field('upper_bounds', 128, intMap(129, 130, 'bytes'), true),
        field('key_metadata', 131, 'bytes', true),
        field('split_offsets', 132, list(133, 'long'), true),
        field('equality_ids', 135, list(136, 'int'), true),
        field('sort_order_id', 140, 'int', true),
      ],
    }),
  ],
};

/** `manifest_file` (v2), the record of a manifest list. */
export const MANIFEST_FILE_SCHEMA = {
  type: 'record',
  name: 'manifest_file',
  fields: [
    field('manifest_path', 500, 'string'),
    field('manifest_length', 501, 'long'),
    field('partition_spec_id', 502, 'int'),
    field('content', 517, 'int'),
    field('sequence_number', 515, 'long'),
    field('min_sequence_number', 516, 'long'),
    field('added_snapshot_id', 503, 'long'),
    field('added_files_count', 504, 'int'),
    field('existing_files_count', 505, 'int'),
    field('deleted_files_count', 506, 'int'),
    field('added_rows_count', 512, 'long'),
    field('existing_rows_count', 513, 'long'),
    field('deleted_rows_count', 514, 'long'),
    field(
      'partitions',
      507,
      {
        type: 'array',
        'element-id': 508,
        items: {
          type: 'record',
          name: 'r508',
          fields: [
            field('contains_null', 509, 'boolean'),
            field('contains_nan', 518, 'boolean', true),
            field('lower_bound', 510, 'bytes', true),
            field('upper_bound', 511, 'bytes', true),
          ],
        },
      },
      true,
    ),
    field('key_metadata', 519, 'bytes', true),
  ],
};

type KV<T> = { key: number; value: T }[] | null;

/** The `data_file` struct as stored. */
export interface DataFileRecord {
  content: number; // 0 data, 1 position deletes, 2 equality deletes
  file_path: string;
  file_format: string;
  partition: Record<string, never>;
  record_count: bigint;
  file_size_in_bytes: bigint;
  column_sizes: KV<bigint>;
  value_counts: KV<bigint>;
  null_value_counts: KV<bigint>;
  nan_value_counts: KV<bigint>;
  lower_bounds: KV<Buffer>;
  upper_bounds: KV<Buffer>;
  key_metadata: Buffer | null;
  split_offsets: bigint[] | null;
  equality_ids: number[] | null;
  sort_order_id: number | null;
}

export type EntryStatus = 0 | 1 | 2; // existing, added, deleted

/** A manifest entry with inheritance resolved: sequence numbers and snapshot id always present. */
export interface ManifestEntry {
  status: EntryStatus;
  snapshotId: bigint;
  sequenceNumber: bigint;
  fileSequenceNumber: bigint;
  file: DataFileRecord;
}

/** A manifest list record. */
export interface ManifestFile {
  manifest_path: string;
  manifest_length: bigint;
  partition_spec_id: number;
  content: number; // 0 data, 1 deletes
  sequence_number: bigint;
  min_sequence_number: bigint;
  added_snapshot_id: bigint;
  added_files_count: number;
  existing_files_count: number;
  deleted_files_count: number;
  added_rows_count: bigint;
  existing_rows_count: bigint;
  deleted_rows_count: bigint;
  partitions: unknown[] | null;
  key_metadata: Buffer | null;
}

const kv = <T>(m: Map<number, T>): { key: number; value: T }[] | null =>
  m.size === 0 ? null : [...m.entries()].sort(([a], [b]) => a - b).map(([key, value]) => ({ key, value }));

/** The `data_file` of a Parquet file this writer just wrote. */
export function dataFileRecord(opts: { content: 0 | 2; path: string; size: number; metrics: FileMetrics; equalityIds?: number[] }): DataFileRecord {
  const { metrics } = opts;
  const bytes = (m: Map<number, Uint8Array>) => new Map([...m].map(([k, v]) => [k, Buffer.from(v)] as const));
  return {
    content: opts.content,
    file_path: opts.path,
    file_format: 'PARQUET',
    partition: {},
    record_count: BigInt(metrics.recordCount),
    file_size_in_bytes: BigInt(opts.size),
    column_sizes: kv(metrics.columnSizes),
    value_counts: kv(metrics.valueCounts),
    null_value_counts: kv(metrics.nullValueCounts),
    nan_value_counts: kv(metrics.nanValueCounts),
    lower_bounds: kv(bytes(metrics.lowerBounds)),
    upper_bounds: kv(bytes(metrics.upperBounds)),
    key_metadata: null,
    split_offsets: metrics.splitOffsets.length ? metrics.splitOffsets : null,
    equality_ids: opts.equalityIds ?? null,
    sort_order_id: 0,
  };
}

/**
 * A manifest file. ADDED entries leave their sequence numbers null so they inherit the manifest's (the spec's
 * rule for new files); EXISTING and DELETED entries carry theirs explicitly.
 */
export function encodeManifest(entries: ManifestEntry[], opts: { content: 'data' | 'deletes'; schema: IcebergSchema }): Buffer {
  const records = entries.map((e) => ({
    status: e.status,
    snapshot_id: e.snapshotId,
    sequence_number: e.status === 1 ? null : e.sequenceNumber,
    file_sequence_number: e.status === 1 ? null : e.fileSequenceNumber,
    data_file: e.file,
  }));
  return encodeContainer(MANIFEST_ENTRY_SCHEMA, records, {
    schema: JSON.stringify(opts.schema),
    'schema-id': String(opts.schema['schema-id']),
    'partition-spec': '[]',
    'partition-spec-id': '0',
    'format-version': '2',
    content: opts.content,
  });
}

export function encodeManifestList(manifests: ManifestFile[], opts: { snapshotId: bigint; parentId: bigint | null; sequenceNumber: number }): Buffer {
  return encodeContainer(MANIFEST_FILE_SCHEMA, manifests, {
    'snapshot-id': opts.snapshotId.toString(),
    'parent-snapshot-id': opts.parentId === null ? 'null' : opts.parentId.toString(),
    'sequence-number': String(opts.sequenceNumber),
    'format-version': '2',
  });
}

const big = (v: unknown, fallback: bigint): bigint => (typeof v === 'bigint' ? v : typeof v === 'number' ? BigInt(v) : fallback);
const num = (v: unknown, fallback: number): number => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : fallback);
const orNull = <T>(v: unknown): T | null => (v === undefined || v === null ? null : (v as T));

/** The records of a manifest list; v1 defaults (content 0, sequence numbers 0) fill what older files lack. */
export function decodeManifestList(buf: Buffer, where: string): ManifestFile[] {
  return decodeContainer(buf, where).records.map((r) => {
    if (typeof r.manifest_path !== 'string') throw tableError('bad_manifest_list', `${where} has a record without manifest_path`);
    return {
      manifest_path: r.manifest_path,
      manifest_length: big(r.manifest_length, 0n),
      partition_spec_id: num(r.partition_spec_id, 0),
      content: num(r.content, 0),
      sequence_number: big(r.sequence_number, 0n),
      min_sequence_number: big(r.min_sequence_number, 0n),
      added_snapshot_id: big(r.added_snapshot_id, 0n),
      added_files_count: num(r.added_files_count, 0),
      existing_files_count: num(r.existing_files_count, 0),
      deleted_files_count: num(r.deleted_files_count, 0),
      added_rows_count: big(r.added_rows_count, 0n),
      existing_rows_count: big(r.existing_rows_count, 0n),
      deleted_rows_count: big(r.deleted_rows_count, 0n),
      partitions: orNull<unknown[]>(r.partitions),
      key_metadata: orNull<Buffer>(r.key_metadata),
    };
  });
}

function normalizeDataFile(d: Record<string, unknown>, where: string): DataFileRecord {
  if (typeof d.file_path !== 'string') throw tableError('bad_manifest', `${where} has an entry without file_path`);
  if (d.partition && Object.keys(d.partition).length > 0) {
    throw tableError('partitioned_table', `${where} lists a partitioned file; this writer handles unpartitioned tables only`);
  }
  return {
    content: num(d.content, 0),
    file_path: d.file_path,
    file_format: typeof d.file_format === 'string' ? d.file_format : 'PARQUET',
    partition: {},
    record_count: big(d.record_count, 0n),
    file_size_in_bytes: big(d.file_size_in_bytes, 0n),
    column_sizes: orNull(d.column_sizes),
    value_counts: orNull(d.value_counts),
    null_value_counts: orNull(d.null_value_counts),
    nan_value_counts: orNull(d.nan_value_counts),
    lower_bounds: orNull(d.lower_bounds),
    upper_bounds: orNull(d.upper_bounds),
    key_metadata: orNull(d.key_metadata),
    split_offsets: orNull(d.split_offsets),
    equality_ids: orNull(d.equality_ids),
    sort_order_id: orNull(d.sort_order_id),
  };
}

/** The entries of a manifest, with snapshot id and sequence numbers inherited from its manifest-list record. */
export function decodeManifest(buf: Buffer, manifest: ManifestFile, where: string): ManifestEntry[] {
  return decodeContainer(buf, where).records.map((r) => {
    const status = num(r.status, -1);
    if (status !== 0 && status !== 1 && status !== 2) throw tableError('bad_manifest', `${where} has an entry with status ${String(r.status)}`);
    // null inherits (ADDED entries only); a field the file does not have at all is a v1 manifest: 0
    const inherit = status === 1 ? manifest.sequence_number : -1n;
    const seq = r.sequence_number === undefined ? 0n : big(r.sequence_number, inherit);
    const fileSeq = r.file_sequence_number === undefined ? 0n : big(r.file_sequence_number, inherit);
    if (seq < 0n || fileSeq < 0n) {
      throw tableError('bad_manifest', `${where} has an existing or deleted entry without sequence numbers, which the spec forbids`);
    }
    return {
      status,
      snapshotId: big(r.snapshot_id, manifest.added_snapshot_id),
      sequenceNumber: seq,
      fileSequenceNumber: fileSeq,
      file: normalizeDataFile((r.data_file ?? {}) as Record<string, unknown>, where),
    };
  });
}
