// An Apache Iceberg v2 table on an ObjectStore: create, open, commit (appends and equality deletes as one
// snapshot), compact, expire snapshots. The commit point is the create-once put of `metadata/v(N+1).metadata.json`
// (`ifNoneMatch: '*'`), so two writers racing for the same version cannot both win; `version-hint.text` only
// speeds up finding the newest version and is never trusted alone.
import { randomUUID } from 'node:crypto';
import { createLogger } from '../../lib/logger.ts';
import { PreconditionFailedError, type ObjectStore } from '../../storage-node/object-store/object-store.ts';
import {
  dataFileRecord,
  decodeManifest,
  decodeManifestList,
  encodeManifest,
  encodeManifestList,
  type DataFileRecord,
  type ManifestEntry,
  type ManifestFile,
} from './avro-manifest.ts';
import { IcebergError, tableError } from './errors.ts';
import {
  currentSchema,
  currentSnapshot,
  newSnapshotId,
  newTableMetadata,
  nextMetadata,
  parseTableMetadata,
  stringifyMetadata,
  withSnapshot,
  type Snapshot,
  type TableMetadata,
} from './metadata.ts';
import { writeParquet } from './parquet-file.ts';
import { evolveSchema, identifierFields, maxFieldId, projectSchema } from './schema.ts';
import { buildSummary, emptyDelta, userEntries, type Operation, type SummaryDelta } from './summary.ts';
import type { IcebergSchema, LiveFile, Row, SnapshotInfo, TableChange } from './types.ts';
import { keyOfUri, objectUri } from './uri.ts';
import { scanRows, type LiveEntry } from './scan.ts';

const log = createLogger('iceberg');

const metadataKey = (prefix: string, version: number) => `${prefix}/metadata/v${version}.metadata.json`;
const hintKey = (prefix: string) => `${prefix}/metadata/version-hint.text`;
const VERSION_FILE = /\/metadata\/v(\d+)\.metadata\.json$/;

function normalizePrefix(prefix: string): string {
  const p = prefix.replace(/^\/+|\/+$/g, '');
  if (p === '') throw new IcebergError('invalid_prefix', 'a table needs a non-empty key prefix, e.g. lake/<project>/<branch>/<table>');
  return p;
}

/** The newest committed version: the hint (or the highest listed file) then forward while newer files exist. */
async function findVersion(store: ObjectStore, prefix: string): Promise<number | null> {
  const hint = await store.get(hintKey(prefix));
  let version = hint ? Number.parseInt(hint.body.toString('utf8').trim(), 10) : Number.NaN;
  if (!Number.isInteger(version) || version < 1) {
    const listed = await store.list(`${prefix}/metadata/v`);
    const versions = listed.map((o) => VERSION_FILE.exec(o.key)).filter((m) => m !== null).map((m) => Number(m[1]));
    if (versions.length === 0) return null;
    version = Math.max(...versions);
  }
  // a writer may have committed without getting to update the hint
  while (await store.head(metadataKey(prefix, version + 1))) version++;
  return version;
}

/** Files one snapshot adds, and what they change in the summary. */
interface SnapshotPlan {
  meta: TableMetadata;
  snapshotId: bigint;
  sequenceNumber: number;
  operation: Operation;
  manifests: ManifestFile[];
  delta: SummaryDelta;
  user: Record<string, string>;
  /** Keys written for this snapshot so far; removed again if it does not commit. */
  written: string[];
}

export class IcebergTable {
  readonly #store: ObjectStore;
  readonly #prefix: string;
  #meta: TableMetadata;
  #version: number;
  #queue: Promise<unknown> = Promise.resolve();
  /** The current snapshot's manifest list, which the next commit carries over. */
  #currentList: { uri: string; manifests: ManifestFile[] } | null = null;

  private constructor(store: ObjectStore, prefix: string, meta: TableMetadata, version: number) {
    this.#store = store;
    this.#prefix = prefix;
    this.#meta = meta;
    this.#version = version;
  }

