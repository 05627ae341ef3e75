// Keeps lake tables fresh: every interval, each lake table whose branch's compute is running gets one sync round
// (lake/sync/table-sync.ts), as background work that never wakes a compute nor counts as its activity; and before
// the control plane suspends a compute, its lake tables are flushed. A suspended endpoint costs the sync nothing:
// what its writers captured waits in Postgres (durably) until the next wake.
import type { Logger } from '../../lib/logger.ts';
import type { ObjectStore } from '../../storage-node/object-store/object-store.ts';
import { TableSync } from '../../lake/sync/table-sync.ts';
import type { SqlExec, SyncOutcome } from '../../lake/sync/table-sync.ts';
import type { EndpointManager } from '../endpoints.ts';
import { KeyedLock } from '../keyed-lock.ts';
import type { LakeTableRecord } from '../model.ts';
import type { StateStore } from '../state-store.ts';

export interface LakeSyncerOptions {
  /** How often running computes' lake tables are synced (the freshness bound), ms. */
  intervalMs: number;
  /** Most changes one round takes from a table. */
  batchRows?: number;
  /** A table with more files than this is compacted (lake/sync/table-sync.ts). */
  compactAfterFiles?: number;
}

/** The compute is not running: nothing to sync from now (its changes wait in Postgres). */
export class ComputeNotRunning extends Error {}

export function splitTableName(source: string): { schema: string; name: string } {
  const dot = source.indexOf('.');
  return dot < 0 ? { schema: 'public', name: source } : { schema: source.slice(0, dot), name: source.slice(dot + 1) };
}

export class LakeSyncer {
  readonly store: ObjectStore;
  readonly locks = new KeyedLock();
  private readonly state: StateStore;
  private readonly endpoints: EndpointManager;
  private readonly log: Logger;
  private readonly opts: LakeSyncerOptions;
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<void> | null = null;

  constructor(state: StateStore, endpoints: EndpointManager, store: ObjectStore, log: Logger, opts: LakeSyncerOptions) {
    this.state = state;
    this.endpoints = endpoints;
    this.store = store;
    this.log = log;
    this.opts = opts;
    endpoints.beforeSuspend((endpointId) => this.flushEndpoint(endpointId));
  }

  start(): void {
    this.timer = setInterval(() => {
      this.round ??= this.syncAll().finally(() => (this.round = null));
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.round;
  }

  /** The branch's read-write endpoint, whose compute the sync reads. */
  endpointOf(branchId: string): string | undefined {
    return Object.values(this.state.current.endpoints).find((e) => e.branch_id === branchId && e.type === 'read_write')?.id;
  }

  tableSync(rec: Pick<LakeTableRecord, 'id' | 'branch_id' | 'source_table' | 'current_prefix' | 'history_prefix' | 'columns'>, exec: SqlExec): TableSync {
    const timelineId = this.state.current.branches[rec.branch_id]?.timeline_id ?? '';
    return new TableSync({
      id: rec.id, timelineId, table: splitTableName(rec.source_table), currentPrefix: rec.current_prefix, historyPrefix: rec.history_prefix, columns: rec.columns,
    }, this.store, exec, { batchRows: this.opts.batchRows, compactAfterFiles: this.opts.compactAfterFiles });
  }

  private backgroundExec(endpointId: string, database: string): SqlExec {
    return async (statements) => {
      const r = await this.endpoints.backgroundSql(endpointId, database, statements);
      if (!r) throw new ComputeNotRunning(`endpoint ${endpointId} is not running`);
      return r;
    };
  }

  /** One round for every lake table whose compute runs. */
  async syncAll(): Promise<void> {
    for (const rec of Object.values(this.state.current.lake_tables ?? {})) {
      if (rec.status !== 'syncing') continue;
      const ep = this.endpointOf(rec.branch_id);
      if (!ep || !this.endpoints.location(ep)) continue;
      await this.syncTable(rec.id, ep);
    }
  }

  /** Everything captured on this endpoint's branch goes to the lake now (called before it suspends). */
  async flushEndpoint(endpointId: string): Promise<void> {
    const branchId = this.state.current.endpoints[endpointId]?.branch_id;
    for (const rec of Object.values(this.state.current.lake_tables ?? {})) {
      if (rec.branch_id === branchId && rec.status === 'syncing') await this.syncTable(rec.id, endpointId);
    }
  }

  /** One round for one table (serialised with its create and delete); failures are logged and retried next round. */
  syncTable(id: string, endpointId: string): Promise<void> {
    return this.locks.run(id, async () => {
      const rec = this.state.current.lake_tables?.[id];
      if (rec?.status !== 'syncing') return;
      try {
        const outcome = await this.tableSync(rec, this.backgroundExec(endpointId, rec.database)).syncOnce();
        await this.record(id, outcome);
      } catch (e) {
        if (e instanceof ComputeNotRunning) return;
        this.log.warn({ lakeTable: id, err: String(e) }, 'lake sync round failed; it is retried next round');
      }
    });
  }

  /** Writes what a round found to the lake table's record. */
  async record(id: string, o: SyncOutcome): Promise<void> {
    const before = this.state.current.lake_tables?.[id];
    const same = before && before.status === o.state && before.status_message === o.message && before.columns.length === o.columns.length
      && (o.syncedLsn === null || o.syncedLsn === before.last_synced_lsn);
    if (same) return; // nothing new: no write to the bucket for an idle table
    await this.state.mutate((d) => {
      const r = d.lake_tables?.[id];
      if (!r) return;
      r.status = o.state;
      if (o.message) r.status_message = o.message;
      else delete r.status_message;
      if (o.columns.length !== r.columns.length) r.columns = o.columns;
      if (o.syncedLsn) {
        r.last_synced_lsn = o.syncedLsn;
        r.last_synced_at = new Date().toISOString();
      }
    });
    if (o.state === 'paused') this.log.warn({ lakeTable: id, why: o.message }, 'lake table paused');
  }
}
