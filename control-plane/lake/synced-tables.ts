// Synced tables (lake -> Postgres): a Postgres table of a branch loaded from an Iceberg table or Parquet files in the
// project's bucket, refreshed on request (a snapshot reload, or incrementally from Iceberg snapshot differences).
// The bucket is read here (lake/load/), the rows go to the branch's compute through its admin SQL as the superuser,
// one transaction per load, so a refused source or a failed load leaves the table as it was. The table is the
// superuser's, readable by every role, and its guard trigger refuses any other writer (lake/load/load-sql.ts).
import { randomBytes } from 'node:crypto';
import { ServiceError } from '../../lib/errors.ts';
import { dropStagingSql, releaseTableSql, targetStateSql } from '../../lake/load/load-sql.ts';
import {
  type LoadColumn, type LoadedFile, type LoadedState, type SourceFormat, type TableName, checkProjectScope, keyOfLocation, openSource, parseTableName, prepareLoad,
} from '../../lake/load/loader.ts';
import { ComputeHostError } from '../compute-host-client.ts';
import { ApiError, conflict, notFound } from '../errors.ts';
import { engineOf } from '../engines.ts';
import { getBranch, getDatabase, getProject } from '../lookup.ts';
import type { OperationRecord } from '../model.ts';
import { recordOperations } from '../operations/records.ts';
import type { Plane } from '../plane.ts';
import type { LakeSyncer } from './lake-syncer.ts';

export type RefreshMode = 'snapshot' | 'incremental';

/** A synced table as the control plane records it. */
export interface SyncedTableRecord {
  id: string;
  project_id: string;
  branch_id: string;
  database: string;
  /** The location as given (no trailing slash), and its key in the bucket. */
  source_location: string;
  source_key: string;
  source_format: SourceFormat;
  /** `schema.table`, as Postgres names it. */
  target_table: string;
  refresh: RefreshMode;
  /** The table's columns and where each comes from in the source. */
  columns: LoadColumn[];
  status: 'ready' | 'failed';
  status_message?: string;
  /** Rows the table holds from the loads (a full load sets it, an incremental one adds to it). */
  rows_loaded: number;
  /** Iceberg: the snapshot loaded last. */
  last_loaded_snapshot_id: string | null;
  /** Parquet: the files loaded, with their ETags then. */
  files: LoadedFile[];
  /** What the last load did: a full or an incremental load, of how many rows from how many data files. */
  last_load: { mode: 'full' | 'incremental'; rows: number; files: number } | null;
  last_refreshed_at: string | null;
  created_at: string;
}

export interface CreateSyncedTable {
  source_location: string;
  target_table: string;
  refresh?: RefreshMode;
  database?: string;
}

const tableOf = (rec: Pick<SyncedTableRecord, 'target_table'>): TableName => parseTableName(rec.target_table, 'target_table');

/** A Postgres refusal (the compute host's 400 `postgres_error`) as the caller's; anything else as ours. */
function loadFailure(e: unknown, target: string): unknown {
  if (e instanceof ComputeHostError && e.code === 'postgres_error') {
    const message = e.message.replace(/^compute host \S+: /, '');
    if (message.includes('SQLSTATE 42P07')) return conflict('SYNCED_TABLE_TARGET_EXISTS', `table ${target} already exists on this branch; pick another target_table`);
    return new ApiError(422, 'SYNCED_TABLE_LOAD_FAILED', `Postgres refused the load of ${target}: ${message}; nothing was changed`, { cause: e });
  }
  if (e instanceof ServiceError && !(e instanceof ComputeHostError)) return e;
  return new ApiError(503, 'SYNCED_TABLE_LOAD_FAILED', `the load of ${target} failed: ${(e as Error).message}; nothing was changed, retry`, { cause: e });
}

export class SyncedTables {
  private readonly plane: Plane;
  private readonly syncer: LakeSyncer;

  constructor(plane: Plane, syncer: LakeSyncer) {
    this.plane = plane;
    this.syncer = syncer;
  }

  list(projectId: string, branchId: string): SyncedTableRecord[] {
    const s = this.plane.state.current;
    getBranch(s, projectId, branchId);
    return Object.values(s.synced_tables ?? {}).filter((t) => t.branch_id === branchId).sort((a, b) => a.created_at.localeCompare(b.created_at));
  }

