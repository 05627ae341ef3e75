// Snapshot exports: chosen tables of a branch as of an LSN or a time, written to the bucket as Iceberg tables or
// Parquet files from a read-only compute at that point, with progress through the operation.
//
// The request does what can refuse it: the point is resolved on the storage node (as a branch's creation resolves
// it), the compute is started there and every table is looked up, so a bad point or an unknown table is a 4xx with
// nothing written and no record. Then the export is recorded `running` with its `export_branch` operation, and the
// rows are read and written in the background on that same compute, which is stopped when done.
//
// The work holds a compute of this process, so it cannot resume after a restart: its operation has no job in the
// runner (operations/jobs.ts), the runner's recovery marks it failed, and an export found running with no work in
// this process is marked failed too (interrupted) when it is next read.
import { randomBytes } from 'node:crypto';
import { type ServiceError, toServiceError } from '../../lib/errors.ts';
import { createLogger } from '../../lib/logger.ts';
import type { ObjectStore } from '../../storage-node/object-store/object-store.ts';
import { exportTable } from '../../lake/export/export-table.ts';
import { type ExportFormat, openSink } from '../../lake/export/sinks.ts';
import { type SourceTable, type SqlExec, describeTables, tableText } from '../../lake/export/source.ts';
import { ValueError } from '../../lake/sync/values.ts';
import type { PointInTime } from '../branch-admin.ts';
import { lsnError } from '../branch-admin.ts';
import { ComputeHostError } from '../compute-host-client.ts';
import { engineOf } from '../engines.ts';
import { ApiError, badRequest, notFound } from '../errors.ts';
import { getBranch, getProject } from '../lookup.ts';
import { formatLsn } from '../lsn.ts';
import type { BranchRecord, ControlPlaneState, OperationRecord } from '../model.ts';
import { endOperation, interruptedError, recordOperations } from '../operations/index.ts';
import type { Plane } from '../plane.ts';
import type { LakeSyncer } from './lake-syncer.ts';
import { splitTableName } from './lake-syncer.ts';

export type { ExportFormat } from '../../lake/export/sinks.ts';
export type ExportStatus = 'running' | 'finished' | 'failed';

/** One table of an export: where it goes and how far it got. */
export interface ExportTableRecord {
  /** `schema.table` as Postgres names it. */
  name: string;
  /** Key prefix in the bucket: the Iceberg table root, or with `.parquet` the Parquet file (sinks.ts exportKey). */
  prefix: string;
  status: 'pending' | 'running' | 'finished';
  rows: number;
}

/** An export as the control plane records it. */
export interface ExportRecord {
  id: string;
  project_id: string;
  branch_id: string;
  format: ExportFormat;
  database: string;
  /** The point: Postgres' WAL position there (the API's form), and the time asked for, if one was. */
  lsn: string | null;
  timestamp: string | null;
  /** The same point as the storage node numbers it, on the branch's timeline then. */
  timeline_id: string;
  storage_lsn: number;
  status: ExportStatus;
  error?: string;
  error_code?: string;
  tables: ExportTableRecord[];
  rows_written: number;
  operation_id: string;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

export interface ExportRequest {
  tables: string[];
  /** Postgres' LSN or a time, not both; neither: the branch's head. */
  at: PointInTime;
  format?: ExportFormat;
  /** Default: the branch's first database. */
  database?: string;
}

/** `schema.table` or `table` (public), as Postgres names them unquoted (as lake tables take them). */
const TABLE_RE = /^(?:[A-Za-z_][A-Za-z0-9_$]{0,62}\.)?[A-Za-z_][A-Za-z0-9_$]{0,62}$/;
const MAX_TABLES = 100;
/** The most an export at the head waits for the branch's running compute to checkpoint (as a branch's creation). */
const CHECKPOINT_WAIT_MS = 2000;

/** Exports whose work runs in this process; a `running` record not in here was interrupted by a restart. */
const inFlight = new Set<string>();

/** A failure while one table was exported. */
class TableFailure extends Error {
  readonly table: string;
  constructor(table: string, cause: unknown) {
    super(`table ${table}: ${String((cause as Error)?.message ?? cause)}`, { cause });
    this.table = table;
  }
}

type Compute = Awaited<ReturnType<Plane['endpoints']['startEphemeral']>>;

function tablesOf(names: string[]): { schema: string; name: string }[] {
  if (names.length === 0) throw badRequest('export.tables must name at least one table');
  if (names.length > MAX_TABLES) throw badRequest(`export.tables names ${names.length} tables; an export takes at most ${MAX_TABLES}`);
  const seen = new Set<string>();
  return names.map((n) => {
    if (!TABLE_RE.test(n)) throw badRequest(`export.tables: ${JSON.stringify(n)} is not "schema.table" or "table" (unquoted Postgres names)`);
    const t = splitTableName(n);
    const text = tableText(t);
    if (seen.has(text)) throw badRequest(`export.tables names ${text} twice`);
    seen.add(text);
    return t;
  });
}

export class Exports {
  private readonly plane: Plane;
  private readonly syncer: LakeSyncer;
  private readonly log = createLogger('control-plane');