  /** Reads metadata/version-hint.text and the metadata file it names; null when there is no table there. */
  static async open(store: ObjectStore, prefix: string): Promise<IcebergTable | null> {
    const p = normalizePrefix(prefix);
    const version = await findVersion(store, p);
    if (version === null) return null;
    const key = metadataKey(p, version);
    const file = await store.get(key);
    if (!file) throw tableError('missing_metadata', `${objectUri(store, key)} is gone although newer versions were expected; the table is damaged`);
    const meta = parseTableMetadata(file.body.toString('utf8'), objectUri(store, key));
    const location = objectUri(store, p);
    if (meta.location !== location) {
      throw tableError('moved_table', `the table at ${location} says its location is ${meta.location}; Iceberg paths are absolute, so open it where it was written`);
    }
    return new IcebergTable(store, p, meta, version);
  }

  /** Creates v1.metadata.json (format-version 2, unpartitioned, no snapshot) + version-hint.text; fails (PreconditionFailedError) if one exists. */
  static async create(store: ObjectStore, prefix: string, schema: IcebergSchema, properties: Record<string, string> = {}): Promise<IcebergTable> {
    const p = normalizePrefix(prefix);
    for (const [k, val] of Object.entries(properties)) {
      if (typeof val !== 'string') throw new IcebergError('invalid_properties', `table property ${JSON.stringify(k)} must be a string (Iceberg properties are a string map)`);
    }
    const key = metadataKey(p, 1);
    const existing = await findVersion(store, p);
    if (existing !== null) throw new PreconditionFailedError(key, `a table already exists at ${objectUri(store, p)} (version ${existing}); open it instead`);
    const meta = newTableMetadata(objectUri(store, p), schema, properties);
    await store.put(key, Buffer.from(stringifyMetadata(meta)), { ifNoneMatch: '*' });
    await store.put(hintKey(p), Buffer.from('1'));
    return new IcebergTable(store, p, meta, 1);
  }

  /** The table root URI. */
  get location(): string {
    return this.#meta.location;
  }

  /** N of the vN.metadata.json this object reflects. */
  get version(): number {
    return this.#version;
  }

