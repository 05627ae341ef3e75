// One compute as the host runs it: the PGlite worker (compute.ts), the multiplexer that shares its one backend
// between sessions, and its Postgres wire server on its own port. It restarts the worker on its timeline when a
// cancel cannot interrupt a statement or the backend fails, keeping the client connections.
import { COMPUTE_STOPPING_DETAIL } from '../../lib/compute-notices.ts';
import * as net from 'node:net';
import { startCompute } from '../compute.ts';
import type { Compute, ComputeWorker } from '../compute.ts';
import type { Logger } from '../../lib/logger.ts';
import { BackendFailure, Multiplexer } from './multiplexer.ts';
import type { Backend } from './multiplexer.ts';
import { Session } from './wire/session.ts';
import type { SessionContext, SessionLimits } from './wire/session.ts';
import type { ErrorFields } from '../../lib/pg-wire/index.ts';
import type { HostMetrics } from './metrics.ts';
import type { AdminSqlAnswer, AdminSqlRequest, ComputeInfo, ComputeState } from './api-types.ts';
import type { EngineCompute } from './engine.ts';
import pg from 'pg';
import { runStatements } from './admin-statements.ts';
export type { ComputeInfo, ComputeState } from './api-types.ts';


export interface HostedComputeConfig {
  computeId: string;
  timelineId: string;
  lsn?: number;
  readOnly: boolean;
  /** Set by the host once it took the timeline (read-write): every batch carries it, restarts included. */
  writerGeneration?: number;
  database: string;
  username: string;
  /** The storage node serving the timeline (the start's, else the host's own): the worker reads and writes there. */
  storageUrl: string;
  storageToken?: string;
  /** Postgres settings (`-c`), shared_buffers among them. */
  postgresConfig: Record<string, string | number | boolean>;
  /** Bound of the compute's page cache. */
  cacheBytes: number;
  /** Memory this compute holds against the host's budget. */
  reservedBytes: number;
}

/** A wire session's limits, and the most bytes of output a batch keeps (54000 above; 128 MiB by default). */
export type HostLimits = SessionLimits & { maxResultBytes?: number };

export interface HostedComputeDeps {
  token: string;
  listenHost: string;
  advertiseHost: string;
  limits: HostLimits;
  idleInTransactionTimeoutMs: number;
  /** Time a cancel request has to interrupt a statement before the worker is restarted instead. */
  cancelGraceMs: number;
  /** Time a stop waits for a running batch before it kills the worker. */
  stopTimeoutMs: number;
  log: Logger;
  metrics: HostMetrics;
  keys: CancelKeys;
  /** A pre-started worker for a (re)start: the pool's, waited for in line; undefined to spawn one's own. */
  takeWorker(): Promise<ComputeWorker | undefined>;
}

/** Cancel keys (BackendKeyData) of the host's sessions: a CancelRequest may arrive on any compute's port. */
export class CancelKeys {
  private readonly keys = new Map<number, { secret: number; session: Session; compute: HostedCompute }>();

  issue(session: Session, compute: HostedCompute): { pid: number; secret: number } {
    let pid = 0;
    while (pid === 0 || this.keys.has(pid)) pid = 1 + Math.floor(Math.random() * 0x7ffffffe);
    const secret = (Math.random() * 0x100000000) | 0;
    this.keys.set(pid, { secret, session, compute });
    return { pid, secret };
  }

  /** Marks the session with this pid as background work (hosted-compute adminSql). */
  markBackground(pid: number): void {
    const k = this.keys.get(pid);
    if (!k) throw new Error(`no session with pid ${pid} on this host`);
    k.session.background = true;
  }

  release(pid: number): void {
    this.keys.delete(pid);
  }

  cancel(pid: number, secret: number): string {
    const k = this.keys.get(pid);
    if (!k || k.secret !== secret) return 'unknown_key';
    return k.compute.cancel(k.session);
  }
}

const REPORTED = ['server_version', 'server_encoding', 'DateStyle', 'IntervalStyle', 'TimeZone', 'integer_datetimes', 'standard_conforming_strings', 'default_transaction_read_only', 'in_hot_standby', 'scram_iterations', 'search_path'];

/** Restarts allowed in a minute before a compute that keeps failing is given up. */
const MAX_RESTARTS_PER_MINUTE = 5;