  constructor(plane: Plane, syncer: LakeSyncer) {
    this.plane = plane;
    this.syncer = syncer;
  }

  private get store(): ObjectStore {
    return this.syncer.store;
  }

  async list(projectId: string, branchId: string): Promise<ExportRecord[]> {
    getBranch(this.plane.state.current, projectId, branchId);
    const mine = () => Object.values(this.plane.state.current.lake_exports ?? {}).filter((x) => x.branch_id === branchId);
    await this.markInterrupted(mine());
    return mine().sort((a, b) => a.created_at.localeCompare(b.created_at));
  }

  async get(projectId: string, branchId: string, id: string): Promise<ExportRecord> {
    getBranch(this.plane.state.current, projectId, branchId);
    const find = () => {
      const x = this.plane.state.current.lake_exports?.[id];
      if (!x || x.branch_id !== branchId) throw notFound('EXPORT_NOT_FOUND', `export ${id} not found on branch ${branchId}`);
      return x;
    };
    await this.markInterrupted([find()]);
    return find();
  }

  /** Exports left running by a previous process: failed, as their operations are (runner.recover). */
  private async markInterrupted(records: ExportRecord[]): Promise<void> {
    const stale = records.filter((x) => x.status === 'running' && !inFlight.has(x.id));
    if (stale.length === 0) return;
    const error = interruptedError('export_branch');
    await this.plane.state.mutate((d) => {
      for (const x of stale) {
        if (d.lake_exports?.[x.id]?.status === 'running') this.end(d, x.id, error);
      }
    });
  }

  /** Validates, resolves the point, starts the compute and finds every table; then records the export and starts it. */
  async create(projectId: string, branchId: string, req: ExportRequest): Promise<{ export: ExportRecord; operations: OperationRecord[] }> {
    const started = Date.now();
    const s = this.plane.state.current;
    const project = getProject(s, projectId);
    const branch = getBranch(s, projectId, branchId);
    const tables = tablesOf(req.tables);
    const database = this.databaseOf(branchId, req.database);
    const point = await this.resolve(branch, req.at, database);
    const compute = await this.startCompute(branch.timeline_id, point.storageLsn, engineOf(project), database);
    const id = `exp-${randomBytes(6).toString('hex')}`;
    inFlight.add(id); // before it is recorded: a read in between must not take it for an interrupted one
    let sources: SourceTable[];
    let created: { export: ExportRecord; operations: OperationRecord[] };
    try {
      sources = await this.lookUp(compute.sql, tables, branchId);
      created = await this.record(id, branch, { ...req, database }, point, started);
    } catch (e) {
      inFlight.delete(id);
      await this.stopCompute(compute);
      throw e;
    }
    void this.run(created.export, compute, sources);
    return created;
  }

