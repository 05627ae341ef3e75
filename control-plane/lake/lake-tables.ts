// Lake tables of a branch (create, list, get, delete): the records and the one-time work around them. Creating one
// checks the source table, installs its capture and makes the first copy, with the branch's compute woken (a user
// asked for it); from then on LakeSyncer keeps it fresh. Deleting one stops the capture; the lake keeps its files.
import { randomBytes } from 'node:crypto';
import { ServiceError } from '../../lib/errors.ts';
import { uninstallSql } from '../../lake/capture/capture-sql.ts';
import { SourceTableError } from '../../lake/sync/table-sync.ts';
import { ApiError, conflict, notFound } from '../errors.ts';
import { getBranch } from '../lookup.ts';
import type { LakeTableRecord, OperationRecord } from '../model.ts';
import { recordOperations } from '../operations/records.ts';
import type { Plane } from '../plane.ts';
import type { LakeSyncer } from './lake-syncer.ts';
import { splitTableName } from './lake-syncer.ts';

const STATUS_OF_SOURCE_ERROR: Record<string, 400 | 404> = { TABLE_NOT_FOUND: 404, PRIMARY_KEY_REQUIRED: 400, BAD_SOURCE: 400 };

/** `schema.table` or `table` (public), as Postgres names them unquoted; anything else is refused before any work. */
const SOURCE_RE = /^(?:[A-Za-z_][A-Za-z0-9_$]{0,62}\.)?[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

export class LakeTables {
  private readonly plane: Plane;
  private readonly syncer: LakeSyncer;

  constructor(plane: Plane, syncer: LakeSyncer) {
    this.plane = plane;
    this.syncer = syncer;
  }

  list(projectId: string, branchId: string): LakeTableRecord[] {
    const s = this.plane.state.current;
    getBranch(s, projectId, branchId);
    return Object.values(s.lake_tables ?? {}).filter((t) => t.branch_id === branchId).sort((a, b) => a.created_at.localeCompare(b.created_at));
  }

  get(projectId: string, branchId: string, id: string): LakeTableRecord {
    const t = this.plane.state.current.lake_tables?.[id];
    getBranch(this.plane.state.current, projectId, branchId);
    if (!t || t.branch_id !== branchId) throw notFound('LAKE_TABLE_NOT_FOUND', `lake table ${id} not found on branch ${branchId}`);
    return t;
  }

  private endpointFor(branchId: string): string {
    const ep = this.syncer.endpointOf(branchId);
    if (!ep) throw conflict('ENDPOINT_REQUIRED', `branch ${branchId} has no read-write endpoint, and a lake table is read from its compute: create one first (POST /projects/{project_id}/endpoints)`);
    return ep;
  }

  private databaseOf(branchId: string): string {
    return this.plane.state.current.databases.find((d) => d.branch_id === branchId)?.name ?? 'neondb';
  }

  async create(projectId: string, branchId: string, sourceTable: string): Promise<{ lakeTable: LakeTableRecord; operations: OperationRecord[] }> {
    const started = Date.now();
    getBranch(this.plane.state.current, projectId, branchId);
    if (!SOURCE_RE.test(sourceTable)) throw new ApiError(400, 'BAD_REQUEST', `lake_table.source_table must be "schema.table" or "table" (unquoted Postgres names), got ${JSON.stringify(sourceTable)}`);
    const t = splitTableName(sourceTable);
    const source = `${t.schema}.${t.name}`;
    if (this.list(projectId, branchId).some((x) => x.source_table === source)) {
      throw conflict('LAKE_TABLE_EXISTS', `table ${source} of branch ${branchId} is already synced to the lake; delete that lake table first`);
    }
    const endpointId = this.endpointFor(branchId);
    const id = `lt-${randomBytes(6).toString('hex')}`;
    const database = this.databaseOf(branchId);
    const base = `lake/${projectId}/${branchId}/${t.schema}/${t.name}`;
    const rec: LakeTableRecord = {
      id, project_id: projectId, branch_id: branchId, source_table: source, database, current_prefix: base, history_prefix: `${base}_history`,
      status: 'initializing', columns: [], last_synced_lsn: null, last_synced_at: null, created_at: new Date().toISOString(),
    };
    return this.syncer.locks.run(id, async () => {
      const exec = (statements: string[]) => this.plane.endpoints.adminSql(endpointId, database, statements);
      let outcome: Awaited<ReturnType<ReturnType<LakeSyncer['tableSync']>['start']>>;
      try {
        outcome = await this.syncer.tableSync(rec, exec).start();
      } catch (e) {
        if (e instanceof SourceTableError) throw new ApiError(STATUS_OF_SOURCE_ERROR[e.code] ?? 400, e.code, e.message);
        if (e instanceof ServiceError) throw e;
        throw new ApiError(503, 'LAKE_SYNC_FAILED', `the first copy of ${source} failed: ${(e as Error).message}; nothing was created, retry`);
      }
      const done: LakeTableRecord = { ...rec, status: 'syncing', columns: outcome.columns, last_synced_lsn: outcome.syncedLsn, last_synced_at: new Date().toISOString() };
      const operations = await this.plane.state.mutate((d) => {
        d.lake_tables ??= {};
        d.lake_tables[id] = done;
        return recordOperations(d, projectId, started, [{ action: 'sync_lake_table', branch_id: branchId, endpoint_id: endpointId }]);
      });
      return { lakeTable: done, operations };
    });
  }

  /** Stops the sync and the capture (the compute is woken for that); the Iceberg tables stay in the bucket. */
  async delete(projectId: string, branchId: string, id: string): Promise<LakeTableRecord> {
    const rec = this.get(projectId, branchId, id);
    return this.syncer.locks.run(id, async () => {
      const ep = this.syncer.endpointOf(branchId);
      if (ep) await this.plane.endpoints.adminSql(ep, rec.database, uninstallSql(id, splitTableName(rec.source_table)));
      await this.plane.state.mutate((d) => {
        if (d.lake_tables) delete d.lake_tables[id];
      });
      return rec;
    });
  }
}
