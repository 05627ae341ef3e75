// Idle compute connections for SQL over HTTP, per (endpoint, database, user). A connection goes back to the
// pool only after Neon's session reset succeeded, so SET, a lone BEGIN, temp tables, prepared statements,
// cursors, advisory locks and LISTENs never reach the next request; anything doubtful is closed instead.
// The reset is DISCARD ALL spelt out (without DISCARD PLANS, which leaves nothing a user can see), so that it can
// follow a ROLLBACK in one simple query, sent in the same write as the request's last statement.
// Concurrent requests each get their own connection. For a `postgres` compute each is the role's own backend
// process, logged in with the request's keys, and their number per endpoint is capped (endpoint-slots.ts).
import { SESSION_RESET_SQL, STATELESS_PARAM } from '../../lib/compute-startup.ts';
import type { ScramKeys } from '../auth/scram.ts';
import type { BackendConnection, StartupParams } from '../compute/connection.ts';
import type { ComputeConnector } from '../compute/connector.ts';
import { query } from '../../lib/pg-wire/index.ts';
import { EndpointSlots } from './endpoint-slots.ts';
import type { RequestTiming } from './server-timing.ts';
import { readSimpleResult, runSimple } from './sql-executor.ts';

export const RESET_SQL = SESSION_RESET_SQL;

/** RESET_SQL as a simple Query message, for sending in the same write as a request's last statement. */
export const RESET_MESSAGE = query(RESET_SQL);

export interface PoolOptions {
  maxIdlePerKey: number;
  idleTimeoutMs: number;
  /** Backends open to one `postgres`-engine endpoint at most (busy or idle); more requests wait their turn. */
  maxPerEndpoint: number;
}

interface Idle {
  conn: BackendConnection;
  since: number;
}

export class BackendPool {
  private readonly idle = new Map<string, Idle[]>();
  /** Connections being reset, and requests waiting for one of them, per key. */
  private readonly resetting = new Map<string, number>();
  private readonly waiters = new Map<string, ((conn: BackendConnection | null) => void)[]>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly connector: ComputeConnector;
  private readonly opts: PoolOptions;
  private readonly slots: EndpointSlots;
  private closed = false;

  constructor(connector: ComputeConnector, opts: PoolOptions) {
    this.connector = connector;
    this.opts = opts;
    this.slots = new EndpointSlots(opts.maxPerEndpoint);
    this.sweeper = setInterval(() => this.sweep(), Math.min(opts.idleTimeoutMs, 30_000));
    this.sweeper.unref();
  }

  /** Pool key; the endpoint is part of it, so one endpoint can never get another's connection. */
  static key(endpointId: string, database: string, user: string): string {
    return `${endpointId}\0${database}\0${user}`;
  }

  /**
   * A connection of the key; `keys` (the role's, not kept) log a new one in to a `postgres` compute. `timing`
   * records a wake and a new connection's login, if the request waits for them.
   */
  async acquire(endpointId: string, database: string, user: string, keys?: ScramKeys, timing?: RequestTiming): Promise<BackendConnection> {
    const key = BackendPool.key(endpointId, database, user);
    const idle = this.takeIdle(key);
    if (idle) return idle;
    // A reset takes a fraction of a millisecond, a new connection several (SCRAM): wait for an unclaimed one.
    const waiting = this.waiters.get(key) ?? [];
    if (waiting.length < (this.resetting.get(key) ?? 0)) {
      const conn = await new Promise<BackendConnection | null>((resolve) => {
        waiting.push(resolve);
        this.waiters.set(key, waiting);
      });
      if (conn) return conn;
    }
    const startup: StartupParams = { user, database, extra: { client_encoding: 'UTF8', [STATELESS_PARAM]: 'on' } };
    // The engine of the endpoint's compute (a cached address after the first request) decides the cap.
    if ((await this.connector.wake(endpointId, timing)).engine !== 'postgres') return this.connector.connect(endpointId, startup, keys, timing);
    return this.openCapped(endpointId, key, startup, keys, timing);
  }

  /** The most recently used idle connection of the key, if any. */
  private takeIdle(key: string): BackendConnection | null {
    const list = this.idle.get(key);
    while (list && list.length > 0) {
      const { conn } = list.pop() as Idle;
      if (!conn.closed) return conn;
    }
    return null;
  }