export class HostedCompute implements Backend, EngineCompute {
  readonly engine = 'pglite' as const;
  readonly config: HostedComputeConfig;
  private readonly deps: HostedComputeDeps;
  readonly mux: Multiplexer;
  private readonly log: Logger;
  state: ComputeState = 'starting';
  port = 0;
  startMs = 0;
  startPhases: Record<string, number> = {};
  pagesFetched = 0;
  pooled = false;
  readonly createdAt = new Date();
  restarts = 0;
  failure: string | null = null;
  private current: Promise<Compute> | null = null;
  private latest: Compute | null = null;
  /** The worker holding changes of deferred batches not shipped yet (group commit), if any. */
  private unflushed: Compute | null = null;
  private unflushedLost = false;
  private readonly killedFor = new WeakMap<Compute, BackendFailure['reason']>();
  private server: net.Server | null = null;
  private readonly sessions = new Set<Session>();
  private parameters: [string, string][] = [];
  private recentRestarts: number[] = [];
  /** How long the last launch waited for a pooled worker. */
  private workerWaitMs = 0;

  constructor(config: HostedComputeConfig, deps: HostedComputeDeps) {
    this.config = config;
    this.deps = deps;
    this.log = deps.log.child({ computeId: config.computeId, timelineId: config.timelineId });
    this.mux = new Multiplexer(this, {
      idleInTransactionTimeoutMs: deps.idleInTransactionTimeoutMs,
      onBatch: (ms, waitedMs) => {
        deps.metrics.batches.inc();
        deps.metrics.batchSeconds.observe(ms / 1000);
        deps.metrics.queueSeconds.observe(waitedMs / 1000);
      },
      onInternalError: (what, err) => this.log.warn({ err: String(err) }, `${what} failed`),
    });
  }

  /** Starts the compute and its wire server; resolves once it accepts connections. */
  async start(): Promise<void> {
    const t0 = performance.now();
    const compute = await this.launch();
    const launched = performance.now();
    this.current = Promise.resolve(compute);
    this.pagesFetched = compute.counters.start.pagesFetched;
    this.pooled = compute.counters.start.pooled;
    try {
      const r = await compute.query<{ name: string; setting: string }>('SELECT name, setting FROM pg_settings WHERE name = ANY($1)', [REPORTED]);
      this.parameters = r.rows.map((row) => [row.name, row.setting]);
      this.port = await this.listen();
    } catch (e) {
      await compute.kill('start failed');
      throw e;
    }
    this.startMs = performance.now() - t0;
    const s = compute.counters.start;
    // the listing travels while the worker loads and PGlite starts: they overlap, launch is their span
    this.mux.touch();
    this.startPhases = { launch: ms1(launched - t0), 'launch.worker_wait': ms1(this.workerWaitMs), 'launch.listing': ms1(s.bootstrapMs), 'launch.worker_load': ms1(s.workerLoadMs), 'launch.pglite': ms1(s.pgliteStartMs), listen: ms1(performance.now() - launched) };
    this.state = 'running';
  }

  private async launch(): Promise<Compute> {
    const c = this.config;
    const t0 = performance.now();
    const worker = await this.deps.takeWorker();
    this.workerWaitMs = performance.now() - t0;
    const compute = await startCompute({
      storageUrl: c.storageUrl, storageToken: c.storageToken, timelineId: c.timelineId, lsn: c.lsn, readOnly: c.readOnly,
      writerGeneration: c.writerGeneration, database: c.database, username: c.username, cacheBytes: c.cacheBytes, postgresConfig: c.postgresConfig, worker,
      maxResultBytes: this.deps.limits.maxResultBytes,
    });
    this.latest = compute;
    compute.onDeath((e) => {
      // an unexpected death between batches: restart now rather than on the next batch
      if (this.latest === compute && !this.killedFor.has(compute) && this.state === 'running') {
        this.log.warn({ err: e.message }, 'compute worker died');
        this.restart('crash', compute);
      }
    });
    return compute;
  }

  private listen(): Promise<number> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, this.deps.listenHost, () => {
        server.off('error', reject);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  }