  get(projectId: string, branchId: string, id: string): SyncedTableRecord {
    getBranch(this.plane.state.current, projectId, branchId);
    const t = this.plane.state.current.synced_tables?.[id];
    if (!t || t.branch_id !== branchId) throw notFound('SYNCED_TABLE_NOT_FOUND', `synced table ${id} not found on branch ${branchId}`);
    return t;
  }

  private endpointFor(branchId: string): string {
    const ep = this.syncer.endpointOf(branchId);
    if (!ep) throw conflict('ENDPOINT_REQUIRED', `branch ${branchId} has no read-write endpoint, and a synced table is loaded through its compute: create one first (POST /projects/{project_id}/endpoints)`);
    return ep;
  }

  private databaseFor(branchId: string, name: string | undefined): string {
    const s = this.plane.state.current;
    if (name !== undefined) return getDatabase(s, branchId, name).name;
    return s.databases.find((d) => d.branch_id === branchId)?.name ?? 'neondb';
  }

  /** One thing at a time per branch: two loads into one target, or a create racing a delete, must not interleave. */
  private locked<T>(branchId: string, fn: () => Promise<T>): Promise<T> {
    return this.syncer.locks.run(`synced-tables:${branchId}`, fn);
  }

  /** Runs a load's calls; a big load that failed half-way has its staged rows dropped (best effort). */
  private async run(endpointId: string, database: string, calls: string[][], target: string, loadId?: string): Promise<void> {
    try {
      for (const call of calls) await this.plane.endpoints.adminSql(endpointId, database, call);
    } catch (e) {
      if (loadId && calls.length > 1) await this.plane.endpoints.adminSql(endpointId, database, [dropStagingSql(loadId)]).catch(() => undefined);
      throw loadFailure(e, target);
    }
  }

  /** Refuses a target that exists (409) or whose schema does not (404), asking the compute. */
  private async checkTarget(endpointId: string, database: string, table: TableName): Promise<void> {
    let row: (string | null)[] | undefined;
    try {
      row = (await this.plane.endpoints.adminSql(endpointId, database, [targetStateSql(table)]))[0]?.rows[0];
    } catch (e) {
      throw loadFailure(e, `${table.schema}.${table.name}`);
    }
    if (row?.[0] !== 'true') throw notFound('SCHEMA_NOT_FOUND', `schema ${table.schema} does not exist in database ${database}; create it first (CREATE SCHEMA ${table.schema})`);
    if (row?.[1] === 'true') throw conflict('SYNCED_TABLE_TARGET_EXISTS', `table ${table.schema}.${table.name} already exists in database ${database}; a synced table makes its own table: pick another target_table`);
  }

  async create(projectId: string, branchId: string, req: CreateSyncedTable): Promise<{ syncedTable: SyncedTableRecord; operations: OperationRecord[] }> {
    const started = Date.now();
    getBranch(this.plane.state.current, projectId, branchId);
    const table = parseTableName(req.target_table, 'synced_table.target_table');
    const target = `${table.schema}.${table.name}`;
    const store = this.syncer.store;
    const key = keyOfLocation(store, req.source_location);
    checkProjectScope(key, projectId, req.source_location);
    const database = this.databaseFor(branchId, req.database);
    return this.locked(branchId, async () => {
      if (this.list(projectId, branchId).some((t) => t.target_table === target && t.database === database)) {
        throw conflict('SYNCED_TABLE_TARGET_EXISTS', `${target} is already a synced table of branch ${branchId}`);
      }
      const location = req.source_location.replace(/\/+$/, '');
      const source = await openSource(store, key, location);
      const id = `st-${randomBytes(6).toString('hex')}`;
      const load = await prepareLoad(source, {
        table, location, previous: null, incremental: false, loadId: id,
        into: {
          comment: `synced table ${id}: loaded from ${location}; read-only (refresh it through the API)`,
          privileges: engineOf(getProject(this.plane.state.current, projectId)) === 'postgres' ? 'select' : 'guarded',
        },
      });
      const endpointId = this.endpointFor(branchId);
      await this.checkTarget(endpointId, database, table);
      await this.run(endpointId, database, load.calls, target, id);
      const now = new Date().toISOString();
      const rec: SyncedTableRecord = {
        id, project_id: projectId, branch_id: branchId, database, source_location: location, source_key: key, source_format: source.format,
        target_table: target, refresh: req.refresh ?? 'snapshot', columns: load.columns, status: 'ready', rows_loaded: load.batch.rows.length,
        last_loaded_snapshot_id: load.batch.state.snapshotId, files: load.batch.state.files,
        last_load: { mode: 'full', rows: load.batch.rows.length, files: load.batch.files }, last_refreshed_at: now, created_at: now,
      };
      const operations = await this.plane.state.mutate((d) => {
        d.synced_tables ??= {};
        d.synced_tables[id] = rec;
        return recordOperations(d, projectId, started, [{ action: 'load_synced_table', branch_id: branchId, endpoint_id: endpointId }]);
      });
      return { syncedTable: rec, operations };
    });
  }