  /** A new backend within the endpoint's cap, or one of the same key handed over while waiting for a slot. */
  private async openCapped(endpointId: string, key: string, startup: StartupParams, keys: ScramKeys | undefined, timing?: RequestTiming): Promise<BackendConnection> {
    const idle = this.takeIdle(key); // one may have come back while the address was looked up
    if (idle) return idle;
    const handed = await this.slots.take(endpointId, key, () => this.evictIdle(endpointId));
    if (handed) return handed;
    let conn: BackendConnection;
    try {
      conn = await this.connector.connect(endpointId, startup, keys, timing);
    } catch (err) {
      this.slots.free(endpointId);
      throw err;
    }
    conn.socket.once('close', () => this.slots.free(endpointId));
    return conn;
  }

  /**
   * Drops every idle connection of the endpoint: its compute moved (its host was taken out), and a connection to the
   * old one may hang on a frozen machine. Requests in flight on such connections end with their sockets.
   */
  dropEndpoint(endpointId: string): void {
    const prefix = `${endpointId}\0`;
    for (const [key, list] of this.idle) {
      if (!key.startsWith(prefix)) continue;
      for (const i of list) i.conn.destroy();
      this.idle.delete(key);
    }
  }

  /** Closes one idle connection of the endpoint, whose slot then goes to a request of another key. */
  private evictIdle(endpointId: string): void {
    const prefix = `${endpointId}\0`;
    for (const [key, list] of this.idle) {
      if (!key.startsWith(prefix) || list.length === 0) continue;
      (list.shift() as Idle).conn.close();
      if (list.length === 0) this.idle.delete(key);
      return;
    }
  }

  /**
   * Resets the session in the background and keeps the connection if that worked. With `resetSent`, the
   * caller already wrote RESET_MESSAGE after its last statement: only its result is read.
   */
  release(endpointId: string, database: string, user: string, conn: BackendConnection, resetSent = false): void {
    if (conn.closed || this.closed) {
      conn.destroy();
      return;
    }
    const key = BackendPool.key(endpointId, database, user);
    this.resetting.set(key, (this.resetting.get(key) ?? 0) + 1);
    const done = (ok: boolean): void => {
      const n = (this.resetting.get(key) ?? 1) - 1;
      if (n > 0) this.resetting.set(key, n);
      else this.resetting.delete(key);
      const usable = ok && !this.closed && !conn.closed && conn.txStatus === 'I';
      const waiter = this.waiters.get(key)?.shift();
      if (waiter) {
        waiter(usable ? conn : null);
        if (usable) return;
      }
      // Fewer resets in flight than waiters now: the surplus connect on their own.
      const waiting = this.waiters.get(key) ?? [];
      while (waiting.length > (this.resetting.get(key) ?? 0)) (waiting.pop() as (c: null) => void)(null);
      if (!usable) {
        conn.destroy();
        return;
      }
      // Requests over the endpoint's cap: the first in line takes it if of this key, else gets its slot.
      if (this.slots.handOver(endpointId, key, conn)) return;
      if (this.slots.waiting(endpointId)) {
        conn.close();
        return;
      }
      const list = this.idle.get(key) ?? [];
      if (list.length >= this.opts.maxIdlePerKey) {
        conn.close();
        return;
      }
      list.push({ conn, since: Date.now() });
      this.idle.set(key, list);
    };
    (resetSent ? readSimpleResult(conn) : runSimple(conn, RESET_SQL)).then(
      () => done(true),
      () => done(false),
    );
  }

  private sweep(): void {
    const cutoff = Date.now() - this.opts.idleTimeoutMs;
    for (const [key, list] of this.idle) {
      const keep = list.filter((i) => {
        if (i.since >= cutoff && !i.conn.closed) return true;
        i.conn.close();
        return false;
      });
      if (keep.length) this.idle.set(key, keep);
      else this.idle.delete(key);
    }
  }

  /** Idle connection count (for tests and metrics). */
  get idleCount(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const list of this.waiters.values()) for (const w of list) w(null);
    this.waiters.clear();
    this.slots.close();
    for (const list of this.idle.values()) for (const i of list) i.conn.close();
    this.idle.clear();
  }
}
