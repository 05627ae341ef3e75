// One synced table: the first copy, then batches of captured changes into two Iceberg tables in the bucket, the
// current state (rows replaced by key: equality deletes + new rows) and the history (every change, appended).
// It talks to Postgres only through `exec` (the compute host's admin SQL, as background work) and to the lake only
// through IcebergTable, so it runs wherever the bucket and the compute host can be reached.
//
// Exactly once (capture-sql.ts): a batch is marked in Postgres, published to each table whose last snapshot holds
// an older batch number (`lakebase.batch` in the snapshot summary), then deleted. Publishing is skipped per table, so a
// crash between the two commits publishes the batch again only where it is missing.
import type { AdminSqlResult } from '../../compute/host/api-types.ts';
import type { ObjectStore } from '../../storage-node/object-store/object-store.ts';
import { CAPTURE_SCHEMA, WAL_POSITION_SQL, batchSql, captureSchemaSql, describeTableSql, drainSql, finishBatchSql, initialCopySql, installTriggerSql, pendingBatchesSql } from '../capture/capture-sql.ts';
import type { TableName } from '../capture/capture-sql.ts';
import { IcebergTable } from '../iceberg/table.ts';
import type { IcebergSchema } from '../iceberg/types.ts';
import { compareColumns, currentSchema, historySchema, parseDescription, syncedColumn } from './columns.ts';
import type { DescribedColumn, SyncedColumn } from './columns.ts';
import { type Change, historyRows, netEffect, parseChanges } from './changes.ts';
import { rowOf } from './values.ts';

/** Runs statements in the source database as its superuser; answers each statement's rows as text. */
export type SqlExec = (statements: string[]) => Promise<AdminSqlResult[]>;

export interface TableSyncSpec {
  id: string;
  /** The timeline of the branch the table is synced from (its capture trigger captures there only). */
  timelineId: string;
  table: TableName;
  /** Key prefixes of the two Iceberg tables in the bucket. */
  currentPrefix: string;
  historyPrefix: string;
  /** Columns the lake table holds (empty before the first copy). */
  columns: SyncedColumn[];
}

export interface SyncOutcome {
  state: 'syncing' | 'paused';
  message?: string;
  columns: SyncedColumn[];
  /** Postgres' LSN up to which every committed change is in the lake (unchanged when the drain stopped short). */
  syncedLsn: string | null;
  changes: number;
}

/** A refusal to start: what is wrong with the source table, for a 4xx. */
export class SourceTableError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'SourceTableError';
    this.code = code;
  }
}

const BATCH_KEY = 'lakebase.batch';
const LSN_KEY = 'lakebase.last-synced-lsn';

function markerOf(t: IcebergTable): number {
  const b = t.currentSnapshot?.summary[BATCH_KEY];
  return b === undefined ? -1 : Number(b);
}

export class TableSync {
  private readonly spec: TableSyncSpec;
  private readonly store: ObjectStore;
  private readonly exec: SqlExec;
  private readonly batchRows: number;
  private readonly maintenance: { compactAfterFiles: number; keepSnapshots: number };
  private columns: SyncedColumn[];

  constructor(spec: TableSyncSpec, store: ObjectStore, exec: SqlExec, opts: { batchRows?: number; compactAfterFiles?: number; keepSnapshots?: number } = {}) {
    this.spec = spec;
    this.store = store;
    this.exec = exec;
    this.batchRows = opts.batchRows ?? 50_000;
    this.maintenance = { compactAfterFiles: opts.compactAfterFiles ?? 32, keepSnapshots: opts.keepSnapshots ?? 20 };
    this.columns = spec.columns;
  }

  private async one(sql: string): Promise<(string | null)[][]> {
    return (await this.exec([sql]))[0]?.rows ?? [];
  }

  private async describe(): Promise<DescribedColumn[]> {
    return parseDescription(await this.one(describeTableSql(this.spec.id, this.spec.table)));
  }

