// The compute host's handle on the FUSE server of one compute: Postgres' data directory, served from a
// storage-node timeline (docs/design/postgres-engine.md). The server is a child process (main.ts, forked with an
// IPC channel), so the host never serves or touches the mount itself.
//
//   const fuse = await FuseServer.start({ storageUrl, storageToken, timelineId, readOnly: false,
//     mountpoint: '/run/lakebase/c1/pgdata', uid, gid, cacheBytes: 256 << 20 }, log);
//   ... run postgres as uid/gid with -D fuse.mountpoint ...
//   fuse.startDone();          // ends the recording of the prefetch hint early (else 10 s after the mount)
//   fuse.onEvent((e) => ...)   // 'shipped' {lsn, ms, bytes} | 'fenced' {message} | 'ship_failed' {message}
//                              // | 'exit' {code, signal}
//   await fuse.stop();         // after Postgres stopped: ships what is pending, unmounts, the child exits 0
//   await fuse.kill();         // on failure: SIGKILL the server, then `fusermount -uz` (after killing Postgres'
//                              // whole process group: a backend can hang on a dead mount)
//
// - Durability point = fsync: an fsync/fdatasync/fsyncdir of any file answers once every change made before it
//   is acknowledged by the storage node (one batch in flight; fsyncs during a ship join the next one).
// - After a failed ship every fsync answers EIO, so Postgres PANICs; 'fenced' means the storage node refused the
//   batch's expectedLsn (another writer has the timeline) or its writerGeneration (a newer compute took the
//   timeline: 409 writer_fenced), 'ship_failed' anything else. Restart from the node on ship_failed only.
// - readOnly: changes stay in memory and fsync answers at once; `lsn` mounts the timeline as of that LSN.
// - Isolation: allow_other + default_permissions, root 0700, every node owned by uid/gid: run each compute's
//   Postgres under its own uid. Root still sees everything (the host and this server are the trusted base).
// - Never shipped: postmaster.pid, postmaster.opts and `localFiles` (e.g. standby.signal), nor symlinks.
// - Prefetch hint: a writable mount of a data directory records the pages Postgres reads from its mount until
//   startDone() (or 10 s, or 1,024 pages); a clean stop writes them as `lakebase.prefetch` (a real file of the
//   timeline, visible in the mount) when they differ from the hint the mount started with, and the next start
//   of the timeline or of a branch fetches them in bulk at mount (compute/storage-fs/prefetch.ts).
// - Start errors (not root, no /dev/fuse, no libfuse2/fusermount) reject start() saying what to install or do.
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../lib/logger.ts';
import { parse } from '../../lib/validate.ts';
import { lazyUnmount } from './mount.ts';
import { mountConfigSchema } from './protocol.ts';
import type { FromChild, FuseEvent, MountConfig, StartInfo, ToChild } from './protocol.ts';
import type { FuseStats } from './stats.ts';

export type { FuseEvent, StartInfo } from './protocol.ts';
export type { FuseStats, Histogram } from './stats.ts';

export interface FuseMountOptions {
  storageUrl: string;
  /** The storage node's bearer token; passed to the server by environment. */
  storageToken?: string;
  timelineId: string;
  /** Mount the timeline as of this LSN (read-only mounts only; default: head). */
  lsn?: number;
  /** Changes stay in memory, never shipped; fsync answers 0 at once. */
  readOnly: boolean;
  /** The writer generation the host took the timeline with: every batch carries it (none: none is sent). */
  writerGeneration?: number;
  /** Created if missing; a stale mount there is lazily unmounted first. */
  mountpoint: string;
  /** Owner of every node (the compute's Postgres uid/gid); the root directory is 0700. */
  uid: number;
  gid: number;
  /** Bound of clean cached pages (LRU); pages not yet acknowledged are pinned on top of it. */
  cacheBytes: number;
  /** Files created at mount and never shipped (paths relative to the data directory, e.g. standby.signal). */
  localFiles?: { path: string; data: Uint8Array }[];
}

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 120_000;
const PINO_METHODS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

