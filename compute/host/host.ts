// The compute host: the computes of this machine (one per active endpoint, each in its own worker thread with its
// own wire port), a pool of pre-started workers, and the memory budget that bounds how many can run. A start that
// does not fit waits in line for memory (admission.ts), which idle computes give up (idle-reclaim.ts).
import { TIMELINE_SETTING } from '../../lib/compute-startup.ts';
import { availableParallelism } from 'node:os';
import { StorageNodeError } from '../../storage-node/client.ts';
import type { TimelineInfo } from '../../storage-node/api/types.ts';
import type { Logger } from '../../lib/logger.ts';
import { getPgliteWasmModule } from '../wasm.ts';
import { DEFAULT_MAX_RESULT_BYTES } from '../compute.ts';
import { CancelKeys, HostedCompute } from './hosted-compute.ts';
import type { AdminSqlAnswer, AdminSqlRequest, ComputeInfo, StartAnswer, StartRequest, TemplateAnswer, EngineName } from './api-types.ts';
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
import { MemoryAdmission } from './admission.ts';
import { HostError } from './host-error.ts';
import { IdleReclaimer } from './idle-reclaim.ts';
import { StorageClients } from './storage-clients.ts';
export { HostError } from './host-error.ts';

const MiB = 1024 * 1024;

export interface HostOptions {
  /** The storage node of a start that names none (StartRequest.storageUrl), and of the postgres template. */
  storageUrl: string;
  /** The storage nodes' bearer token (LAKEBASE_STORAGE_TOKEN: one for every node), for the host's and its computes' clients. */
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
  /** Starts that may wait for memory at once (default 256); one more is refused with `start_queue_full`. */
  startQueueLength?: number;
  /**
   * How long a start waits for memory before it is refused with `start_queue_timeout` (default 60 s; the control
   * plane waits 120 s for a start, and a proxy that stops waiting after 60 s asks again and joins the same wake).
   */
  startQueueTimeoutMs?: number;
  /**
   * While starts wait for memory, computes idle this long are suspended for them, least recently used first
   * (default 10 s; 0: never).
   */
  evictIdleMs?: number;
  /**
   * Pooled workers made at once while starts wait for one (default: twice the CPU count: a spawn waits on its
   * module loads part of the time; on 2 cores, 4 at once made 16 workers in 5.3 s, 2 in 7.6 s, 8 in 7.0 s).
   */
  poolSpawns?: number;
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
  startQueueLength: 256,
  startQueueTimeoutMs: 60_000,
  evictIdleMs: 10_000,
} as const;

export class ComputeHost {
  readonly opts: HostOptions;
  readonly metrics = new HostMetrics();
  private readonly computes = new Map<string, EngineCompute>();
  private readonly uids = new UidPool();
  private readonly pool: WorkerPool;
  private readonly keys = new CancelKeys();
  /** A client per storage node the host's computes use (the host's own first). */
  private readonly storage: StorageClients;
  private readonly admission: MemoryAdmission;
  private readonly reclaimer: IdleReclaimer;
  /** Compute ids from the start's first check until it ends (waiting in line included): one start per id. */
  private readonly claimed = new Set<string>();
  /** When each compute's start finished. */
  private readonly runningSince = new Map<string, number>();
  /** Computes started with `evictable: false`: never suspended for waiting starts. */
  private readonly pinned = new Set<string>();
  /** Stops in progress, so that a second stop joins the first and a start of the same id waits for it. */
  private readonly stopping = new Map<string, Promise<StopAnswer>>();
  private closing = false;

