// Lake tables (ours; lake/ and docs/lakehouse.md): /projects/{id}/branches/{branch_id}/lake_tables (create, list),
// /lake_tables/{lake_table_id} (get, delete). Creation answers Neon's operation pattern: the record and its operations.
import type { Hono } from 'hono';
import { objectUri } from '../../lake/iceberg/uri.ts';
import type { LakeTableRecord } from '../model.ts';
import type { ApiDeps } from './deps.ts';
import { bodyOf } from './fields.ts';
import { CreateLakeTableBody } from './schemas.ts';

export interface LakeTableView {
  id: string;
  branch_id: string;
  source_table: string;
  /** The Iceberg table of the current state (its root: metadata/version-hint.text names the metadata). */
  location: string;
  /** The Iceberg table of every change: the row's columns plus _op, _lsn, _xid, _commit_time. */
  history_location: string;
  status: LakeTableRecord['status'];
  status_message?: string;
  last_synced_lsn: string | null;
  last_synced_at: string | null;
  created_at: string;
}

function view(d: ApiDeps, t: LakeTableRecord): LakeTableView {
  const store = d.lake.store;
  return {
    id: t.id, branch_id: t.branch_id, source_table: t.source_table, location: objectUri(store, t.current_prefix),
    history_location: objectUri(store, t.history_prefix), status: t.status, ...(t.status_message ? { status_message: t.status_message } : {}),
    last_synced_lsn: t.last_synced_lsn, last_synced_at: t.last_synced_at, created_at: t.created_at,
  };
}

export function lakeTableRoutes(app: Hono, d: ApiDeps): void {
  const base = '/projects/:project_id/branches/:branch_id/lake_tables';

  app.get(base, (c) => c.json({ lake_tables: d.lake.tables.list(c.req.param('project_id'), c.req.param('branch_id')).map((t) => view(d, t)) }));

  app.post(base, async (c) => {
    const body = await bodyOf(c, CreateLakeTableBody);
    const r = await d.lake.tables.create(c.req.param('project_id'), c.req.param('branch_id'), body.lake_table.source_table);
    return c.json({ lake_table: view(d, r.lakeTable), operations: r.operations.map((o) => d.views.operation(o)) }, 201);
  });

  app.get(`${base}/:id`, (c) => c.json({ lake_table: view(d, d.lake.tables.get(c.req.param('project_id'), c.req.param('branch_id'), c.req.param('id'))) }));

  app.delete(`${base}/:id`, async (c) => {
    const t = await d.lake.tables.delete(c.req.param('project_id'), c.req.param('branch_id'), c.req.param('id'));
    return c.json({ lake_table: view(d, t) });
  });
}