  /** Loads the table again from its source now: in full, or (incremental) only what the source added. */
  async refresh(projectId: string, branchId: string, id: string, mode?: RefreshMode): Promise<{ syncedTable: SyncedTableRecord; operations: OperationRecord[] }> {
    const started = Date.now();
    this.get(projectId, branchId, id);
    return this.locked(branchId, async () => {
      const rec = this.get(projectId, branchId, id);
      const endpointId = this.endpointFor(branchId);
      let done: SyncedTableRecord;
      try {
        done = await this.reload(rec, endpointId, (mode ?? rec.refresh) === 'incremental');
      } catch (e) {
        await this.markFailed(id, (e as Error).message);
        throw e;
      }
      const operations = await this.plane.state.mutate((d) => {
        if (d.synced_tables?.[id]) d.synced_tables[id] = done;
        return recordOperations(d, projectId, started, [{ action: 'load_synced_table', branch_id: branchId, endpoint_id: endpointId }]);
      });
      return { syncedTable: done, operations };
    });
  }

  private async reload(rec: SyncedTableRecord, endpointId: string, incremental: boolean): Promise<SyncedTableRecord> {
    const source = await openSource(this.syncer.store, rec.source_key, rec.source_location);
    if (source.format !== rec.source_format) {
      throw new ApiError(409, 'SOURCE_SCHEMA_CHANGED', `${rec.source_location} is now ${source.format === 'iceberg' ? 'an Iceberg table' : 'Parquet'}, not the ${rec.source_format} source the table was made from; delete the synced table and create it again`);
    }
    const previous: LoadedState = { snapshotId: rec.last_loaded_snapshot_id, files: rec.files };
    const load = await prepareLoad(source, {
      table: tableOf(rec), location: rec.source_location, into: { columns: rec.columns }, previous, incremental, loadId: rec.id,
    });
    await this.run(endpointId, rec.database, load.calls, rec.target_table, rec.id);
    const rows = load.batch.rows.length;
    const base = { ...rec };
    delete base.status_message;
    return {
      ...base, columns: load.columns, status: 'ready', rows_loaded: load.batch.mode === 'full' ? rows : rec.rows_loaded + rows,
      last_loaded_snapshot_id: load.batch.state.snapshotId, files: load.batch.state.files,
      last_load: { mode: load.batch.mode, rows, files: load.batch.files }, last_refreshed_at: new Date().toISOString(),
    };
  }

  private async markFailed(id: string, message: string): Promise<void> {
    await this.plane.state.mutate((d) => {
      const r = d.synced_tables?.[id];
      if (!r) return;
      r.status = 'failed';
      r.status_message = message;
    });
  }

  /** Stops the synced table: the Postgres table stays, without its guard, as the database owner's own table. */
  async delete(projectId: string, branchId: string, id: string): Promise<SyncedTableRecord> {
    this.get(projectId, branchId, id);
    return this.locked(branchId, async () => {
      const rec = this.get(projectId, branchId, id);
      const ep = this.syncer.endpointOf(branchId);
      const owner = this.plane.state.current.databases.find((d) => d.branch_id === branchId && d.name === rec.database)?.owner_name ?? 'neondb_owner';
      if (ep) await this.run(ep, rec.database, [[releaseTableSql(tableOf(rec), owner)]], rec.target_table);
      await this.plane.state.mutate((d) => {
        if (d.synced_tables) delete d.synced_tables[id];
      });
      return rec;
    });
  }
}
