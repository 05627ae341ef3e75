// What a synced table loads from, whatever its format: the rows to load now given what was loaded before (a full
// load, or an incremental one of what the source added since), and what to remember for the next refresh. Also the
// detection of a location's format: an Iceberg table root, a Parquet file, or a folder of Parquet files.
import type { ObjectStore } from '../../storage-node/object-store/object-store.ts';
import type { LoadColumn } from './columns.ts';
import { loadError } from './errors.ts';
import type { SourceRow } from './parquet-file.ts';

export type SourceFormat = 'iceberg' | 'parquet';

/** A Parquet file loaded, and its ETag then (a file rewritten since is not the file loaded). */
export interface LoadedFile {
  key: string;
  etag: string;
}

/** What the last load read: an Iceberg snapshot, or Parquet files. */
export interface LoadedState {
  snapshotId: string | null;
  files: LoadedFile[];
}

export interface Batch {
  mode: 'full' | 'incremental';
  /** The source's columns as the rows have them. */
  columns: LoadColumn[];
  rows: SourceRow[];
  /** Data files read. */
  files: number;
  /** What the next incremental refresh starts from. */
  state: LoadedState;
}

export interface Source {
  readonly format: SourceFormat;
  /** The rows to load: all of them, or (incremental, with what was loaded before) only what the source added since. */
  batch(previous: LoadedState | null, incremental: boolean): Promise<Batch>;
}

/** Where the metadata files of an Iceberg table at `key` would be. */
export const metadataPrefix = (key: string): string => `${key}/metadata/`;

/** A metadata file name: `v3.metadata.json` (Hadoop tables, this project) or `00003-<uuid>.metadata.json` (catalogs). */
const METADATA_FILE = /^(?:v(\d+)|(\d+)-[^/]*)\.metadata\.json$/;

/** The newest metadata file of an Iceberg table, or null when `key` holds none (nor a version hint). */
export async function newestMetadata(store: ObjectStore, key: string): Promise<{ key: string | null; isTable: boolean }> {
  const listed = await store.list(metadataPrefix(key));
  let best: { key: string; version: number } | null = null;
  let hint = false;
  for (const o of listed) {
    const name = o.key.slice(metadataPrefix(key).length);
    if (name === 'version-hint.text') hint = true;
    const m = METADATA_FILE.exec(name);
    if (!m) continue;
    const version = Number(m[1] ?? m[2]);
    if (!best || version > best.version || (version === best.version && o.key > best.key)) best = { key: o.key, version };
  }
  return { key: best?.key ?? null, isTable: best !== null || hint };
}

export type Detected = { format: 'iceberg' } | { format: 'parquet'; files: { key: string; etag: string }[]; single: boolean };

/** What is at a location: an Iceberg table, a Parquet file, Parquet files under it; 404 for nothing, 400 for other files. */
export async function detect(store: ObjectStore, key: string, location: string): Promise<Detected> {
  const file = await store.head(key);
  if (file) return { format: 'parquet', files: [{ key, etag: file.etag }], single: true };
  if ((await newestMetadata(store, key)).isTable) return { format: 'iceberg' };
  const listed = await store.list(`${key}/`);
  if (listed.length === 0) throw loadError(404, 'SOURCE_NOT_FOUND', `nothing is at ${location}: no file, no Iceberg table (metadata/) and no files under it`);
  const parquet = listed.filter((o) => /\.parquet$/i.test(o.key) && !/(^|\/)[._][^/]*$/.test(o.key));
  if (parquet.length === 0) {
    throw loadError(400, 'BAD_SOURCE', `${location} is neither an Iceberg table (no metadata/*.metadata.json) nor a folder of .parquet files (it holds ${listed.length} other files)`);
  }
  return { format: 'parquet', files: parquet.map((o) => ({ key: o.key, etag: o.etag })), single: false };
}
