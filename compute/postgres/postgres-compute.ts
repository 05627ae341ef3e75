// One compute of the postgres engine: a FUSE server (../fuse/) mounts the timeline at its head (or, read-only, at
// an LSN, with standby.signal so that PostgreSQL runs as a hot standby), then Debian's PostgreSQL 15 runs on it
// under the compute's own uid, listening on its own port for the proxy. A crash of either process (or a failed
// write batch) restarts both on the timeline's durable state: PostgreSQL's crash recovery does the rest.
import { chmod, chown, mkdir, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { Logger } from '../../lib/logger.ts';
import { FuseServer, type SpareFuseServer } from '../fuse/fuse-server.ts';
import type { AdminSqlAnswer, AdminSqlRequest, ComputeInfo, ComputeState, RoleVerifier } from '../host/api-types.ts';
import type { EngineCompute, EngineComputeConfig } from '../host/engine.ts';
import type { HostMetrics } from '../host/metrics.ts';
import type pg from 'pg';
import { type AdminAddress, connectAdmin, readActivity, syncVerifiers, withAdmin } from './admin.ts';
import { runStatements } from '../host/admin-statements.ts';
import { freePort } from './ports.ts';
import { Postmaster } from './postmaster.ts';
import { killUid, pidsOfUid, pssOf } from './process-stats.ts';
import { computeSettings, hbaFile } from './settings.ts';
import type { UidPool } from './uid-pool.ts';

export interface PostgresComputeConfig extends EngineComputeConfig {
  lsn?: number;
  roles: RoleVerifier[];
  /** The endpoint's database: the host's monitoring session opens it, so that clients find its catalogs warm. */
  database: string;
  cacheBytes: number;
  sharedBuffersBytes: number;
}

export interface PostgresComputeDeps {
  /** The storage node serving the timeline (the start's, else the host's own): the FUSE server reads and ships there. */
  storageUrl: string;
  storageToken?: string;
  listenHost: string;
  advertiseHost: string;
  /** The host's directory of compute run directories (mode 0711). */
  runDir: string;
  uids: UidPool;
  guardLibrary(): Promise<string>;
  /** A FUSE server forked ahead of time, if the host has one. */
  takeSpareFuse(): SpareFuseServer | undefined;
  stopTimeoutMs: number;
  readyTimeoutMs: number;
  metrics: HostMetrics;
  log: Logger;
}

/** How often activity (for the suspend loop) and memory are read. */
const SAMPLE_MS = 1000;

/** How often the memory of a compute's processes is read. */
const RSS_SAMPLE_MS = 10_000;

/** Restarts allowed in a minute before a compute that keeps failing is given up. */
const MAX_RESTARTS_PER_MINUTE = 5;

export class PostgresCompute implements EngineCompute {
  readonly engine = 'postgres' as const;
  readonly config: PostgresComputeConfig;
  private readonly deps: PostgresComputeDeps;
  private readonly log: Logger;
  state: ComputeState = 'starting';
  port = 0;
  startMs = 0;
  /** The same phases as step durations (ms each), for the wake's Server-Timing. */
  readonly startPhases: Record<string, number> = {};
  pagesFetched = 0;
  readonly pooled = false;
  restarts = 0;
  failure: string | null = null;
  private readonly createdAt = new Date();
  private uid = 0;
  private dir = '';
  private fuse: FuseServer | null = null;
  private pm: Postmaster | null = null;
  private generation = 0;
  private recentRestarts: number[] = [];
  private rssBytes: number | null = null;
  private rssAt = 0;
  private lastOps = new Map<string, number>();
  /** Milliseconds from the start request to the end of each phase of the last start (logged). */
  private readonly phases: Record<string, number> = {};
  private sampler: NodeJS.Timeout | null = null;
  private sampling: Promise<void> | null = null;
  private activity = { sessions: 0, inTransaction: false, lastActivityAt: Date.now() };
  /** A kept superuser connection for the activity reading (a new one would fork a backend each time). */
  private monitor: pg.Client | null = null;

  constructor(config: PostgresComputeConfig, deps: PostgresComputeDeps) {
    this.config = config;
    this.deps = deps;
    this.log = deps.log.child({ computeId: config.computeId, timelineId: config.timelineId, engine: 'postgres' });
  }

  /** Exists only while a clean stop (a suspend) shuts PostgreSQL down: its sessions' 57P01 then says so. */
  private get suspendMarker(): string {
    return path.join(this.dir, 'suspending');
  }

  private get at(): AdminAddress {
    return { socketDir: path.join(this.dir, 'sock'), port: this.port };
  }

  async start(): Promise<void> {
    const t0 = performance.now();
    let last = 0;
    const mark = (phase: string): void => {
      const at = performance.now() - t0;
      this.phases[phase] = Math.round(at);
      this.startPhases[phase] = Math.round((at - last) * 10) / 10;
      last = at;
    };
    this.uid = await this.deps.uids.take();
    try {
      await this.prepareDir();
      this.port = await freePort(this.deps.listenHost);
      mark('prepared');
      await this.launch(mark);
      // the hint's pages, fetched in bulk at mount, are read by the start too
      this.pagesFetched = (await this.fuse!.stats()).pagesFetched + this.fuse!.startInfo.prefetchPages;
      // the kept monitoring connection does the role check too: one backend start less
      this.monitor = await this.connectMonitor();
      if (!this.config.readOnly) await syncVerifiers(this.monitor, this.config.roles);
      mark('roles');
      // The pages read from the mount on are what the next start prefetches (the FUSE server writes the hint at a
      // clean stop): the window stays open for the first queries too (their catalog and index pages), and closes by
      // itself (compute/fuse/start-pages.ts: 10 s from the mount, or 1,024 pages).
      this.log.info({ phasesMs: this.phases }, 'postgres compute start phases');
    } catch (e) {
      await this.teardown();
      throw e;
    }
    this.startMs = performance.now() - t0;
    this.state = 'running';
    // activity and memory are read in the background, so that a listing (the suspend loop's, every second) is instant
    this.sampler = setInterval(() => void this.sample(), SAMPLE_MS);
    this.sampler.unref();
    void this.sample();
  }

  /** The compute's run directory: the mountpoint, its socket directory and its pg_hba, none readable by others. */
  private async prepareDir(): Promise<void> {
    this.dir = path.join(this.deps.runDir, `${this.config.computeId}-${this.uid}`);
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(path.join(this.dir, 'sock'), { recursive: true, mode: 0o700 });
    await mkdir(path.join(this.dir, 'data'), { mode: 0o700 });
    await chown(this.dir, 0, this.uid);
    await chown(path.join(this.dir, 'sock'), this.uid, this.uid);
    await writeFile(path.join(this.dir, 'pg_hba.conf'), hbaFile(), { mode: 0o640 });
    await chown(path.join(this.dir, 'pg_hba.conf'), 0, this.uid);
    await chmod(this.dir, 0o750);
  }

  /** Mounts the timeline and starts PostgreSQL on it. */
  /**
   * The host's monitoring session, in the endpoint's database: its start reads that database's catalogs (and writes
   * its relcache init file) while the start is still under way, so that the first client's login finds them warm.
   * A database dropped since falls back to `postgres`.
   */
  private async connectMonitor(): Promise<pg.Client> {
    try {
      return await connectAdmin(this.at, this.config.database);
    } catch (e) {
      if ((e as { code?: string }).code !== '3D000') throw e;
      return connectAdmin(this.at, 'postgres');
    }
  }

  private async launch(mark: (phase: string) => void = () => undefined): Promise<void> {
    const gen = ++this.generation;
    const c = this.config;
    const fuse = await FuseServer.start({
      storageUrl: this.deps.storageUrl, storageToken: this.deps.storageToken, timelineId: c.timelineId, lsn: c.readOnly ? c.lsn : undefined,
      readOnly: c.readOnly, writerGeneration: c.readOnly ? undefined : c.writerGeneration, mountpoint: path.join(this.dir, 'data'), uid: this.uid, gid: this.uid, cacheBytes: c.cacheBytes,
      localFiles: c.readOnly ? [{ path: 'standby.signal', data: new Uint8Array(0) }] : [],
    }, this.log, this.deps.takeSpareFuse());
    this.fuse = fuse;
    fuse.onEvent((e) => this.onFuseEvent(gen, e));
    mark('mounted');
    const settings = computeSettings({
      computeId: c.computeId, at: this.at, hbaPath: path.join(this.dir, 'pg_hba.conf'), sharedBuffersBytes: c.sharedBuffersBytes,
      preloadLibraries: ['pg_stat_statements', await this.deps.guardLibrary()], suspendMarker: this.suspendMarker, timelineId: c.timelineId,
    });
    mark('guard');
    this.pm = await Postmaster.start({
      dataDir: path.join(this.dir, 'data'), socketDir: this.at.socketDir, port: this.port, listenHost: this.deps.listenHost,
      uid: this.uid, gid: this.uid, ownsUid: true, settings, readyTimeoutMs: this.deps.readyTimeoutMs, log: this.log,
    });
    mark('postgres_ready');
    this.pm.onExit((info) => {
      if (gen !== this.generation || this.state !== 'running') return;
      this.log.warn({ ...info }, 'postmaster exited; restarting the compute on its timeline');
      this.restart('crash');
    });
  }

  private onFuseEvent(gen: number, e: FuseEventLike): void {
    if (e.type === 'shipped') {
      this.deps.metrics.storageBatches.inc({ engine: 'postgres' });
      this.deps.metrics.storageBatchSeconds.observe({ engine: 'postgres' }, e.ms / 1000);
      return;
    }
    if (gen !== this.generation || this.state === 'stopping' || this.state === 'stopped') return;
    if (e.type === 'fenced') {
      // final: a restart would mount with the same writer generation, or chain on an LSN another writer moved
      // (the shipper's message says "fenced: ..." or "fenced by a newer compute: ...")
      this.fail(e.message.startsWith('fenced') ? e.message : `fenced: ${e.message}`);
    } else if (this.state === 'running') {
      this.log.warn({ event: e.type, message: 'message' in e ? e.message : undefined }, 'FUSE server failed; restarting the compute on its timeline');
      this.restart('crash');
    }
  }

  /** Kills both processes and starts them again on the timeline's durable state; the port stays. */
  private restart(reason: 'crash'): void {
    const now = Date.now();
    this.recentRestarts = this.recentRestarts.filter((t) => now - t < 60_000);
    this.recentRestarts.push(now);
    this.restarts++;
    this.deps.metrics.restarts.inc({ reason });
    this.generation++;
    if (this.recentRestarts.length > MAX_RESTARTS_PER_MINUTE) {
      this.fail(`restarted ${MAX_RESTARTS_PER_MINUTE} times in a minute; last reason: ${reason}`);
      return;
    }
    this.state = 'restarting';
    void this.relaunch();
  }

  private async relaunch(): Promise<void> {
    await this.killProcesses();
    // The storage node may itself be restarting: retry with backoff for about 30 s.
    for (let attempt = 0; this.state === 'restarting'; attempt++) {
      try {
        await this.launch();
        this.state = 'running';
        this.log.info({ restarts: this.restarts }, 'compute restarted');
        return;
      } catch (e) {
        await this.killProcesses();
        if (attempt >= 8) {
          this.fail(`restart failed: ${(e as Error).message}`);
          return;
        }
        this.log.warn({ attempt, err: (e as Error).message }, 'compute restart failed; retrying');
        await new Promise((r) => setTimeout(r, Math.min(8000, 200 * 2 ** attempt)));
      }
    }
  }

  private fail(why: string): void {
    if (this.state === 'failed' || this.state === 'stopped') return;
    this.log.error({ why }, 'compute failed');
    this.state = 'failed';
    this.failure = why;
    this.generation++;
    void this.killProcesses();
  }

  private async killProcesses(): Promise<void> {
    const m = this.monitor;
    this.monitor = null;
    m?.end().catch(() => undefined);
    const pm = this.pm;
    const fuse = this.fuse;
    this.pm = null;
    this.fuse = null;
    // together: a backend blocked in a FUSE request dies at once when the FUSE server is gone
    await Promise.all([pm?.kill(), fuse?.kill()]);
  }

  async stop(opts: { immediate?: boolean } = {}): Promise<{ clean: boolean; lsn: number }> {
    if (this.state === 'stopping' || this.state === 'stopped') return { clean: false, lsn: this.fuse?.lsn ?? 0 };
    const failed = this.state === 'failed' || opts.immediate === true;
    this.state = 'stopping';
    this.generation++;
    let clean = false;
    let lsn = this.fuse?.lsn ?? 0;
    try {
      if (!failed && this.pm) await writeFile(this.suspendMarker, '', { mode: 0o644 });
      if (!failed && this.pm && this.fuse && (await this.pm.stop(this.deps.stopTimeoutMs))) {
        lsn = (await this.fuse.stop()).lsn;
        this.fuse = null;
        clean = true;
      }
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'clean stop failed; killing the compute');
    }
    await this.teardown();
    this.state = 'stopped';
    this.deps.metrics.stops.inc({ outcome: clean ? 'clean' : 'killed' });
    return { clean, lsn };
  }

  private async teardown(): Promise<void> {
    if (this.sampler) clearInterval(this.sampler);
    await this.killProcesses();
    if (this.dir) await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
    if (this.uid) {
      await killUid(this.uid); // nothing of this compute outlives it, whatever failed on the way
      await this.deps.uids.release(this.uid);
    }
  }

  /** The admin role's sessions are not counted as activity (readActivity), so `background` needs nothing more here. */
  async adminSql(req: AdminSqlRequest): Promise<AdminSqlAnswer> {
    if (this.state !== 'running') throw new Error(`compute ${this.config.computeId} is ${this.state}`);
    return { results: await withAdmin(this.at, req.database, (c) => runStatements(c, req.statements)) };
  }

  /** Waits (briefly) for a fresh sample. */
  async refreshStats(timeoutMs = 200): Promise<void> {
    await Promise.race([this.sample(), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  private sample(): Promise<void> {
    this.sampling ??= this.readStats().catch(() => undefined).finally(() => {
      this.sampling = null;
    });
    return this.sampling;
  }

  private async readStats(): Promise<void> {
    const fuse = this.fuse;
    const pm = this.pm;
    if (!fuse || !pm || this.state !== 'running') return;
    await this.readActivity();
    const stats = await fuse.stats().catch(() => null);
    if (stats) {
      for (const [op, n] of Object.entries(stats.ops)) {
        const delta = n - (this.lastOps.get(op) ?? 0);
        if (delta > 0) this.deps.metrics.fuseOps.inc({ op }, delta);
        this.lastOps.set(op, n);
      }
    }
    // memory takes a walk over /proc: less often than activity, which the suspend loop needs every second
    if (Date.now() - this.rssAt >= RSS_SAMPLE_MS) {
      this.rssAt = Date.now();
      this.rssBytes = await pssOf([...(await pidsOfUid(this.uid)), fuse.pid]);
    }
  }

  /** Sessions, open transactions and the last query's end, from pg_stat_activity (the suspend loop reads them). */
  private async readActivity(): Promise<void> {
    try {
      this.monitor ??= await connectAdmin(this.at, 'postgres');
      const a = await readActivity(this.monitor);
      this.activity = { sessions: a.sessions, inTransaction: a.busy, lastActivityAt: a.busy ? Date.now() : Math.max(this.activity.lastActivityAt, a.lastChange) };
    } catch {
      const m = this.monitor;
      this.monitor = null;
      await m?.end().catch(() => undefined);
    }
  }

  describe(): ComputeInfo {
    return {
      computeId: this.config.computeId, state: this.state, engine: 'postgres', host: this.deps.advertiseHost, port: this.port,
      timelineId: this.config.timelineId, storageUrl: this.deps.storageUrl, lsn: this.fuse?.lsn ?? null, readOnly: this.config.readOnly, database: '',
      createdAt: this.createdAt.toISOString(), lastActivityAt: new Date(this.activity.lastActivityAt).toISOString(),
      activeSessions: this.activity.sessions, inTransaction: this.activity.inTransaction,
      waitingBatches: 0, startMs: Math.round(this.startMs * 10) / 10, pagesFetched: this.pagesFetched, pagesFetchedTotal: 0,
      bytesFetchedTotal: 0, dataDirBytes: this.fuse?.startInfo.bytes ?? 0, pooled: false, restarts: this.restarts, failure: this.failure,
      memory: { estimatedBytes: this.rssBytes ?? 0, wasmBytes: 0, pageCacheBytes: 0, reservedBytes: this.config.reservedBytes },
      postmasterPid: this.pm?.pid ?? null, rssBytes: this.rssBytes,
    };
  }
}

type FuseEventLike = { type: 'shipped'; lsn: number; ms: number; bytes: number } | { type: 'fenced' | 'ship_failed'; message: string } | { type: 'exit'; code: number | null; signal: string | null };
