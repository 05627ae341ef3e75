// An Iceberg table as a synced table's source, by any writer that puts it in the bucket: its newest metadata
// (v2, unpartitioned, as lake/iceberg reads them), its current schema as Postgres columns, and its rows. A full load
// reads the current snapshot with its equality deletes applied (lake/iceberg/scan.ts); an incremental one reads only
// the data files the snapshots since the last loaded one added, when each of them was an append (nothing deleted or
// rewritten, so the rows already loaded are still exactly right); anything else falls back to a full load.
import type { ObjectStore } from '../../storage-node/object-store/object-store.ts';
import { type ManifestEntry, decodeManifest, decodeManifestList } from '../iceberg/avro-manifest.ts';
import { IcebergError } from '../iceberg/errors.ts';
import { type Snapshot, type TableMetadata, currentSchema, currentSnapshot, parseTableMetadata } from '../iceberg/metadata.ts';
import { readParquet } from '../iceberg/parquet-file.ts';
import { scanRows } from '../iceberg/scan.ts';
import type { IcebergSchema } from '../iceberg/types.ts';
import { keyOfUri } from '../iceberg/uri.ts';
import { icebergColumns } from './columns.ts';
import { loadError } from './errors.ts';
import type { SourceRow } from './parquet-file.ts';
import { type Batch, type LoadedState, type Source, newestMetadata } from './source.ts';

/** Iceberg's own refusals (a damaged or unsupported table) as the source's fault, with their message. */
async function asLoadError<T>(what: () => Promise<T>): Promise<T> {
  try {
    return await what();
  } catch (e) {
    if (e instanceof IcebergError) throw loadError(422, 'SOURCE_NOT_LOADABLE', `the Iceberg table cannot be loaded: ${e.message}`, e);
    throw e;
  }
}

export class IcebergSource implements Source {
  readonly format = 'iceberg';
  private readonly store: ObjectStore;
  private readonly key: string;
  private readonly meta: TableMetadata;
  private readonly schema: IcebergSchema;

  private constructor(store: ObjectStore, key: string, meta: TableMetadata) {
    this.store = store;
    this.key = key;
    this.meta = meta;
    this.schema = currentSchema(meta);
  }

  static async open(store: ObjectStore, key: string, location: string): Promise<IcebergSource> {
    const newest = await newestMetadata(store, key);
    if (!newest.key) throw loadError(422, 'SOURCE_NOT_LOADABLE', `${location} has a version hint but no metadata/*.metadata.json: the Iceberg table is damaged`);
    const metadataKey = newest.key;
    return asLoadError(async () => {
      const file = await store.get(metadataKey);
      if (!file) throw loadError(422, 'SOURCE_NOT_LOADABLE', `${location}: ${metadataKey} vanished while it was read; try again`);
      return new IcebergSource(store, key, parseTableMetadata(file.body.toString('utf8'), `${location}/${metadataKey.slice(key.length + 1)}`));
    });
  }

  /** The bucket key of a file the table references: by the bucket's URI, or relative to the table's own location. */
  private keyOf(uri: string): string {
    if (uri.startsWith(`${this.meta.location}/`)) return `${this.key}/${uri.slice(this.meta.location.length + 1)}`;
    try {
      return keyOfUri(this.store, uri);
    } catch {
      throw loadError(422, 'SOURCE_NOT_LOADABLE', `the Iceberg table references ${uri}, which is neither under its location ${this.meta.location} nor in this bucket`);
    }
  }

  private async get(uri: string, what: string): Promise<Buffer> {
    const file = await this.store.get(this.keyOf(uri));
    if (!file) throw loadError(422, 'SOURCE_NOT_LOADABLE', `${what} ${uri} of the Iceberg table is missing; the table is damaged (or was expired meanwhile: refresh again)`);
    return file.body;
  }

  /** Every entry of the snapshot's manifests that is not a deletion. */
  private async liveEntries(snapshot: Snapshot): Promise<ManifestEntry[]> {
    const out: ManifestEntry[] = [];
    const list = snapshot['manifest-list'];
    for (const m of decodeManifestList(await this.get(list, 'manifest list'), list)) {
      for (const entry of decodeManifest(await this.get(m.manifest_path, 'manifest'), m, m.manifest_path)) {
        if (entry.status === 2) continue;
        if (entry.file.content === 1) throw loadError(422, 'SOURCE_NOT_SUPPORTED', `${entry.file.file_path} is a position-delete file; synced tables read Iceberg tables with equality deletes only`);
        out.push(entry);
      }
    }
    return out;
  }

  /** The snapshots after `since` up to the current one, newest first; null when `since` is not an ancestor. */
  private snapshotsSince(current: Snapshot, since: bigint): Snapshot[] | null {
    const byId = new Map(this.meta.snapshots.map((s) => [s['snapshot-id'], s]));
    const chain: Snapshot[] = [];
    for (let s: Snapshot | undefined = current; s; s = s['parent-snapshot-id'] === undefined ? undefined : byId.get(s['parent-snapshot-id'])) {
      if (s['snapshot-id'] === since) return chain;
      chain.push(s);
    }
    return null;
  }

  batch(previous: LoadedState | null, incremental: boolean): Promise<Batch> {
    return asLoadError(async () => {
      const columns = icebergColumns(this.schema);
      const current = currentSnapshot(this.meta);
      const state: LoadedState = { snapshotId: current ? String(current['snapshot-id']) : null, files: [] };
      if (!current) return { mode: 'full', columns, rows: [], files: 0, state };
      const since = incremental && previous?.snapshotId ? this.snapshotsSince(current, BigInt(previous.snapshotId)) : null;
      const entries = await this.liveEntries(current);
      if (since?.every((s) => s.summary.operation === 'append')) {
        const added = new Set(since.map((s) => s['snapshot-id']));
        const fresh = entries.filter((e) => e.status === 1 && added.has(e.snapshotId));
        if (fresh.every((e) => e.file.content === 0)) {
          const rows: SourceRow[] = [];
          for (const e of fresh) {
            for (const r of await readParquet(await this.get(e.file.file_path, 'data file'), this.schema, e.file.file_path)) rows.push(r);
          }
          return { mode: 'incremental', columns, rows, files: fresh.length, state };
        }
      }
      const rows = await scanRows(entries.map((entry) => ({ entry })), this.schema, (uri, what) => this.get(uri, what));
      return { mode: 'full', columns, rows, files: entries.filter((e) => e.file.content === 0).length, state };
    });
  }
}