  private accept(socket: net.Socket): void {
    const ctx: SessionContext = {
      token: this.deps.token,
      database: this.config.database,
      mux: this.mux,
      limits: this.deps.limits,
      log: this.log,
      refuseLogin: () => this.refuseLogin(),
      parameters: (user, app) => this.sessionParameters(user, app),
      issueKey: (s) => this.deps.keys.issue(s, this),
      releaseKey: (pid) => this.deps.keys.release(pid),
      cancelRequest: (pid, secret) => {
        this.deps.metrics.cancels.inc({ kind: this.deps.keys.cancel(pid, secret) });
      },
      onLogin: (_s, ok) => {
        this.deps.metrics.logins.inc({ outcome: ok ? 'ok' : 'wrong_password' });
        if (ok) this.deps.metrics.sessions.inc();
      },
      onClose: (s) => {
        if (this.sessions.delete(s) && s.pid !== 0) this.deps.metrics.sessions.dec();
      },
    };
    this.sessions.add(new Session(socket, ctx));
  }

  private refuseLogin(): ErrorFields | null {
    if (this.state === 'running' || this.state === 'restarting') return null;
    if (this.state === 'starting') return { severity: 'FATAL', code: '57P03', message: 'the database system is starting up' };
    if (this.state === 'failed') return { severity: 'FATAL', code: '57P03', message: `the compute failed: ${this.failure}` };
    return { severity: 'FATAL', code: '57P01', message: 'terminating connection due to administrator command' };
  }

