// One PostgreSQL 15 postmaster: spawned in a process group of its own under the compute's uid, watched until it
// says it accepts connections, stopped with a fast shutdown (SIGINT: the shutdown checkpoint is fsynced, so it
// reaches the storage node) or killed with every process of the compute's uid (a backend of a dead postmaster can
// hang on a lock the dead one held, and backends lead their own process groups, so neither the postmaster's death
// nor a signal to its group is enough).
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from '../../lib/logger.ts';
import { PG_BIN } from './environment.ts';
import { killUid } from './process-stats.ts';

export interface PostmasterOptions {
  dataDir: string;
  /** Unix socket directory (mode 0700, owned by the uid): the host's superuser connections. */
  socketDir: string;
  port: number;
  /** TCP address of the clients' (the proxy's) connections. */
  listenHost: string;
  uid: number;
  gid: number;
  /** `-c name=value` settings. */
  settings: Record<string, string>;
  /** The uid is this postmaster's alone: a kill ends every process of it (backends lead their own groups). */
  ownsUid: boolean;
  /** Time to wait for "ready to accept connections" (crash recovery included). */
  readyTimeoutMs: number;
  log: Logger;
}

/** Lines of the server's log kept to explain a failure. */
const TAIL_LINES = 30;

export class Postmaster {
  readonly pid: number;
  private readonly lines: string[] = [];
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  /** Set while the start waits for the ready line. */
  private watcher: ((line: string) => void) | null = null;

  private readonly opts: PostmasterOptions;

  private constructor(child: ChildProcess, opts: PostmasterOptions) {
    const log = opts.log;
    this.opts = opts;
    this.pid = child.pid ?? 0;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      this.exitInfo = { code, signal };
      resolve({ code, signal });
    }));
    const rl = createInterface({ input: child.stderr! });
    rl.on('line', (line) => {
      this.lines.push(line);
      if (this.lines.length > TAIL_LINES) this.lines.shift();
      this.watcher?.(line);
      if (/\b(PANIC|FATAL):/.test(line) && !/password authentication failed|does not exist|terminating connection/.test(line)) log.warn({ postgres: line }, 'postgres');
      else log.debug({ postgres: line }, 'postgres');
    });
  }

  /** Spawns the postmaster and resolves once it accepts connections (read-only ones for a standby). */
  static async start(opts: PostmasterOptions): Promise<Postmaster> {
    const args = ['-D', opts.dataDir, '-p', String(opts.port), '-k', opts.socketDir, '-c', `listen_addresses=${opts.listenHost}`];
    for (const [k, v] of Object.entries(opts.settings)) args.push('-c', `${k}=${v}`);
    const child = spawn(`${PG_BIN}/postgres`, args, {
      uid: opts.uid, gid: opts.gid, detached: true, stdio: ['ignore', 'ignore', 'pipe'],
      env: { LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', PATH: '/usr/bin:/bin' },
    });
    const pm = new Postmaster(child, opts);
    await pm.waitReady(opts.readyTimeoutMs).catch(async (e: unknown) => {
      await pm.kill();
      throw e;
    });
    return pm;
  }

  private waitReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (e?: Error): void => {
        clearTimeout(timer);
        this.watcher = null;
        if (e) reject(e);
        else resolve();
      };
      const timer = setTimeout(() => done(new Error(`postgres did not accept connections within ${timeoutMs} ms: ${this.tail()}`)), timeoutMs);
      this.watcher = (line) => {
        if (/ready to accept (read-only )?connections/.test(line)) done();
      };
      void this.exited.then(({ code, signal }) => done(new Error(`postgres exited (${signal ?? `code ${code}`}) while starting: ${this.tail()}`)));
    });
  }

  /** The last lines of the server's log, for error messages. */
  tail(): string {
    return this.lines.slice(-8).join(' | ');
  }

  get running(): boolean {
    return this.exitInfo === null;
  }

  onExit(cb: (info: { code: number | null; signal: NodeJS.Signals | null }) => void): void {
    void this.exited.then(cb);
  }

  /** Fast shutdown: active sessions are ended, a shutdown checkpoint is written. False when it did not finish in time. */
  async stop(timeoutMs: number): Promise<boolean> {
    if (!this.running) return this.exitInfo?.code === 0;
    this.signal('SIGINT');
    const r = await Promise.race([this.exited, new Promise<null>((res) => setTimeout(() => res(null), timeoutMs).unref())]);
    if (r === null) {
      await this.kill();
      return false;
    }
    await this.killRest(); // any straggler
    return r.code === 0;
  }

  /** Kills the postmaster and its backends, and waits for the postmaster's exit. */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.killRest();
    if (this.running) await this.exited;
  }

  /**
   * The backends outlive a killed postmaster (one can hang on a lock the dead one held) and each leads its own
   * process group: kill every process of the compute's uid, or (for a shared uid) the postmaster's group.
   */
  private async killRest(): Promise<void> {
    if (this.opts.ownsUid) {
      await killUid(this.opts.uid);
      return;
    }
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // the group is gone already
    }
  }

  private signal(sig: NodeJS.Signals): void {
    try {
      process.kill(this.pid, sig);
    } catch {
      // gone
    }
  }
}
