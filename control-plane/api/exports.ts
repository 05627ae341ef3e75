// Snapshot exports (ours; docs/lakehouse.md): /projects/{id}/branches/{branch_id}/exports (create, list) and
// /exports/{export_id} (get). Creation answers Neon's operation pattern: the export and its `export_branch`
// operation, running; the export's own status and progress say how far the work got.
import type { Hono } from 'hono';
import { objectUri } from '../../lake/iceberg/uri.ts';
import { exportKey } from '../../lake/export/sinks.ts';
import { v } from '../../lib/validate.ts';
import type { ExportRecord } from '../lake/exports.ts';
import { getBranch } from '../lookup.ts';
import type { ApiDeps } from './deps.ts';
import { body, bodyOf, inOrder, optDatabaseName, optEnum, optLsn, optTimestamp, required, sectionOf, string } from './fields.ts';
import { pointInTime } from './schemas.ts';

const FORMATS = ['iceberg', 'parquet'] as const;

const tableList = required('export.tables', v.pipe(
  v.array(string('each of export.tables'), 'export.tables must be a list of table names ("schema.table" or "table")'),
  v.minLength(1, 'export.tables must name at least one table'),
));

/** The point in history as a branch's creation takes it: an LSN or a time, not both, and not a time in the future. */
function pointRule(o: { lsn: number | undefined; timestamp: string | undefined }): string | null {
  if (o.lsn !== undefined && o.timestamp !== undefined) return 'give export.lsn or export.timestamp, not both';
  if (o.timestamp !== undefined && Date.parse(o.timestamp) > Date.now()) return 'export.timestamp is in the future';
  return null;
}

export const CreateExportBody = body({
  export: sectionOf('export', inOrder(
    { tables: tableList, lsn: optLsn('export.lsn'), timestamp: optTimestamp('export.timestamp') },
    pointRule,
    { format: optEnum('export.format', FORMATS), database: optDatabaseName('export.database') },
    'export must be an object',
  ), { required: true }),
});

export interface ExportTableView {
  name: string;
  /** The Iceberg table's root (metadata/version-hint.text names its metadata), or the Parquet file. */
  location: string;
  status: 'pending' | 'running' | 'finished';
  rows: number;
}

export interface ExportView {
  id: string;
  branch_id: string;
  format: ExportRecord['format'];
  database: string;
  /** The point exported: Postgres' WAL position there, and the time asked for (null when an LSN or the head was). */
  lsn: string | null;
  timestamp: string | null;
  status: ExportRecord['status'];
  error?: string;
  error_code?: string;
  progress: { tables_done: number; tables_total: number; rows_written: number };
  tables: ExportTableView[];
  operation_id: string;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

function view(d: ApiDeps, x: ExportRecord): ExportView {
  return {
    id: x.id, branch_id: x.branch_id, format: x.format, database: x.database, lsn: x.lsn, timestamp: x.timestamp, status: x.status,
    ...(x.error ? { error: x.error, error_code: x.error_code } : {}),
    progress: { tables_done: x.tables.filter((t) => t.status === 'finished').length, tables_total: x.tables.length, rows_written: x.rows_written },
    tables: x.tables.map((t) => ({ name: t.name, location: objectUri(d.lake.store, exportKey(t.prefix, x.format)), status: t.status, rows: t.rows })),
    operation_id: x.operation_id, created_at: x.created_at, updated_at: x.updated_at, finished_at: x.finished_at,
  };
}

export function exportRoutes(app: Hono, d: ApiDeps): void {
  const base = '/projects/:project_id/branches/:branch_id/exports';

  app.get(base, async (c) => {
    const all = await d.lake.exports.list(c.req.param('project_id'), c.req.param('branch_id'));
    return c.json({ exports: all.map((x) => view(d, x)) });
  });

  app.post(base, async (c) => {
    const b = getBranch(d.plane.state.current, c.req.param('project_id'), c.req.param('branch_id'));
    const { export: e } = await bodyOf(c, CreateExportBody);
    const r = await d.lake.exports.create(b.project_id, b.id, {
      tables: e.tables, at: pointInTime(e.lsn, e.timestamp), format: e.format, database: e.database,
    });
    return c.json({ export: view(d, r.export), operations: r.operations.map((o) => d.views.operation(o)) }, 201);
  });

  app.get(`${base}/:export_id`, async (c) => {
    const x = await d.lake.exports.get(c.req.param('project_id'), c.req.param('branch_id'), c.req.param('export_id'));
    return c.json({ export: view(d, x) });
  });
}
