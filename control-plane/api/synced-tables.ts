// Synced tables (ours; docs/lakehouse.md): /projects/{id}/branches/{branch_id}/synced_tables (create, list),
// /synced_tables/{synced_table_id} (get, delete) and /synced_tables/{synced_table_id}/refresh (load again now).
// Creating and refreshing answer Neon's operation pattern: the record and its operations (`load_synced_table`).
import type { Hono } from 'hono';
import type { SyncedTableRecord } from '../lake/synced-tables.ts';
import type { ApiDeps } from './deps.ts';
import { body, bodyOf, optDatabaseName, optEnum, reqString, section } from './fields.ts';

const REFRESH = ['snapshot', 'incremental'] as const;

const CreateSyncedTableBody = body({
  synced_table: section('synced_table', {
    source_location: reqString('synced_table.source_location'),
    target_table: reqString('synced_table.target_table'),
    refresh: optEnum('synced_table.refresh', REFRESH),
    database: optDatabaseName('synced_table.database'),
  }, { required: true }),
});

/** `{"synced_table": {"refresh": ...}}` or `{"refresh": ...}`: this refresh's mode, else the table's own. */
const RefreshBody = body({
  synced_table: section('synced_table', { refresh: optEnum('synced_table.refresh', REFRESH) }),
  refresh: optEnum('refresh', REFRESH),
});

export interface SyncedTableView {
  id: string;
  branch_id: string;
  database: string;
  source_location: string;
  source_format: SyncedTableRecord['source_format'];
  target_table: string;
  refresh: SyncedTableRecord['refresh'];
  status: SyncedTableRecord['status'];
  status_message?: string;
  /** Rows the table holds from its loads. */
  rows_loaded: number;
  /** Iceberg: the snapshot loaded last (a string: snapshot ids are 64-bit). */
  last_loaded_snapshot_id: string | null;
  /** Parquet: the files loaded so far. */
  files: string[];
  /** The last load: full or incremental, rows and data files read. */
  last_load: SyncedTableRecord['last_load'];
  columns: { name: string; type: string }[];
  last_refreshed_at: string | null;
  created_at: string;
}

function view(t: SyncedTableRecord): SyncedTableView {
  const base = t.source_location.slice(0, t.source_location.length - t.source_key.length);
  return {
    id: t.id, branch_id: t.branch_id, database: t.database, source_location: t.source_location, source_format: t.source_format,
    target_table: t.target_table, refresh: t.refresh, status: t.status, ...(t.status_message ? { status_message: t.status_message } : {}),
    rows_loaded: t.rows_loaded, last_loaded_snapshot_id: t.last_loaded_snapshot_id, files: t.files.map((f) => base + f.key),
    last_load: t.last_load, columns: t.columns.map((c) => ({ name: c.name, type: c.pgType })),
    last_refreshed_at: t.last_refreshed_at, created_at: t.created_at,
  };
}

export function syncedTableRoutes(app: Hono, d: ApiDeps): void {
  const base = '/projects/:project_id/branches/:branch_id/synced_tables';
  const ids = (c: { req: { param(k: string): string } }) => [c.req.param('project_id'), c.req.param('branch_id')] as const;

  app.get(base, (c) => c.json({ synced_tables: d.lake.synced.list(...ids(c)).map((t) => view(t)) }));

  app.post(base, async (c) => {
    d.lake.synced.list(...ids(c)); // an unknown project or branch is a 404 before the body is judged
    const body = await bodyOf(c, CreateSyncedTableBody);
    const r = await d.lake.synced.create(...ids(c), body.synced_table);
    return c.json({ synced_table: view(r.syncedTable), operations: r.operations.map((o) => d.views.operation(o)) }, 201);
  });

  app.get(`${base}/:id`, (c) => c.json({ synced_table: view(d.lake.synced.get(...ids(c), c.req.param('id'))) }));

  app.post(`${base}/:id/refresh`, async (c) => {
    d.lake.synced.get(...ids(c), c.req.param('id'));
    const body = await bodyOf(c, RefreshBody);
    const r = await d.lake.synced.refresh(...ids(c), c.req.param('id'), body.synced_table.refresh ?? body.refresh);
    return c.json({ synced_table: view(r.syncedTable), operations: r.operations.map((o) => d.views.operation(o)) });
  });

  app.delete(`${base}/:id`, async (c) => {
    const t = await d.lake.synced.delete(...ids(c), c.req.param('id'));
    return c.json({ synced_table: view(t) });
  });
}