  /** Checks the source, installs the capture and makes the first copy. Throws SourceTableError for a bad source. */
  async start(): Promise<SyncOutcome> {
    const described = await this.describe();
    const name = `${this.spec.table.schema}.${this.spec.table.name}`;
    if (described.length === 0) throw new SourceTableError('TABLE_NOT_FOUND', `relation "${name}" does not exist on this branch`);
    if (this.spec.table.schema === CAPTURE_SCHEMA) throw new SourceTableError('BAD_SOURCE', `${name} is the lake sync's own table`);
    const keys = described.filter((d) => d.keyPosition > 0).sort((a, b) => a.keyPosition - b.keyPosition);
    if (keys.length === 0) {
      throw new SourceTableError('PRIMARY_KEY_REQUIRED', `table ${name} has no primary key: a lake table replaces rows by key, so add one first (ALTER TABLE ${name} ADD PRIMARY KEY (...))`);
    }
    let id = 0;
    this.columns = described.map((d) => syncedColumn(d, () => ++id));
    await this.exec([...captureSchemaSql(), ...installTriggerSql(this.spec.id, this.spec.timelineId, this.spec.table, keys.map((k) => k.name))]);
    return this.copy();
  }

  private async open(prefix: string, schema: IcebergSchema): Promise<IcebergTable> {
    return (await IcebergTable.open(this.store, prefix)) ?? IcebergTable.create(this.store, prefix, schema, { 'lakebase.source-table': `${this.spec.table.schema}.${this.spec.table.name}` });
  }

  /** Both tables from scratch: a first copy that did not finish is started over (nothing of it was published yet). */
  private async freshTables(): Promise<{ current: IcebergTable; history: IcebergTable }> {
    for (const prefix of [this.spec.currentPrefix, this.spec.historyPrefix]) {
      for (const o of await this.store.list(`${prefix}/`)) await this.store.delete(o.key);
    }
    return {
      current: await IcebergTable.create(this.store, this.spec.currentPrefix, currentSchema(this.columns, 0)),
      history: await IcebergTable.create(this.store, this.spec.historyPrefix, historySchema(this.columns, 0)),
    };
  }

  private async copy(): Promise<SyncOutcome> {
    const { current, history } = await this.freshTables();
    const names = this.columns.map((c) => c.name);
    const lsn = (await this.one(WAL_POSITION_SQL))[0]?.[0] ?? null;
    const rows = (await this.one(initialCopySql(this.spec.id, this.spec.table, names))).filter((r) => r[0] === 'r');
    const converted = rows.map((r) => rowOf(this.columns, r, 2));
    const summary = { [BATCH_KEY]: '0', [LSN_KEY]: lsn ?? '' };
    const now = BigInt(Date.now()) * 1000n;
    await history.commit({ rows: converted.map((r) => ({ ...r, _op: 'I', _lsn: lsn ?? '', _xid: 0n, _commit_time: now })), summary });
    await current.commit({ rows: converted, summary });
    await this.exec([finishBatchSql(this.spec.id, 0)]);
    return { state: 'syncing', columns: this.columns, syncedLsn: lsn, changes: converted.length };
  }

