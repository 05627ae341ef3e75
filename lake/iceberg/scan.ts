// Reading a snapshot's rows (this writer's own reader, used by compaction and readRows): every live data file,
// minus the rows an equality delete matches. Per the spec's scan planning, an equality delete applies to data
// files with a strictly lower data sequence number, and unpartitioned deletes apply table-wide.
import type { ManifestEntry } from './avro-manifest.ts';
import { tableError } from './errors.ts';
import { readParquet } from './parquet-file.ts';
import { projectSchema } from './schema.ts';
import type { IcebergSchema, Row } from './types.ts';
import { valueKey } from './values.ts';

export interface LiveEntry {
  entry: ManifestEntry;
}

/** Fetches a file by its URI; `what` names it in errors. */
export type FileGetter = (uri: string, what: string) => Promise<Uint8Array>;

interface DeleteSet {
  seq: bigint;
  names: string[];
  keys: Set<string>;
}

async function deleteSets(live: LiveEntry[], schema: IcebergSchema, get: FileGetter): Promise<DeleteSet[]> {
  const sets: DeleteSet[] = [];
  for (const { entry } of live.filter((e) => e.entry.file.content === 2)) {
    const path = entry.file.file_path;
    const ids = entry.file.equality_ids ?? [];
    if (ids.length === 0) throw tableError('bad_manifest', `equality-delete file ${path} has no equality_ids`);
    const deleteSchema = projectSchema(schema, ids);
    const names = deleteSchema.fields.map((f) => f.name);
    const rows = await readParquet(await get(path, 'delete file'), deleteSchema, path);
    sets.push({ seq: entry.sequenceNumber, names, keys: new Set(rows.map((r) => valueKey(names.map((n) => r[n])))) });
  }
  return sets;
}

/** The rows of the live data files as `schema` sees them, without those a newer equality delete matches. */
export async function scanRows(live: LiveEntry[], schema: IcebergSchema, get: FileGetter): Promise<Row[]> {
  const sets = await deleteSets(live, schema, get);
  const out: Row[] = [];
  for (const { entry } of live.filter((e) => e.entry.file.content === 0)) {
    const path = entry.file.file_path;
    const rows = await readParquet(await get(path, 'data file'), schema, path);
    const applicable = sets.filter((d) => d.seq > entry.sequenceNumber);
    for (const row of rows) {
      if (!applicable.some((d) => d.keys.has(valueKey(d.names.map((n) => row[n]))))) out.push(row);
    }
  }
  return out;
}