  private databaseOf(branchId: string, asked: string | undefined): string {
    const mine = this.plane.state.current.databases.filter((d) => d.branch_id === branchId);
    if (asked === undefined) return mine[0]?.name ?? 'neondb';
    if (!mine.some((d) => d.name === asked)) throw notFound('DATABASE_NOT_FOUND', `database ${JSON.stringify(asked)} not found on branch ${branchId}`);
    return asked;
  }

  /** The point as the storage node numbers it (and as Postgres does), with the refusals a branch's creation gives. */
  private async resolve(branch: BranchRecord, at: PointInTime, database: string): Promise<{ storageLsn: number; walLsn: number | null }> {
    const storage = this.plane.storage.of(this.plane.state.current, branch.project_id);
    try {
      if ('lsn' in at) return { storageLsn: (await storage.lsnAtWal(branch.timeline_id, at.lsn)).lsn, walLsn: at.lsn };
      if ('timestamp' in at) {
        const r = await storage.lsnAt(branch.timeline_id, at.timestamp);
        return { storageLsn: r.lsn, walLsn: r.walLsn };
      }
      // the head: a running writer checkpoints first, so the export's compute starts with little to replay
      const writer = Object.values(this.plane.state.current.endpoints).find((e) => e.branch_id === branch.id && e.type === 'read_write');
      if (writer) await this.plane.endpoints.checkpointIfRunning(writer.id, database, CHECKPOINT_WAIT_MS);
      const info = await storage.getTimeline(branch.timeline_id);
      return { storageLsn: info.lastLsn, walLsn: info.lastWalLsn };
    } catch (e) {
      throw lsnError(e, 'lsn' in at ? at.lsn : undefined);
    }
  }

  private async startCompute(timelineId: string, lsn: number, engine: ReturnType<typeof engineOf>, database: string): Promise<Compute> {
    try {
      return await this.plane.endpoints.startEphemeral({ timelineId, lsn, readOnly: true, engine, database });
    } catch (e) {
      // the host's refusal of the point (outside the readable history) is the caller's
      if (e instanceof ComputeHostError && e.status === 400) throw badRequest(`the export's compute cannot start at that point: ${e.message}`);
      throw e;
    }
  }

  private async stopCompute(compute: Compute): Promise<void> {
    await compute.stop().catch((e: unknown) => this.log.warn({ computeId: compute.computeId, err: String(e) }, 'stopping an export compute failed; the host reclaims it when it needs room'));
  }

  private async lookUp(exec: SqlExec, tables: { schema: string; name: string }[], branchId: string): Promise<SourceTable[]> {
    const { found, missing } = await describeTables(exec, tables);
    if (missing.length > 0) {
      const list = missing.join(', ');
      throw notFound('TABLE_NOT_FOUND', `${missing.length === 1 ? `table ${list} does` : `tables ${list} do`} not exist (as tables) on branch ${branchId} at that point; nothing was exported`);
    }
    return found;
  }

  private async record(
    id: string, branch: BranchRecord, req: ExportRequest & { database: string }, point: { storageLsn: number; walLsn: number | null }, started: number,
  ): Promise<{ export: ExportRecord; operations: OperationRecord[] }> {
    const projectId = branch.project_id;
    const base = `lake/exports/${projectId}/${branch.id}/${id}`;
    return this.plane.state.mutate((d) => {
      getBranch(d, projectId, branch.id);
      const ops = recordOperations(d, projectId, started, [{ action: 'export_branch', branch_id: branch.id }]);
      // ended by the export itself (end()), not by the runner: see the top of this file
      ops[0].status = 'running';
      const now = new Date().toISOString();
      const rec: ExportRecord = {
        id, project_id: projectId, branch_id: branch.id, format: req.format ?? 'iceberg', database: req.database,
        lsn: point.walLsn === null ? null : formatLsn(point.walLsn), timestamp: 'timestamp' in req.at ? new Date(req.at.timestamp).toISOString() : null,
        timeline_id: branch.timeline_id, storage_lsn: point.storageLsn, status: 'running',
        tables: req.tables.map((n) => {
          const name = tableText(splitTableName(n));
          return { name, prefix: `${base}/${name}`, status: 'pending' as const, rows: 0 };
        }),
        rows_written: 0, operation_id: ops[0].id, created_at: now, updated_at: now, finished_at: null,
      };
      d.lake_exports ??= {};
      d.lake_exports[id] = rec;
      return { export: rec, operations: ops };
    });
  }

