// The compute host: the computes of this machine (one per active endpoint, each in its own worker thread with its
// own wire port), a pool of pre-started workers, and the memory budget that bounds how many can run.
import { StorageClient, StorageNodeError } from '../../storage-node/client.ts';
import { ServiceError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { getPgliteWasmModule } from '../wasm.ts';
import { DEFAULT_MAX_RESULT_BYTES } from '../compute.ts';
import { CancelKeys, HostedCompute } from './hosted-compute.ts';
import type { AdminSqlRequest, ComputeInfo, StartAnswer, StartRequest, TemplateAnswer, EngineName } from './api-types.ts';
import type { EngineCompute } from './engine.ts';
import { PostgresCompute } from '../postgres/postgres-compute.ts';
import { checkPostgresEngine } from '../postgres/environment.ts';
import { createPostgresTemplate } from '../postgres/template.ts';
import { guardLibrary } from '../postgres/guard.ts';
import { UidPool } from '../postgres/uid-pool.ts';
import { FuseServer, type SpareFuseServer } from '../fuse/fuse-server.ts';
import { chmod, mkdir, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
export type { StartAnswer, StartRequest } from './api-types.ts';
import { HostMetrics } from './metrics.ts';
import { WorkerPool } from './pool.ts';
import type { HostLimits } from './hosted-compute.ts';

const MiB = 1024 * 1024;

export interface HostOptions {
  storageUrl: string;
  /** The storage node's bearer token (LAKEBASE_STORAGE_TOKEN), for the host's and its computes' clients. */
  storageToken?: string;
  /** The internal password every client (the proxy) must present. */
  token: string;
  /** Address the computes' wire servers listen on, and the one reported to callers. */
  listenHost: string;
  advertiseHost: string;
  /** Pre-started workers kept ready (0: none). */
  poolSize: number;
  /** Memory the host may commit to computes and pooled workers. */
  memoryBudgetBytes: number;
  /** shared_buffers of each postgres-engine compute. */
  sharedBuffersBytes: number;
  /**
   * shared_buffers of each PGlite compute: small, because the worker's page cache (pageCacheBytes) holds the clean
   * pages anyway, and Postgres' start zeroes and initialises every buffer (16 MB cost a start 45 ms more than 4 MB).
   */
  pgliteSharedBuffersBytes: number;
  /** Page cache of each compute (clean pages from the storage node). */
  pageCacheBytes: number;
  /**
   * Memory counted per compute beyond shared_buffers and the page cache: the wasm heap Postgres uses besides
   * shared_buffers (catalog caches, work_mem, ...) and the worker thread's V8 heap. See README for how it was measured.
   */
  computeOverheadBytes: number;
  /** Memory counted per pooled (idle, pre-started) worker. */
  pooledWorkerBytes: number;
  limits: HostLimits;
  idleInTransactionTimeoutMs: number;
  cancelGraceMs: number;
  stopTimeoutMs: number;
  /** postgres engine: where computes' mountpoints and sockets live (a directory of the host's own). */
  runDir?: string;
  log: Logger;
}

export const DEFAULT_HOST_OPTIONS = {
  listenHost: '127.0.0.1',
  poolSize: 2,
  memoryBudgetBytes: 2048 * MiB,
  sharedBuffersBytes: 16 * MiB,
  pgliteSharedBuffersBytes: 4 * MiB,
  pageCacheBytes: 32 * MiB,
  computeOverheadBytes: 64 * MiB,
  pooledWorkerBytes: 48 * MiB,
  limits: { maxMessageBytes: 64 * MiB, maxCopyBytes: 256 * MiB, maxBufferedBytes: 8 * MiB, loginTimeoutMs: 10_000, maxResultBytes: DEFAULT_MAX_RESULT_BYTES },
  idleInTransactionTimeoutMs: 60_000,
  cancelGraceMs: 1000,
  stopTimeoutMs: 10_000,
} as const;

/** A refused request: an HTTP status and a stable code (a ServiceError, answered by the API's onError). */
export class HostError extends ServiceError {
  override name = 'HostError';
  declare readonly status: 400 | 404 | 409 | 503;
  constructor(status: HostError['status'], code: string, message: string) {
    super(status, code, message, { kind: code === 'memory_budget_exceeded' ? 'quota' : undefined });
  }
}

export class ComputeHost {
  readonly opts: HostOptions;
  readonly metrics = new HostMetrics();
  private readonly computes = new Map<string, EngineCompute>();
  private readonly uids = new UidPool();
  private readonly pool: WorkerPool;
  private readonly keys = new CancelKeys();
  private readonly storage: StorageClient;
  private closing = false;

  constructor(opts: HostOptions) {
    this.opts = opts;
    this.storage = new StorageClient(opts.storageUrl, opts.storageToken);
    this.pool = new WorkerPool({ size: opts.poolSize, log: opts.log, onChange: (n) => this.metrics.poolIdle.set(n) });
    this.metrics.memoryBudget.set(opts.memoryBudgetBytes);
    this.updateGauges();
  }

  /** Compiles the wasm and fills the pool. */
  async init(): Promise<void> {
    await getPgliteWasmModule();
    await this.pool.fill();
  }

  perComputeBytes(engine: EngineName): number {
    const shared = engine === 'postgres' ? this.opts.sharedBuffersBytes : this.opts.pgliteSharedBuffersBytes;
    return shared + this.opts.pageCacheBytes + this.opts.computeOverheadBytes;
  }

  /** Memory held against the budget: running computes and the pool's workers. */
  reservedBytes(): number {
    let n = this.opts.poolSize * this.opts.pooledWorkerBytes;
    for (const c of this.computes.values()) n += c.config.reservedBytes;
    return n;
  }

  /** Refuses a start this host cannot take (shutting down, a duplicate, a second writer, no memory left); returns the bytes to reserve. */
  private admit(req: StartRequest): number {
    if (this.closing) throw new HostError(503, 'host_stopping', 'the compute host is shutting down');
    if (this.computes.has(req.computeId)) throw new HostError(409, 'compute_exists', `compute ${req.computeId} already exists on this host`);
    const readOnly = req.readOnly ?? false;
    if (!readOnly) {
      for (const c of this.computes.values()) {
        if (c.config.timelineId === req.timelineId && !c.config.readOnly) {
          throw new HostError(409, 'timeline_busy', `timeline ${req.timelineId} already has a read-write compute (${c.config.computeId}) on this host: a timeline has one writer`);
        }
      }
    }
    const need = this.perComputeBytes(req.engine ?? 'pglite');
    const reserved = this.reservedBytes();
    if (reserved + need > this.opts.memoryBudgetBytes) {
      throw new HostError(503, 'memory_budget_exceeded',
        `starting compute ${req.computeId} needs ${Math.round(need / MiB)} MiB but ${Math.round(reserved / MiB)} of the host's ` +
        `${Math.round(this.opts.memoryBudgetBytes / MiB)} MiB budget are reserved (${this.computes.size} computes, ${this.opts.poolSize} pooled workers): ` +
        'stop a compute or start it on another host');
    }
    return need;
  }

  async start(req: StartRequest): Promise<StartAnswer> {
    const engine = req.engine ?? 'pglite';
    if (engine === 'postgres') await this.requirePostgres();
    const need = this.admit(req);
    const hosted = engine === 'postgres' ? await this.postgresCompute(req, need) : this.pgliteCompute(req, need);
    // reserved before the next await: a concurrent start with the same id is refused
    this.computes.set(req.computeId, hosted);
    this.updateGauges();
    const t0 = performance.now();
    let checkMs = 0;
    try {
      await this.checkTimeline(req);
      checkMs = performance.now() - t0;
      await hosted.start();
    } catch (e) {
      this.computes.delete(req.computeId);
      this.updateGauges();
      this.metrics.starts.inc({ outcome: 'error', pooled: String(hosted.pooled) });
      throw this.translate(e);
    }
    this.metrics.starts.inc({ outcome: 'ok', pooled: String(hosted.pooled) });
    this.metrics.startSeconds.observe({ pooled: String(hosted.pooled) }, hosted.startMs / 1000);
    this.metrics.startPagesFetched.inc(hosted.pagesFetched);
    this.updateGauges();
    const d = hosted.describe();
    this.opts.log.info({ computeId: req.computeId, timelineId: req.timelineId, engine, port: d.port, startMs: d.startMs, pooled: d.pooled, pagesFetched: d.pagesFetched }, 'compute started');
    const phases = { check: round1(checkMs), ...hosted.startPhases };
    for (const [phase, ms] of Object.entries(phases)) this.metrics.startPhaseSeconds.observe({ engine, phase }, ms / 1000);
    return { computeId: req.computeId, host: d.host, port: d.port, startMs: d.startMs, pagesFetched: d.pagesFetched, pooled: d.pooled, lsn: d.lsn, engine, phases };
  }

  private pgliteCompute(req: StartRequest, need: number): HostedCompute {
    return new HostedCompute({
      computeId: req.computeId, timelineId: req.timelineId, lsn: req.lsn, readOnly: req.readOnly ?? false,
      database: req.database ?? 'neondb', username: req.username ?? 'postgres', storageUrl: this.opts.storageUrl, storageToken: this.opts.storageToken,
      postgresConfig: { shared_buffers: `${Math.max(1, Math.round(this.opts.pgliteSharedBuffersBytes / MiB))}MB` },
      cacheBytes: this.opts.pageCacheBytes, reservedBytes: need,
    }, {
      token: this.opts.token, listenHost: this.opts.listenHost, advertiseHost: this.opts.advertiseHost,
      limits: this.opts.limits, idleInTransactionTimeoutMs: this.opts.idleInTransactionTimeoutMs,
      cancelGraceMs: this.opts.cancelGraceMs, stopTimeoutMs: this.opts.stopTimeoutMs,
      log: this.opts.log, metrics: this.metrics, keys: this.keys, takeWorker: () => this.pool.take(),
    });
  }

  private async postgresCompute(req: StartRequest, need: number): Promise<PostgresCompute> {
    return new PostgresCompute({
      computeId: req.computeId, timelineId: req.timelineId, lsn: req.lsn, readOnly: req.readOnly ?? false, roles: req.roles ?? [],
      database: req.database ?? 'neondb', cacheBytes: this.opts.pageCacheBytes, sharedBuffersBytes: this.opts.sharedBuffersBytes, reservedBytes: need,
    }, {
      storageUrl: this.opts.storageUrl, storageToken: this.opts.storageToken, listenHost: this.opts.listenHost, advertiseHost: this.opts.advertiseHost,
      runDir: await this.runDir(), uids: this.uids, guardLibrary: () => guardLibrary(), takeSpareFuse: () => this.takeSpareFuse(),
      stopTimeoutMs: this.opts.stopTimeoutMs,
      readyTimeoutMs: 60_000, metrics: this.metrics, log: this.opts.log,
    });
  }

  private runDirReady: Promise<string> | null = null;
  /** FUSE servers forked ahead of time (as many as --pool-size), once the host has run a postgres compute. */
  private readonly spareFuse: SpareFuseServer[] = [];

  private takeSpareFuse(): SpareFuseServer | undefined {
    const spare = this.spareFuse.shift();
    // refill after the start that takes one, off its path
    setTimeout(() => {
      while (!this.closing && this.spareFuse.length < this.opts.poolSize) this.spareFuse.push(FuseServer.spare(this.opts.storageToken));
    }, 250).unref();
    return spare;
  }

  /** The host's directory of postgres-engine computes: root's, traversable (0711) so each uid reaches its own. */
  private runDir(): Promise<string> {
    this.runDirReady ??= (async () => {
      const dir = this.opts.runDir ?? path.join(tmpdir(), `lakebase-computes-${process.pid}`);
      await mkdir(dir, { recursive: true });
      await chmod(dir, 0o711);
      return dir;
    })();
    return this.runDirReady;
  }

  /** Refuses the postgres engine where this machine cannot run it, saying what to install. */
  private async requirePostgres(): Promise<void> {
    await checkPostgresEngine().catch((e: unknown) => {
      throw new HostError(503, 'engine_unavailable', (e as Error).message);
    });
  }

  /** Makes the engine's template timeline (initdb once); the control plane keeps its id. */
  async createTemplate(engine: EngineName): Promise<TemplateAnswer> {
    if (engine !== 'postgres') throw new HostError(400, 'invalid_request', 'only the postgres engine makes its template on a compute host; the pglite template is made by the control plane');
    await this.requirePostgres();
    return createPostgresTemplate(this.storage, this.opts.log);
  }

  /** Runs the control plane's statements as the compute's superuser. */
  async adminSql(computeId: string, req: AdminSqlRequest): Promise<void> {
    const c = this.computes.get(computeId);
    if (!c) throw new HostError(404, 'compute_not_found', `no compute ${computeId} on this host`);
    await c.adminSql(req).catch((e: unknown) => {
      const err = e as { code?: unknown; message: string };
      // Postgres' own refusal (a SQLSTATE) is the caller's error; anything else is the host's
      if (typeof err.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code)) throw new HostError(400, 'postgres_error', `${err.message} (SQLSTATE ${err.code})`);
      throw e;
    });
  }

  private async checkTimeline(req: StartRequest): Promise<void> {
    const info = await this.storage.getTimeline(req.timelineId).catch((e: unknown) => {
      if (e instanceof StorageNodeError && e.status === 404) throw new HostError(404, 'timeline_not_found', `timeline ${req.timelineId} does not exist on the storage node`);
      throw e;
    });
    if (req.lsn === undefined) return;
    if (!(req.readOnly ?? false) && req.lsn !== info.lastLsn) {
      throw new HostError(400, 'invalid_lsn', `a read-write compute starts at the head of timeline ${req.timelineId} (LSN ${info.lastLsn}), not at LSN ${req.lsn}: start a read-only compute or branch at that LSN`);
    }
    if (req.lsn > info.lastLsn || req.lsn < info.oldestReadableLsn) {
      throw new HostError(400, 'lsn_out_of_range', `LSN ${req.lsn} is outside the readable range ${info.oldestReadableLsn}..${info.lastLsn} of timeline ${req.timelineId}`);
    }
  }

  private translate(e: unknown): Error {
    if (e instanceof HostError) return e;
    const msg = (e as Error)?.message ?? String(e);
    if (/database "[^"]*" does not exist/.test(msg)) return new HostError(400, 'database_not_found', msg);
    if (e instanceof StorageNodeError && e.status === 404) return new HostError(404, 'timeline_not_found', msg);
    return e as Error;
  }

  async stop(computeId: string): Promise<{ computeId: string; stopped: true; clean: boolean; lsn: number }> {
    const c = this.computes.get(computeId);
    if (!c) throw new HostError(404, 'compute_not_found', `no compute ${computeId} on this host`);
    if (c.state === 'starting') throw new HostError(409, 'compute_starting', `compute ${computeId} is still starting; stop it once the start answered`);
    const r = await c.stop();
    this.computes.delete(computeId);
    this.updateGauges();
    this.opts.log.info({ computeId, clean: r.clean, lsn: r.lsn }, 'compute stopped');
    return { computeId, stopped: true, clean: r.clean, lsn: r.lsn };
  }

  async list(): Promise<ComputeInfo[]> {
    const all = [...this.computes.values()];
    await Promise.all(all.map((c) => c.refreshStats()));
    return all.map((c) => c.describe());
  }

  async get(computeId: string): Promise<ComputeInfo> {
    const c = this.computes.get(computeId);
    if (!c) throw new HostError(404, 'compute_not_found', `no compute ${computeId} on this host`);
    await c.refreshStats();
    return c.describe();
  }

  get computeCount(): number {
    return this.computes.size;
  }

  poolStatus(): { size: number; idle: number } {
    return { size: this.pool.size, idle: this.pool.idle };
  }

  private updateGauges(): void {
    const counts = new Map<string, number>();
    for (const c of this.computes.values()) counts.set(c.state, (counts.get(c.state) ?? 0) + 1);
    for (const s of ['starting', 'running', 'restarting', 'stopping', 'failed']) this.metrics.computes.set({ state: s }, counts.get(s) ?? 0);
    this.metrics.memoryReserved.set(this.reservedBytes());
  }

  /** Stops every compute cleanly and ends the pool. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.computes.keys()].map((id) => this.stop(id).catch(() => undefined)));
    for (const s of this.spareFuse.splice(0)) s.kill();
    await this.pool.close();
    // the run directory the host made itself goes with it (rmdir: only when every compute's directory is gone)
    if (this.runDirReady && this.opts.runDir === undefined) await rmdir(await this.runDirReady).catch(() => undefined);
  }
}

const round1 = (ms: number): number => Math.round(ms * 10) / 10;