  constructor(opts: HostOptions) {
    this.opts = opts;
    this.storage = new StorageClients(opts.storageUrl, opts.storageToken);
    const maxSpawns = opts.poolSpawns ?? 2 * availableParallelism();
    this.pool = new WorkerPool({ size: opts.poolSize, maxSpawns, log: opts.log, onChange: (n) => this.metrics.poolIdle.set(n) });
    this.reclaimer = new IdleReclaimer({
      idleMs: opts.evictIdleMs ?? DEFAULT_HOST_OPTIONS.evictIdleMs,
      computes: () => this.computes.values(),
      runningSince: (id) => this.runningSince.get(id) ?? Date.now(),
      untouchable: (id) => this.pinned.has(id) || this.stopping.has(id),
      stop: (id) => this.stop(id),
      onEvict: () => this.metrics.evictions.inc(),
      log: opts.log,
    });
    this.admission = new MemoryAdmission({
      budgetBytes: opts.memoryBudgetBytes,
      fixedBytes: opts.poolSize * opts.pooledWorkerBytes,
      maxWaiting: opts.startQueueLength ?? DEFAULT_HOST_OPTIONS.startQueueLength,
      timeoutMs: opts.startQueueTimeoutMs ?? DEFAULT_HOST_OPTIONS.startQueueTimeoutMs,
      reclaim: (bytes) => this.reclaimer.reclaim(bytes),
      describeUse: () => this.describeUse(),
      onWaiting: (n) => this.metrics.startQueueWaiting.set(n),
    });
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

  /** Memory held against the budget: admitted computes (starting ones included) and the pool's workers. */
  reservedBytes(): number {
    return this.admission.reservedBytes;
  }

  /** Refuses a start this host cannot take (shutting down, a duplicate, a second writer). */
  private check(req: StartRequest, self = false): void {
    if (this.closing) throw new HostError(503, 'host_stopping', 'the compute host is shutting down');
    if (this.computes.has(req.computeId) || (!self && this.claimed.has(req.computeId))) {
      throw new HostError(409, 'compute_exists', `compute ${req.computeId} already exists on this host`);
    }
    const readOnly = req.readOnly ?? false;
    if (!readOnly) {
      for (const c of this.computes.values()) {
        if (c.config.timelineId === req.timelineId && !c.config.readOnly) {
          throw new HostError(409, 'timeline_busy', `timeline ${req.timelineId} already has a read-write compute (${c.config.computeId}) on this host: a timeline has one writer`);
        }
      }
    }
  }

  /** "19 computes (2 starting, 1 being suspended) and 2 pooled workers": what holds the memory, for refusals. */
  private describeUse(): string {
    const all = [...this.computes.values()];
    const count = (s: string) => all.filter((c) => c.state === s).length;
    const parts = [`${count('starting')} starting`, `${this.stopping.size} being suspended`];
    if (this.pinned.size > 0) parts.push(`${this.pinned.size} never suspended`);
    return `${all.length} computes (${parts.join(', ')}) and ${this.opts.poolSize} pooled workers`;
  }

  async start(req: StartRequest): Promise<StartAnswer> {
    const engine = req.engine ?? 'pglite';
    if (engine === 'postgres') await this.requirePostgres();
    // the same compute being suspended (for waiting starts, or by the control plane): start it once it stopped
    await this.stopping.get(req.computeId)?.catch(() => undefined);
    this.check(req);
    this.claimed.add(req.computeId);
    try {
      return await this.admitAndStart(req, engine);
    } finally {
      this.claimed.delete(req.computeId);
    }
  }

  private async admitAndStart(req: StartRequest, engine: EngineName): Promise<StartAnswer> {
    const need = this.perComputeBytes(engine);
    const queueMs = await this.admission.reserve(req.computeId, need).catch((e: unknown) => {
      this.metrics.startRefusals.inc({ code: (e as HostError).code ?? 'error' });
      this.opts.log.warn({ computeId: req.computeId, code: (e as HostError).code, waitingStarts: this.admission.waiting }, `start refused: ${(e as Error).message}`);
      throw e;
    });
    if (queueMs > 0) this.metrics.startQueueSeconds.observe(queueMs / 1000);
    const storageUrl = this.storage.urlFor(req.storageUrl);
    let hosted: EngineCompute;
    try {
      this.check(req, true); // again: the host changed while the start waited
      hosted = engine === 'postgres' ? await this.postgresCompute(req, need, storageUrl) : this.pgliteCompute(req, need, storageUrl);
    } catch (e) {
      this.admission.release(need);
      throw e;
    }
    this.computes.set(req.computeId, hosted);
    if (req.evictable === false) this.pinned.add(req.computeId);
    this.updateGauges();
    const t0 = performance.now();
    let checkMs = 0;
    try {
      hosted.config.writerGeneration = await this.checkTimeline(req, storageUrl);
      checkMs = performance.now() - t0;
      await hosted.start();
    } catch (e) {
      this.forget(req.computeId, hosted);
      this.metrics.starts.inc({ outcome: 'error', pooled: String(hosted.pooled) });
      throw this.translate(e);
    }
    this.runningSince.set(req.computeId, Date.now());
    this.metrics.starts.inc({ outcome: 'ok', pooled: String(hosted.pooled) });
    this.metrics.startSeconds.observe({ pooled: String(hosted.pooled) }, hosted.startMs / 1000);
    this.metrics.startPagesFetched.inc(hosted.pagesFetched);
    this.updateGauges();
    const d = hosted.describe();
    this.opts.log.info({ computeId: req.computeId, timelineId: req.timelineId, storageUrl: d.storageUrl, writerGeneration: hosted.config.writerGeneration, engine, port: d.port, startMs: d.startMs, queueMs: round1(queueMs), pooled: d.pooled, pagesFetched: d.pagesFetched }, 'compute started');
    const phases = { queue: round1(queueMs), check: round1(checkMs), ...hosted.startPhases };
    for (const [phase, ms] of Object.entries(phases)) this.metrics.startPhaseSeconds.observe({ engine, phase }, ms / 1000);
    return { computeId: req.computeId, host: d.host, port: d.port, startMs: d.startMs, pagesFetched: d.pagesFetched, pooled: d.pooled, lsn: d.lsn, engine, phases };
  }

  private pgliteCompute(req: StartRequest, need: number, storageUrl: string): HostedCompute {
    return new HostedCompute({
      computeId: req.computeId, timelineId: req.timelineId, lsn: req.lsn, readOnly: req.readOnly ?? false,
      database: req.database ?? 'neondb', username: req.username ?? 'postgres', storageUrl, storageToken: this.opts.storageToken,
      postgresConfig: { shared_buffers: `${Math.max(1, Math.round(this.opts.pgliteSharedBuffersBytes / MiB))}MB`, [TIMELINE_SETTING]: req.timelineId },
      cacheBytes: this.opts.pageCacheBytes, reservedBytes: need,
    }, {
      token: this.opts.token, listenHost: this.opts.listenHost, advertiseHost: this.opts.advertiseHost,
      limits: this.opts.limits, idleInTransactionTimeoutMs: this.opts.idleInTransactionTimeoutMs,
      cancelGraceMs: this.opts.cancelGraceMs, stopTimeoutMs: this.opts.stopTimeoutMs,
      log: this.opts.log, metrics: this.metrics, keys: this.keys, takeWorker: () => this.pool.acquire(),
    });
  }

  private async postgresCompute(req: StartRequest, need: number, storageUrl: string): Promise<PostgresCompute> {
    return new PostgresCompute({
      computeId: req.computeId, timelineId: req.timelineId, lsn: req.lsn, readOnly: req.readOnly ?? false, roles: req.roles ?? [],
      database: req.database ?? 'neondb', cacheBytes: this.opts.pageCacheBytes, sharedBuffersBytes: this.opts.sharedBuffersBytes, reservedBytes: need,
    }, {
      storageUrl, storageToken: this.opts.storageToken, listenHost: this.opts.listenHost, advertiseHost: this.opts.advertiseHost,
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
    return createPostgresTemplate(this.storage.get(), this.opts.log);
  }

  /** Runs the control plane's statements as the compute's superuser. */
  async adminSql(computeId: string, req: AdminSqlRequest): Promise<AdminSqlAnswer> {
    const c = this.computes.get(computeId);
    if (!c) throw new HostError(404, 'compute_not_found', `no compute ${computeId} on this host`);
    return c.adminSql(req).catch((e: unknown) => {
      const err = e as { code?: unknown; message: string };
      // Postgres' own refusal (a SQLSTATE) is the caller's error; anything else is the host's
      if (typeof err.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code)) throw new HostError(400, 'postgres_error', `${err.message} (SQLSTATE ${err.code})`);
      throw e;
    });
  }

  /**
   * The start's one storage-node round trip: a read-write compute takes the timeline (a new writer generation, which
   * every batch of it carries: a compute started earlier elsewhere, on a host that froze, can no longer write);
   * a read-only one only checks it exists. Returns the writer generation (undefined: read-only).
   */
  private async checkTimeline(req: StartRequest, storageUrl: string): Promise<number | undefined> {
    const readOnly = req.readOnly ?? false;
    const storage = this.storage.get(storageUrl);
    const notFound = (e: unknown): never => {
      if (e instanceof StorageNodeError && e.status === 404) throw new HostError(404, 'timeline_not_found', `timeline ${req.timelineId} does not exist on the storage node at ${storageUrl}`);
      throw e;
    };
    // A read-write start at an LSN (which the control plane never asks) is checked before it takes the timeline:
    // a refused start must not fence the timeline's current writer.
    if (readOnly || req.lsn !== undefined) {
      this.checkStartLsn(req, await storage.getTimeline(req.timelineId).catch(notFound));
      if (readOnly) return undefined;
    }
    const { generation, timeline } = await storage.acquireWriter(req.timelineId).catch(notFound);
    this.checkStartLsn(req, timeline);
    return generation;
  }

  private checkStartLsn(req: StartRequest, info: TimelineInfo): void {
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

  /** A clean stop; a second stop of the same compute joins the first. */
  /** `immediate`: no shutdown checkpoint and no waiting (its storage node is gone); it also overtakes a clean stop in progress. */
  stop(computeId: string, opts: { immediate?: boolean } = {}): Promise<StopAnswer> {
    const inFlight = this.stopping.get(computeId);
    const c = this.computes.get(computeId);
    if (inFlight && !(opts.immediate && c)) return inFlight;
    if (!c) return Promise.reject(new HostError(404, 'compute_not_found', `no compute ${computeId} on this host`));
    if (c.state === 'starting') return Promise.reject(new HostError(409, 'compute_starting', `compute ${computeId} is still starting; stop it once the start answered`));
    const p = c.stop(opts).then((r) => {
      this.forget(computeId, c);
      this.opts.log.info({ computeId, clean: r.clean, lsn: r.lsn }, 'compute stopped');
      return { computeId, stopped: true as const, clean: r.clean, lsn: r.lsn };
    }).finally(() => {
      this.stopping.delete(computeId);
      this.reclaimer.settled(computeId);
    });
    this.stopping.set(computeId, p);
    return p;
  }

  /** The compute is gone: its memory goes to the starts waiting for it. */
  private forget(computeId: string, c: EngineCompute): void {
    if (this.computes.get(computeId) === c) this.computes.delete(computeId);
    this.pinned.delete(computeId);
    this.runningSince.delete(computeId);
    this.reclaimer.settled(computeId);
    this.admission.release(c.config.reservedBytes);
    this.updateGauges();
  }

  /** The computes as they are now, without asking any for fresh counters: cheap, for the heartbeat. */
  brief(): ComputeInfo[] {
    return [...this.computes.values()].map((c) => c.describe());
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

  poolStatus(): { size: number; idle: number; waiting: number } {
    return { size: this.pool.size, idle: this.pool.idle, waiting: this.pool.waiting };
  }

  /** Starts waiting for memory. */
  get startsWaiting(): number {
    return this.admission.waiting;
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
    this.admission.close();
    await Promise.all([...this.computes.keys()].map((id) => this.stop(id).catch(() => undefined)));
    for (const s of this.spareFuse.splice(0)) s.kill();
    await this.pool.close();
    this.storage.close();
    // the run directory the host made itself goes with it (rmdir: only when every compute's directory is gone)
    if (this.runDirReady && this.opts.runDir === undefined) await rmdir(await this.runDirReady).catch(() => undefined);
  }
}

const round1 = (ms: number): number => Math.round(ms * 10) / 10;

type StopAnswer = { computeId: string; stopped: true; clean: boolean; lsn: number };