  /** The background work: each table in turn, then the record and its operation ended. Never rejects. */
  private async run(rec: ExportRecord, compute: Compute, sources: SourceTable[]): Promise<void> {
    let error: ServiceError | null = null;
    try {
      await this.writeTables(rec, compute.sql, sources);
    } catch (e) {
      error = this.failure(e);
      this.log.warn({ export: rec.id, code: error.code, err: error.message }, 'export failed');
      await this.removeOutput(rec);
    } finally {
      await this.stopCompute(compute);
    }
    try {
      await this.plane.state.mutate((d) => this.end(d, rec.id, error));
    } catch (e) {
      this.log.error({ export: rec.id, err: String(e) }, 'could not record the end of an export');
    } finally {
      inFlight.delete(rec.id);
    }
  }

  private async writeTables(rec: ExportRecord, exec: SqlExec, sources: SourceTable[]): Promise<void> {
    const properties = { 'lakebase.export-id': rec.id, 'lakebase.export-lsn': rec.lsn ?? '', 'lakebase.branch-id': rec.branch_id };
    for (const [i, source] of sources.entries()) {
      const t = rec.tables[i];
      await this.progress(rec.id, i, 0, 'running');
      const sink = await openSink(this.store, t.prefix, rec.format, source.schema, { ...properties, 'lakebase.source-table': t.name });
      try {
        const rows = await exportTable(exec, source, sink, { onProgress: (n) => this.progress(rec.id, i, n, 'running') });
        await this.progress(rec.id, i, rows, 'finished');
      } catch (e) {
        throw new TableFailure(t.name, e);
      }
    }
  }

  /** The error an export failed with, naming its table: a value the lake cannot hold is the data's fault (400). */
  private failure(e: unknown): ServiceError {
    const inner = e instanceof TableFailure ? e.cause : e;
    const where = e instanceof TableFailure ? `table ${e.table}: ` : '';
    if (inner instanceof ValueError) return new ApiError(400, 'EXPORT_BAD_VALUE', `${where}${inner.message}`, { cause: inner });
    const err = toServiceError(inner);
    return new ApiError(err.status, err.code, `${where}${err.message}`, { kind: err.kind, cause: inner });
  }

  private async progress(id: string, index: number, rows: number, status: ExportTableRecord['status']): Promise<void> {
    await this.plane.state.mutate((d) => {
      const r = d.lake_exports?.[id];
      const t = r?.tables[index];
      if (!r || !t) return;
      t.rows = rows;
      t.status = status;
      r.rows_written = r.tables.reduce((n, x) => n + x.rows, 0);
      r.updated_at = new Date().toISOString();
    });
  }

  /** Ends the export and its operation (inside a state write). */
  private end(d: ControlPlaneState, id: string, error: ServiceError | null): void {
    const r = d.lake_exports?.[id];
    if (!r) return;
    const now = new Date().toISOString();
    r.status = error ? 'failed' : 'finished';
    if (error) {
      r.error = error.message;
      r.error_code = error.code;
    }
    r.updated_at = now;
    r.finished_at = now;
    endOperation(d, r.operation_id, error ? 1 : 0, error);
  }

  /** A failed export leaves nothing half-written in the bucket (best effort: a failure here is only logged). */
  private async removeOutput(rec: ExportRecord): Promise<void> {
    const prefix = `lake/exports/${rec.project_id}/${rec.branch_id}/${rec.id}/`;
    try {
      for (const o of await this.store.list(prefix)) await this.store.delete(o.key);
    } catch (e) {
      this.log.warn({ export: rec.id, err: String(e) }, 'could not remove the files of a failed export');
    }
  }
}