  private sessionParameters(user: string, applicationName: string): [string, string][] {
    const p = new Map<string, string>(this.parameters);
    p.set('client_encoding', 'UTF8');
    p.set('application_name', applicationName);
    p.set('session_authorization', user);
    p.set('is_superuser', user === 'postgres' ? 'on' : 'off');
    return [...p.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
  }

  // ---- Backend (for the multiplexer) ----------------------------------------------------------------------------

  async exec(bytes: Uint8Array, opts: { deferFlush?: boolean } = {}): Promise<Uint8Array> {
    if (!this.current) throw new BackendFailure('stopped', 'the compute is not running');
    const compute = await this.current;
    if (opts.deferFlush) {
      // a group that started on a worker since replaced lost its first statements' changes
      if (this.unflushed !== null && this.unflushed !== compute) this.unflushedLost = true;
      this.unflushed = compute;
    }
    try {
      return await compute.execProtocolRaw(bytes, opts);
    } catch (e) {
      throw this.failed(compute, e);
    }
  }

  async flush(): Promise<void> {
    // the deferred changes live in the worker that ran them: a replaced worker lost them
    const compute = this.unflushed;
    const lost = this.unflushedLost;
    this.unflushed = null;
    this.unflushedLost = false;
    if (!compute) return;
    if (lost || compute !== this.latest || compute.failure) {
      throw new BackendFailure(this.killedFor.get(compute) === 'stopped' ? 'stopped' : 'crash', 'the compute was restarted before the write batch holding the statement was acknowledged');
    }
    try {
      await compute.flush();
    } catch (e) {
      throw this.failed(compute, e);
    }
  }

  /** Maps a failed call of a worker to the failure the multiplexer reports (restarting or fencing the compute). */
  private failed(compute: Compute, e: unknown): BackendFailure {
    const reason = this.killedFor.get(compute);
    if (reason) return new BackendFailure(reason, reason === 'cancel' ? 'canceling statement due to user request' : (e as Error).message);
    const msg = (e as Error).message;
    // Another writer took the timeline: this compute must never write again. Anything else (the storage
    // node unreachable or restarting) is a crash: restart on the timeline's durable state, which holds every
    // acknowledged commit; the unacknowledged statement fails. A newer compute's takeover (writer_fenced) is
    // final too: a restart would carry the same, refused, writer generation.
    if (/fenced/.test(msg) && /taken over by a newer compute/.test(msg)) {
      this.fail(`fenced by a newer compute: ${msg}`);
      return new BackendFailure('fenced', msg);
    }
    if (/fenced/.test(msg) && /another writer|lsn_mismatch|second writer|expected timeline/.test(msg)) {
      this.fail(`fenced: ${msg}`);
      return new BackendFailure('fenced', msg);
    }
    this.log.warn({ err: msg }, 'backend failed; restarting the compute on its timeline');
    this.restart('crash', compute);
    return new BackendFailure('crash', msg);
  }

  /** Serves a CancelRequest for a session of this compute. */
  cancel(s: Session): string {
    if (this.mux.dropWaiting(s)) return 'dropped';
    const batch = this.mux.runningBatch(s);
    const compute = this.latest;
    if (batch === 0 || !compute) return 'idle';
    compute.cancelRunning();
    const timer = setTimeout(() => {
      // the statement did not reach an interrupt point in time: restart the worker (recovery) under it
      if (this.mux.runningBatch(s) !== batch || this.latest !== compute) return;
      this.log.warn({ session: s.id }, 'cancel did not interrupt the statement; restarting the compute');
      this.deps.metrics.cancels.inc({ kind: 'restart' });
      this.restart('cancel', compute);
    }, this.deps.cancelGraceMs);
    timer.unref();
    return 'interrupt';
  }

  /** Replaces the worker by a new one on the same timeline (Postgres recovery); sessions stay connected. */
  private restart(reason: 'cancel' | 'crash', old: Compute): void {
    if (this.killedFor.has(old) || this.latest !== old || this.state === 'stopping' || this.state === 'stopped') return;
    this.killedFor.set(old, reason);
    const now = Date.now();
    this.recentRestarts = this.recentRestarts.filter((t) => now - t < 60_000);
    this.recentRestarts.push(now);
    this.restarts++;
    this.deps.metrics.restarts.inc({ reason });
    if (this.recentRestarts.length > MAX_RESTARTS_PER_MINUTE) {
      void old.kill(reason);
      this.fail(`restarted ${MAX_RESTARTS_PER_MINUTE} times in a minute; last reason: ${reason}`);
      return;
    }
    this.state = 'restarting';
    const next = (async () => {
      await old.kill(reason);
      // The storage node may itself be restarting: retry the launch with backoff for about 30 s.
      let c: Compute | null = null;
      for (let attempt = 0; c === null; attempt++) {
        try {
          c = await this.launch();
        } catch (e) {
          if (attempt >= 8 || this.state !== 'restarting') throw e;
          this.log.warn({ attempt, err: (e as Error).message }, 'compute restart failed; retrying');
          await new Promise((r) => setTimeout(r, Math.min(8000, 200 * 2 ** attempt)));
        }
      }
      this.mux.backendRestarted();
      if (this.state === 'restarting') this.state = 'running';
      this.log.info({ reason, startMs: c.counters.start.totalMs }, 'compute restarted');
      return c;
    })();
    next.catch((e: unknown) => this.fail(`restart failed: ${(e as Error).message}`));
    this.current = next;
  }

  private fail(why: string): void {
    if (this.state === 'failed' || this.state === 'stopped') return;
    this.log.error({ why }, 'compute failed');
    this.state = 'failed';
    this.failure = why;
    this.mux.close(new BackendFailure('fenced', `the compute failed: ${why}`));
    for (const s of this.sessions) s.terminate({ severity: 'FATAL', code: '57P01', message: `terminating connection: the compute failed (${why})` });
  }

  /**
   * Clean stop: no new sessions or batches, the running batch finishes, sessions get 57P01, PGlite shuts down.
   * `immediate`: nothing waited for (a batch may hang on a storage node that is gone), the worker killed.
   */
  async stop(opts: { immediate?: boolean } = {}): Promise<{ clean: boolean; lsn: number }> {
    if (this.state === 'stopping' || this.state === 'stopped') return { clean: false, lsn: this.latest?.lsn ?? 0 };
    if (opts.immediate) return this.stopNow();
    const failed = this.state === 'failed';
    this.state = 'stopping';
    this.server?.close();
    this.mux.close(new BackendFailure('stopped', 'the compute is stopping'));
    const drained = await this.mux.drained(this.deps.stopTimeoutMs);
    // The detail marks a clean stop (suspend): a proxy keeps an idle client session open across it (proxy/wire/relay.ts).
    for (const s of this.sessions) s.terminate({ severity: 'FATAL', code: '57P01', message: 'terminating connection due to administrator command', detail: COMPUTE_STOPPING_DETAIL });
    let clean = false;
    let compute: Compute | null = null;
    try {
      compute = this.current ? await this.current : null;
    } catch {
      compute = null;
    }
    if (compute) {
      this.killedFor.set(compute, 'stopped');
      if (drained && !failed && !compute.failure) {
        try {
          await compute.stop();
          clean = true;
        } catch (e) {
          this.log.warn({ err: (e as Error).message }, 'clean stop failed; killing the worker');
        }
      }
      if (!clean) await compute.kill('stopped');
    }
    this.state = 'stopped';
    this.current = null;
    this.deps.metrics.stops.inc({ outcome: clean ? 'clean' : 'killed' });
    return { clean, lsn: compute?.lsn ?? 0 };
  }

  /** The immediate stop: sessions ended, the worker (and one still launching) killed, nothing flushed. */
  private async stopNow(): Promise<{ clean: boolean; lsn: number }> {
    this.state = 'stopping';
    this.server?.close();
    this.mux.close(new BackendFailure('stopped', 'the compute is stopping'));
    for (const s of this.sessions) s.terminate({ severity: 'FATAL', code: '57P01', message: 'terminating connection: the compute was moved elsewhere' });
    const pending = this.current;
    this.current = null;
    pending?.then((c) => c.kill('stopped'), () => undefined);
    const lsn = this.latest?.lsn ?? 0;
    if (this.latest) {
      this.killedFor.set(this.latest, 'stopped');
      // the worker ends at once; its storage requests in flight may hang on the node that is gone: not waited for
      const killed = this.latest.kill('stopped');
      await Promise.race([killed, new Promise((r) => setTimeout(r, 1000).unref())]);
    }
    this.state = 'stopped';
    this.deps.metrics.stops.inc({ outcome: 'killed' });
    return { clean: false, lsn };
  }

  /** A fresh memory reading from the worker when it is idle (a busy worker answers after its statement). */
  async refreshStats(timeoutMs = 100): Promise<void> {
    const c = this.latest;
    if (!c || c.failure || this.mux.busy) return;
    await Promise.race([c.stats().catch(() => undefined), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  /** Runs statements as the superuser through the compute's own wire server, as a client would. */
  async adminSql(req: AdminSqlRequest): Promise<AdminSqlAnswer> {
    const client = new pg.Client({ host: this.deps.listenHost, port: this.port, user: 'postgres', password: this.deps.token, database: req.database, connectionTimeoutMillis: 10_000 });
    await client.connect();
    try {
      // found by the pid its BackendKeyData gave: no startup parameter a client could send marks a session background
      if (req.background) this.deps.keys.markBackground((client as unknown as { processID: number }).processID);
      return { results: await runStatements(client, req.statements) };
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  describe(): ComputeInfo {
    const c = this.latest;
    const counters = c?.counters;
    const wasmBytes = counters?.wasmMemoryBytes ?? 0;
    const cacheBytes = (counters?.cachedPages ?? 0) * 8192;
    return {
      computeId: this.config.computeId,
      state: this.state,
      engine: 'pglite',
      host: this.deps.advertiseHost,
      port: this.port,
      timelineId: this.config.timelineId,
      storageUrl: this.config.storageUrl,
      lsn: c?.lsn ?? null,
      readOnly: this.config.readOnly,
      database: this.config.database,
      createdAt: this.createdAt.toISOString(),
      // a batch running or waiting is activity now (the suspend loop and the host's reclaim must not stop it)
      lastActivityAt: new Date(this.mux.busyForeground ? Date.now() : this.mux.lastActivity).toISOString(),
      activeSessions: this.mux.sessionCount,
      inTransaction: this.mux.inTransaction,
      waitingBatches: this.mux.waiting,
      startMs: Math.round(this.startMs * 10) / 10,
      pagesFetched: this.pagesFetched,
      pagesFetchedTotal: counters?.pagesFetched ?? 0,
      bytesFetchedTotal: counters?.bytesFetched ?? 0,
      dataDirBytes: counters?.start.dataDirBytes ?? 0,
      pooled: this.pooled,
      restarts: this.restarts,
      failure: this.failure,
      memory: { estimatedBytes: wasmBytes + cacheBytes, wasmBytes, pageCacheBytes: cacheBytes, reservedBytes: this.config.reservedBytes },
      postmasterPid: null,
      rssBytes: null,
    };
  }
}

const ms1 = (ms: number): number => Math.round(ms * 10) / 10;