  /** One round: finish a batch left marked by a crash, then drain and publish the next. */
  async syncOnce(): Promise<SyncOutcome> {
    const current = await IcebergTable.open(this.store, this.spec.currentPrefix);
    const history = await IcebergTable.open(this.store, this.spec.historyPrefix);
    if (this.columns.length === 0) return this.start(); // a start that never finished
    if (!current || !history || markerOf(current) < 0) return this.copy();
    // one round trip for what the round starts from; the WAL position read here, before the drain's UPDATE, still
    // bounds what the drain is sure to see
    const [described, pendingRows, position] = await this.exec([describeTableSql(this.spec.id, this.spec.table), pendingBatchesSql(this.spec.id), WAL_POSITION_SQL]);
    const check = await this.checkSource(current, history, parseDescription(described.rows));
    if (check) return check;
    let changes = 0;
    for (const r of pendingRows.rows) {
      const batch = Number(r[0]);
      const pending = parseChanges(await this.one(batchSql(this.spec.id, batch, this.columns.map((c) => c.name))), this.columns);
      await this.publish(current, history, batch, pending, null);
      changes += pending.length;
    }
    const lsn = position.rows[0]?.[0] ?? null;
    const batch = Math.max(markerOf(current), markerOf(history)) + 1;
    // the source's columns read again right after the drain: a column added between the check above and the drain
    // may be in the changes taken, so that batch waits (marked) for the next round, which evolves the schema first
    const [drainedRows, after] = await this.exec([drainSql(this.spec.id, batch, this.batchRows, this.columns.map((c) => c.name)), describeTableSql(this.spec.id, this.spec.table)]);
    if (compareColumns(this.columns, parseDescription(after.rows)).kind !== 'same') return { state: 'syncing', columns: this.columns, syncedLsn: null, changes };
    const drained = parseChanges(drainedRows.rows, this.columns);
    const complete = drained.length < this.batchRows;
    if (drained.length > 0) await this.publish(current, history, batch, drained, complete ? lsn : null);
    changes += drained.length;
    if (changes > 0) await this.maintain(current, history);
    return { state: 'syncing', columns: this.columns, syncedLsn: complete ? lsn : null, changes };
  }

  /** DDL on the source: added columns evolve both schemas; anything else pauses the sync with what happened. */
  private async checkSource(current: IcebergTable, history: IcebergTable, described: DescribedColumn[]): Promise<SyncOutcome | null> {
    const paused = (message: string): SyncOutcome => ({ state: 'paused', message, columns: this.columns, syncedLsn: null, changes: 0 });
    if (described.length === 0) return paused(`the source table ${this.spec.table.schema}.${this.spec.table.name} was dropped`);
    if (described[0].triggerState === null || described[0].triggerState === 'D') {
      return paused('the capture trigger was dropped or disabled: changes since then are not known; delete this lake table and create it again');
    }
    const change = compareColumns(this.columns, described);
    if (change.kind === 'incompatible') return paused(`${change.message}: the lake table cannot follow that; delete it and create it again`);
    if (change.kind === 'added') {
      let next = Math.max(0, ...current.schema.fields.map((f) => f.id), ...this.columns.map((c) => c.elementId ?? c.fieldId));
      this.columns = [...this.columns, ...change.columns.map((d) => syncedColumn(d, () => ++next))];
      await current.commit({ schema: currentSchema(this.columns, current.schema['schema-id'] + 1), summary: current.currentSnapshot?.summary });
      await history.commit({ schema: historySchema(this.columns, history.schema['schema-id'] + 1), summary: history.currentSnapshot?.summary });
    }
    return null;
  }

  /**
   * Small files from frequent batches are merged once a table has more than `compactAfterFiles` (the current state
   * then also loses its delete files), and snapshots past the newest `keepSnapshots` are expired with their files.
   */
  private async maintain(current: IcebergTable, history: IcebergTable): Promise<void> {
    for (const t of [current, history]) {
      if ((await t.files()).length > this.maintenance.compactAfterFiles) {
        await t.compact();
        await t.expireSnapshots(this.maintenance.keepSnapshots);
      }
    }
  }

  private async publish(current: IcebergTable, history: IcebergTable, batch: number, changes: Change[], lsn: string | null): Promise<void> {
    const previous = current.currentSnapshot?.summary[LSN_KEY] ?? '';
    const summary = { [BATCH_KEY]: String(batch), [LSN_KEY]: lsn ?? previous };
    const keys = this.columns.filter((c) => c.keyPosition > 0).map((c) => c.name);
    const needsLive = changes.some((c) => c.op === 'T');
    const live = needsLive ? await current.readRows() : [];
    if (markerOf(history) < batch) await history.commit({ rows: historyRows(changes, live, keys), summary });
    if (markerOf(current) < batch) {
      const { rows, deletes } = netEffect(changes, live, keys);
      await current.commit({ rows, deletes, summary });
    }
    await this.exec([finishBatchSql(this.spec.id, batch)]);
  }
}
