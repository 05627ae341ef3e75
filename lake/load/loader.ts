// A synced table's load, from a location in the bucket to the admin calls that put its rows in Postgres: the
// source opened (whatever its format), the rows to load now read, the table's columns followed (made on the first
// load, added to when the source gained columns), and the statements cut into calls (load-sql.ts). Nothing here
// talks to Postgres: the control plane runs the calls, so a source that cannot be loaded is refused before any.
import type { ObjectStore } from '../../storage-node/object-store/object-store.ts';
import { type LoadColumn, columnChanges } from './columns.ts';
import { IcebergSource } from './iceberg-source.ts';
import { CHUNK_BYTES, type Privileges, type TableName, addColumnsSql, createTableSql, loadCalls } from './load-sql.ts';
import { ParquetSource } from './parquet-source.ts';
import { jsonChunks } from './pg-json.ts';
import { type Batch, type LoadedState, type Source, detect } from './source.ts';

export type { LoadColumn } from './columns.ts';
export type { LoadedFile, LoadedState, SourceFormat } from './source.ts';
export { keyOfLocation, bucketUri, checkProjectScope } from './location.ts';
export { parseTableName, TABLE_NAME_RULE } from './table-name.ts';
export type { Privileges, TableName } from './load-sql.ts';

/** The source at a location (its key in the bucket): 404 when nothing is there, 400 when it is not a source. */
export async function openSource(store: ObjectStore, key: string, location: string): Promise<Source> {
  const found = await detect(store, key, location);
  if (found.format === 'iceberg') return IcebergSource.open(store, key, location);
  return new ParquetSource(store, found.files);
}

export interface LoadRequest {
  table: TableName;
  /** The source's location, named by the table's guard in its refusals. */
  location: string;
  /** The table's columns as it is, or how to create it (the first load). */
  into: { columns: LoadColumn[] } | { comment: string; privileges: Privileges };
  /** What the last load read (null: none), and whether to load only what the source added since. */
  previous: LoadedState | null;
  incremental: boolean;
  /** Names the staging table of a load too big for one call. */
  loadId: string;
}

export interface PreparedLoad {
  /** Admin calls in order; the last one commits the change to the table. */
  calls: string[][];
  /** The table's columns after the load. */
  columns: LoadColumn[];
  batch: Batch;
}

export async function prepareLoad(source: Source, req: LoadRequest): Promise<PreparedLoad> {
  const batch = await source.batch(req.previous, req.incremental);
  let before: string[];
  let columns: LoadColumn[];
  if ('columns' in req.into) {
    const { added } = columnChanges(req.into.columns, batch.columns);
    columns = [...req.into.columns, ...added];
    before = addColumnsSql(req.table, added);
  } else {
    columns = batch.columns;
    before = createTableSql(req.table, columns, req.location, req.into.comment, req.into.privileges);
  }
  const chunks = jsonChunks(batch.columns, batch.rows, CHUNK_BYTES);
  const truncate = 'columns' in req.into && batch.mode === 'full';
  const calls = loadCalls({ table: req.table, columns: batch.columns, before, truncate, chunks, loadId: req.loadId });
  return { calls, columns, batch };
}