type Reply = Extract<FromChild, { t: 'ready' | 'start_failed' | 'stopped' | 'stop_failed' | 'stats' }>;

function forkServer(storageToken: string | undefined): ChildProcess {
  const env = { ...process.env };
  delete env.LAKEBASE_STORAGE_TOKEN;
  if (storageToken) env.LAKEBASE_STORAGE_TOKEN = storageToken;
  return fork(MAIN, [], { execPath: process.execPath, execArgv: [], env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'advanced' });
}

/** A forked FUSE server not yet given a mount (FuseServer.spare). */
export class SpareFuseServer {
  readonly child: ChildProcess;
  readonly storageToken: string | undefined;

  constructor(child: ChildProcess, storageToken: string | undefined) {
    this.child = child;
    this.storageToken = storageToken;
    child.on('error', () => undefined);
    child.stdout?.resume();
    child.stderr?.resume();
  }

  get usable(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null && this.child.connected;
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

export class FuseServer {
  readonly pid: number;
  readonly mountpoint: string;
  private info: StartInfo = { lsn: 0, files: 0, bytes: 0, ms: 0, prefetchPages: 0, hintPages: 0, roundTrips: 0 };
  private readonly child: ChildProcess;
  private readonly log: Logger;
  private readonly listeners: ((e: FuseEvent) => void)[] = [];
  private readonly waiters = new Set<(m: Reply | null) => void>();
  private readonly exited: Promise<void>;
  private exitInfo: { code: number | null; signal: string | null } | null = null;
  /** The server unmounted cleanly (stop): kill must not `fusermount -uz` a later mount at the same place. */
  private unmounted = false;
  private lastLsn = 0;
  private statsSeq = 0;
  private stderrTail = '';

  private constructor(child: ChildProcess, config: MountConfig, log: Logger) {
    this.child = child;
    this.pid = child.pid!;
    this.mountpoint = config.mountpoint;
    this.log = log.child({ fusePid: child.pid, mountpoint: config.mountpoint });
    child.on('message', (m: FromChild) => this.onMessage(m));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => this.onOutput('stdout', d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => this.onOutput('stderr', d));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        for (const w of this.waiters) w(null);
        this.emit({ type: 'exit', code, signal });
        resolve();
      });
    });
  }

  /**
   * Forks a FUSE server that waits for its mount: Node's start-up and the server's modules (a few hundred ms) are
   * then off the path of a compute start. Give it to start() with the same storage token; kill() it if unused.
   */
  static spare(storageToken?: string): SpareFuseServer {
    return new SpareFuseServer(forkServer(storageToken), storageToken);
  }

  /** Forks the FUSE server (or takes a spare) and resolves once the mount is live (rejects, with the reason, if it cannot be). */
  static async start(opts: FuseMountOptions, log: Logger, spare?: SpareFuseServer): Promise<FuseServer> {
    const { storageToken, ...rest } = opts;
    const config = parse(mountConfigSchema, rest);
    const taken = spare?.usable && spare.storageToken === storageToken ? spare : undefined;
    if (spare && !taken) spare.kill();
    const child = taken ? taken.child : forkServer(storageToken);
    const server = new FuseServer(child, config, log);
    const reply = await server.request({ t: 'start', config }, (m) => m.t === 'ready' || m.t === 'start_failed', START_TIMEOUT_MS);
    if (reply?.t === 'ready') {
      server.info = reply.info;
      server.lastLsn = reply.info.lsn;
      return server;
    }
    await server.kill();
    const why = reply?.t === 'start_failed' ? reply.message : server.exitReason('did not start');
    throw new Error(`FUSE mount of timeline ${opts.timelineId} at ${opts.mountpoint} failed: ${why}`);
  }

  /** Where the mount started: its LSN, the files and bytes listed, and how long mounting took. */
  get startInfo(): StartInfo {
    return this.info;
  }

  /** The last acknowledged LSN. */
  get lsn(): number {
    return this.lastLsn;
  }

  /** The compute's start is over (Postgres ready, the first queries answered): ends the hint's recording window. */
  startDone(): void {
    if (this.exitInfo || !this.child.connected) return;
    this.child.send({ t: 'start_done' } satisfies ToChild, () => undefined); // a lost message only costs speed
  }

  onEvent(cb: (e: FuseEvent) => void): void {
    this.listeners.push(cb);
  }

  async stats(): Promise<FuseStats> {
    const id = ++this.statsSeq;
    const reply = await this.request({ t: 'stats', id }, (m) => m.t === 'stats' && m.id === id, 30_000);
    if (reply?.t !== 'stats') throw new Error(`FUSE server stats: ${this.exitReason('no answer')}`);
    return reply.stats;
  }

  /** Ships all pending changes (writable mounts), waits for the ack, unmounts; the child exits 0. */
  async stop(): Promise<{ lsn: number }> {
    if (this.exitInfo) throw new Error(`FUSE server cannot stop: ${this.exitReason('exited')}`);
    const reply = await this.request({ t: 'stop' }, (m) => m.t === 'stopped' || m.t === 'stop_failed', STOP_TIMEOUT_MS);
    if (reply?.t !== 'stopped') {
      await this.kill();
      throw new Error(`FUSE server stop failed: ${reply?.t === 'stop_failed' ? reply.message : this.exitReason('no answer')}`);
    }
    this.lastLsn = reply.lsn;
    this.unmounted = true;
    await this.exited;
    return { lsn: reply.lsn };
  }

  /** SIGKILL the server (unshipped changes are lost), then `fusermount -uz` the mountpoint (unless stopped). */
  async kill(): Promise<void> {
    if (!this.exitInfo) this.child.kill('SIGKILL');
    await this.exited;
    if (!this.unmounted) await lazyUnmount(this.mountpoint);
  }

  /** Sends `m` and waits for the first reply `accept`s (null: the child exited or the time ran out). */
  private request(m: ToChild, accept: (r: Reply) => boolean, timeoutMs: number): Promise<Reply | null> {
    if (this.exitInfo) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), timeoutMs);
      const done = (r: Reply | null): void => {
        if (r && !accept(r)) return;
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve(r);
      };
      this.waiters.add(done);
      this.child.send(m, (err) => {
        if (err) done(null);
      });
    });
  }

  private onMessage(m: FromChild): void {
    if (m.t === 'log') {
      this.relayLog(m.line);
    } else if (m.t === 'event') {
      if (m.event.type === 'shipped') this.lastLsn = m.event.lsn;
      this.emit(m.event);
    } else {
      for (const w of [...this.waiters]) w(m);
    }
  }

  private emit(e: FuseEvent): void {
    for (const cb of this.listeners) {
      try {
        cb(e);
      } catch (err) {
        this.log.error({ err: (err as Error).message, event: e.type }, 'FUSE event listener failed');
      }
    }
  }

  /** A pino line of the child, logged by the host's logger at its level. */
  private relayLog(line: string): void {
    try {
      const { level, msg, time: _t, pid: _p, hostname: _h, component: _c, ...rest } = JSON.parse(line) as Record<string, unknown>;
      this.log[PINO_METHODS[level as number] ?? 'info'](rest, String(msg ?? ''));
    } catch {
      this.log.info(line.trim());
    }
  }

  /** Raw output (libfuse and Node write there): logged as warnings, the tail kept for error messages. */
  private onOutput(stream: 'stdout' | 'stderr', text: string): void {
    this.stderrTail = (this.stderrTail + text).slice(-2000);
    for (const line of text.split('\n')) if (line.trim()) this.log.warn({ stream }, line);
  }

  private exitReason(fallback: string): string {
    const tail = this.stderrTail.trim() ? `; output: ${this.stderrTail.trim()}` : '';
    if (!this.exitInfo) return fallback + tail;
    return `the FUSE server exited (code ${this.exitInfo.code}, signal ${this.exitInfo.signal})${tail}`;
  }
}