  get schema(): IcebergSchema {
    return currentSchema(this.#meta);
  }

  get currentSnapshot(): SnapshotInfo | null {
    const s = currentSnapshot(this.#meta);
    if (!s) return null;
    return { snapshotId: s['snapshot-id'], sequenceNumber: s['sequence-number'], summary: { ...s.summary }, timestampMs: s['timestamp-ms'] };
  }

  /**
   * One atomic commit: a new snapshot adding a data file with `rows` and an equality-delete file with `deletes`
   * (only their identifier fields are used), keeping every live file. Deletes apply to rows of earlier commits
   * only, so deleting a key and adding a row with it in one commit is an update. `schema` evolves the table first.
   * Throws PreconditionFailedError, leaving the table at its version, when another writer committed that version
   * first: reopen the table and retry.
   */
  commit(change: TableChange): Promise<{ snapshotId: bigint; sequenceNumber: number }> {
    return this.#exclusive(() => this.#commit(change));
  }

  /** Rewrites the live rows (deletes applied) into one data file, as a 'replace' snapshot without delete files. */
  compact(): Promise<{ filesBefore: number; filesAfter: number; rows: number }> {
    return this.#exclusive(() => this.#compact());
  }

  /** Drops snapshots older than the newest `keep` from the metadata, and the files only they reference. */
  expireSnapshots(keep: number): Promise<{ expired: number; filesDeleted: number }> {
    return this.#exclusive(() => this.#expire(keep));
  }

  /** Live data and delete files of the current snapshot. */
  async files(): Promise<LiveFile[]> {
    const snap = currentSnapshot(this.#meta);
    if (!snap) return [];
    return (await this.#liveEntries(snap)).map(({ entry }) => ({
      path: entry.file.file_path,
      content: entry.file.content === 0 ? 'data' : 'equality-deletes',
      records: Number(entry.file.record_count),
      bytes: Number(entry.file.file_size_in_bytes),
    }));
  }

  /** The table's current rows, equality deletes applied. */
  async readRows(): Promise<Row[]> {
    const snap = currentSnapshot(this.#meta);
    if (!snap) return [];
    return scanRows(await this.#liveEntries(snap), currentSchema(this.#meta), (uri, what) => this.#get(uri, what));
  }

  // ---- commit ----

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #commit(change: TableChange): Promise<{ snapshotId: bigint; sequenceNumber: number }> {
    const user = checkSummary(change.summary ?? {});
    const meta = change.schema ? this.#evolved(change.schema) : this.#meta;
    const schema = currentSchema(meta);
    const rows = checkRows(change.rows, 'rows');
    const deletes = deleteKeys(schema, checkRows(change.deletes, 'deletes'));
    const plan = this.#plan(meta, 'append', user);
    plan.operation = rows.length && deletes.length ? 'overwrite' : deletes.length ? 'delete' : 'append';
    try {
      if (rows.length) {
        const file = await this.#writeDataFile(schema, rows, plan);
        plan.manifests.push(await this.#writeManifest('data', [added(plan, file)], schema, plan));
        plan.delta.addedDataFiles = 1;
        plan.delta.addedRecords = rows.length;
        plan.delta.addedFilesSize += Number(file.file_size_in_bytes);
      }
      if (deletes.length) {
        const ids = (schema['identifier-field-ids'] ?? []).slice();
        const file = await this.#writeDataFile(projectSchema(schema, ids), deletes, plan, ids);
        plan.manifests.push(await this.#writeManifest('deletes', [added(plan, file)], schema, plan));
        plan.delta.addedDeleteFiles = 1;
        plan.delta.addedEqualityDeletes = deletes.length;
        plan.delta.addedFilesSize += Number(file.file_size_in_bytes);
      }
      plan.manifests.push(...(await this.#currentManifests()));
      await this.#finish(plan);
    } catch (err) {
      await this.#discard(plan.written);
      throw err;
    }
    return { snapshotId: plan.snapshotId, sequenceNumber: plan.sequenceNumber };
  }

  #evolved(schema: IcebergSchema): TableMetadata {
    const meta = this.#meta;
    const nextId = Math.max(...meta.schemas.map((s) => s['schema-id'])) + 1;
    const evolved = evolveSchema(currentSchema(meta), schema, meta['last-column-id'], nextId);
    if (!evolved) return meta;
    const lastColumnId = Math.max(meta['last-column-id'], maxFieldId(evolved));
    return { ...meta, schemas: [...meta.schemas, evolved], 'current-schema-id': nextId, 'last-column-id': lastColumnId };
  }

  #plan(meta: TableMetadata, operation: Operation, user: Record<string, string>): SnapshotPlan {
    return {
      meta,
      snapshotId: newSnapshotId(meta),
      sequenceNumber: meta['last-sequence-number'] + 1,
      operation,
      manifests: [],
      delta: emptyDelta(),
      user,
      written: [],
    };
  }

  async #putNew(key: string, body: Uint8Array, plan: SnapshotPlan): Promise<void> {
    plan.written.push(key);
    await this.#store.put(key, body, { ifNoneMatch: '*' });
  }

  async #writeDataFile(schema: IcebergSchema, rows: Row[], plan: SnapshotPlan, equalityIds?: number[]): Promise<DataFileRecord> {
    const { bytes, metrics } = writeParquet(schema, rows);
    const seq = String(plan.sequenceNumber).padStart(6, '0');
    const key = `${this.#prefix}/data/${seq}-${randomUUID()}${equalityIds ? '-deletes' : ''}.parquet`;
    await this.#putNew(key, bytes, plan);
    const path = objectUri(this.#store, key);
    return dataFileRecord({ content: equalityIds ? 2 : 0, path, size: bytes.length, metrics, equalityIds });
  }

  /** Writes a manifest of `entries` for this snapshot and returns its manifest-list record. */
  async #writeManifest(content: 'data' | 'deletes', entries: ManifestEntry[], schema: IcebergSchema, plan: SnapshotPlan): Promise<ManifestFile> {
    const bytes = encodeManifest(entries, { content, schema });
    const key = `${this.#prefix}/metadata/${randomUUID()}-m${plan.manifests.length}.avro`;
    await this.#putNew(key, bytes, plan);
    const count = (status: number) => entries.filter((e) => e.status === status);
    const rows = (status: number) => count(status).reduce((n, e) => n + e.file.record_count, 0n);
    const seq = BigInt(plan.sequenceNumber);
    let minSeq = seq;
    for (const e of entries) if (e.status !== 2 && e.sequenceNumber < minSeq) minSeq = e.sequenceNumber;
    return {
      manifest_path: objectUri(this.#store, key),
      manifest_length: BigInt(bytes.length),
      partition_spec_id: 0,
      content: content === 'data' ? 0 : 1,
      sequence_number: seq,
      min_sequence_number: minSeq,
      added_snapshot_id: plan.snapshotId,
      added_files_count: count(1).length,
      existing_files_count: count(0).length,
      deleted_files_count: count(2).length,
      added_rows_count: rows(1),
      existing_rows_count: rows(0),
      deleted_rows_count: rows(2),
      partitions: [],
      key_metadata: null,
    };
  }

  /** Writes the manifest list, then commits the metadata that makes the snapshot current. */
  async #finish(plan: SnapshotPlan): Promise<Snapshot> {
    const parent = currentSnapshot(this.#meta);
    const parentId = parent ? parent['snapshot-id'] : null;
    const listBytes = encodeManifestList(plan.manifests, { snapshotId: plan.snapshotId, parentId, sequenceNumber: plan.sequenceNumber });
    const listKey = `${this.#prefix}/metadata/snap-${plan.snapshotId}-1-${randomUUID()}.avro`;
    await this.#putNew(listKey, listBytes, plan);
    const snapshot: Snapshot = {
      'snapshot-id': plan.snapshotId,
      ...(parentId === null ? {} : { 'parent-snapshot-id': parentId }),
      'sequence-number': plan.sequenceNumber,
      'timestamp-ms': Math.max(Date.now(), plan.meta['last-updated-ms']),
      'manifest-list': objectUri(this.#store, listKey),
      summary: buildSummary(plan.operation, plan.delta, parent?.summary, plan.user),
      'schema-id': plan.meta['current-schema-id'],
    };
    await this.#publish(withSnapshot(plan.meta, this.#metadataUri(), snapshot), plan.written);
    this.#currentList = { uri: snapshot['manifest-list'], manifests: plan.manifests };
    return snapshot;
  }

  #metadataUri(): string {
    return objectUri(this.#store, metadataKey(this.#prefix, this.#version));
  }

  /**
   * The commit point: create v(N+1) only if no one else has. Losing the race removes this commit's files; any
   * other failure leaves them, as the outcome of the put is then unknown and they may be part of the table.
   */
  async #publish(next: TableMetadata, written: string[]): Promise<void> {
    const version = this.#version + 1;
    const key = metadataKey(this.#prefix, version);
    const ours = written.splice(0);
    try {
      await this.#store.put(key, Buffer.from(stringifyMetadata(next)), { ifNoneMatch: '*' });
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      await this.#discard(ours);
      throw new PreconditionFailedError(key, `another writer committed version ${version} of ${this.location} first; nothing of this commit remains: reopen the table (IcebergTable.open) and try again`);
    }
    this.#meta = next;
    this.#version = version;
    try {
      await this.#store.put(hintKey(this.#prefix), Buffer.from(String(version)));
    } catch (err) {
      // committed all the same: readers and the next open() probe forward from an older hint
      log.warn({ err, table: this.location, version }, 'iceberg: could not update version-hint.text');
    }
  }

  async #discard(keys: string[]): Promise<void> {
    for (const key of keys.splice(0)) {
      await this.#store.delete(key).catch((err: unknown) => log.warn({ err, key }, 'iceberg: could not remove a file of a failed commit'));
    }
  }

  // ---- reading the current snapshot ----

  async #get(uri: string, what: string): Promise<Buffer> {
    const file = await this.#store.get(keyOfUri(this.#store, uri));
    if (!file) throw tableError('missing_file', `${what} ${uri} is missing; the table is damaged (or its snapshot was expired meanwhile: reopen it)`);
    return file.body;
  }

  async #manifestList(snapshot: Snapshot): Promise<ManifestFile[]> {
    const uri = snapshot['manifest-list'];
    if (this.#currentList?.uri === uri) return this.#currentList.manifests;
    const manifests = decodeManifestList(await this.#get(uri, 'manifest list'), uri);
    if (snapshot === currentSnapshot(this.#meta)) this.#currentList = { uri, manifests };
    return manifests;
  }

  async #currentManifests(): Promise<ManifestFile[]> {
    const snap = currentSnapshot(this.#meta);
    return snap ? this.#manifestList(snap) : [];
  }

  async #entries(manifest: ManifestFile): Promise<ManifestEntry[]> {
    return decodeManifest(await this.#get(manifest.manifest_path, 'manifest'), manifest, manifest.manifest_path);
  }

  async #liveEntries(snapshot: Snapshot): Promise<LiveEntry[]> {
    const out: LiveEntry[] = [];
    for (const manifest of await this.#manifestList(snapshot)) {
      for (const entry of await this.#entries(manifest)) {
        if (entry.status === 2) continue;
        if (entry.file.content === 1) {
          throw tableError('position_deletes', `${entry.file.file_path} is a position-delete file; this writer handles equality deletes only`);
        }
        out.push({ entry });
      }
    }
    return out;
  }

  // ---- maintenance ----

  async #compact(): Promise<{ filesBefore: number; filesAfter: number; rows: number }> {
    const snap = currentSnapshot(this.#meta);
    if (!snap) return { filesBefore: 0, filesAfter: 0, rows: 0 };
    const live = await this.#liveEntries(snap);
    const data = live.filter((e) => e.entry.file.content === 0).map((e) => e.entry);
    const deletes = live.filter((e) => e.entry.file.content === 2).map((e) => e.entry);
    if (deletes.length === 0 && data.length <= 1) {
      // already one file (or none) and nothing to apply: a new snapshot would change nothing
      return { filesBefore: live.length, filesAfter: live.length, rows: Number(data[0]?.file.record_count ?? 0n) };
    }
    const schema = currentSchema(this.#meta);
    const rows = await scanRows(live, schema, (uri, what) => this.#get(uri, what));
    const plan = this.#plan(this.#meta, 'replace', userEntries(snap.summary));
    const removed = (e: ManifestEntry): ManifestEntry => ({ ...e, status: 2, snapshotId: plan.snapshotId });
    const sum = (entries: ManifestEntry[], f: (d: DataFileRecord) => bigint) => Number(entries.reduce((n, e) => n + f(e.file), 0n));
    try {
      const entries: ManifestEntry[] = [];
      if (rows.length > 0) {
        const file = await this.#writeDataFile(schema, rows, plan);
        entries.push(added(plan, file));
        Object.assign(plan.delta, { addedDataFiles: 1, addedRecords: rows.length, addedFilesSize: Number(file.file_size_in_bytes) });
      }
      plan.manifests.push(await this.#writeManifest('data', [...entries, ...data.map(removed)], schema, plan));
      if (deletes.length > 0) plan.manifests.push(await this.#writeManifest('deletes', deletes.map(removed), schema, plan));
      Object.assign(plan.delta, {
        removedDataFiles: data.length,
        removedRecords: sum(data, (d) => d.record_count),
        removedDeleteFiles: deletes.length,
        removedEqualityDeletes: sum(deletes, (d) => d.record_count),
        removedFilesSize: sum([...data, ...deletes], (d) => d.file_size_in_bytes),
      });
      await this.#finish(plan);
    } catch (err) {
      await this.#discard(plan.written);
      throw err;
    }
    return { filesBefore: live.length, filesAfter: rows.length > 0 ? 1 : 0, rows: rows.length };
  }

  async #expire(keep: number): Promise<{ expired: number; filesDeleted: number }> {
    if (!Number.isInteger(keep) || keep < 1) {
      throw new IcebergError('invalid_argument', `expireSnapshots(keep) needs keep >= 1 (the current snapshot always stays), got ${keep}`);
    }
    const meta = this.#meta;
    const newestFirst = [...meta.snapshots].sort((a, b) => b['sequence-number'] - a['sequence-number'] || b['timestamp-ms'] - a['timestamp-ms']);
    const retainedIds = new Set(newestFirst.slice(0, keep).map((s) => s['snapshot-id']));
    for (const ref of Object.values(meta.refs)) retainedIds.add(ref['snapshot-id']);
    const retained = meta.snapshots.filter((s) => retainedIds.has(s['snapshot-id']));
    const expired = meta.snapshots.filter((s) => !retainedIds.has(s['snapshot-id']));
    if (expired.length === 0) return { expired: 0, filesDeleted: 0 };
    const stillUsed = await this.#reachable(retained, false);
    const candidates = await this.#reachable(expired, true);
    await this.#publish(
      nextMetadata(meta, this.#metadataUri(), {
        snapshots: retained,
        'snapshot-log': meta['snapshot-log'].filter((e) => retainedIds.has(e['snapshot-id'])),
      }),
      [],
    );
    let filesDeleted = 0;
    for (const uri of candidates) {
      if (stillUsed.has(uri)) continue;
      const key = keyOfUri(this.#store, uri);
      if (!key.startsWith(`${this.#prefix}/`)) continue; // never delete what lies outside the table
      try {
        await this.#store.delete(key);
        filesDeleted++;
      } catch (err) {
        log.warn({ err, key }, 'iceberg: could not delete a file of an expired snapshot');
      }
    }
    return { expired: expired.length, filesDeleted };
  }

  /** Every file the snapshots reference: manifest lists, manifests, and their live data and delete files. */
  async #reachable(snapshots: Snapshot[], tolerateMissing: boolean): Promise<Set<string>> {
    const out = new Set<string>();
    // an expired snapshot's files may already be gone (an earlier expiry that stopped half-way)
    const orNone = async <T>(read: Promise<T[]>): Promise<T[]> => {
      try {
        return await read;
      } catch (err) {
        if (tolerateMissing && err instanceof IcebergError && err.code === 'iceberg_missing_file') return [];
        throw err;
      }
    };
    for (const snap of snapshots) {
      out.add(snap['manifest-list']);
      for (const m of await orNone(this.#manifestList(snap))) {
        if (out.has(m.manifest_path)) continue;
        out.add(m.manifest_path);
        for (const e of await orNone(this.#entries(m))) if (e.status !== 2) out.add(e.file.file_path);
      }
    }
    return out;
  }
}

/** The manifest entry of a file this snapshot adds. */
function added(plan: SnapshotPlan, file: DataFileRecord): ManifestEntry {
  const seq = BigInt(plan.sequenceNumber);
  return { status: 1, snapshotId: plan.snapshotId, sequenceNumber: seq, fileSequenceNumber: seq, file };
}

function checkRows(rows: Row[] | undefined, what: string): Row[] {
  if (rows === undefined) return [];
  if (!Array.isArray(rows)) throw new IcebergError('invalid_change', `commit: ${what} must be an array of row objects`);
  return rows;
}

function checkSummary(summary: Record<string, string>): Record<string, string> {
  for (const [k, v] of Object.entries(summary)) {
    if (typeof v !== 'string') throw new IcebergError('invalid_change', `commit: summary entry ${JSON.stringify(k)} must be a string (Iceberg summaries are string maps)`);
  }
  return summary;
}

/** Delete rows cut down to the schema's identifier fields, which every one of them must have. */
function deleteKeys(schema: IcebergSchema, deletes: Row[]): Row[] {
  if (deletes.length === 0) return [];
  const fields = identifierFields(schema);
  return deletes.map((row, i) => {
    const key: Row = {};
    for (const f of fields) {
      const value = row?.[f.name];
      if (value === null || value === undefined) {
        throw new IcebergError('invalid_row', `delete ${i} has no value for identifier field ${JSON.stringify(f.name)}; an equality delete names the row by all identifier fields`);
      }
      key[f.name] = value;
    }
    return key;
  });
}
