// Many client sessions, one Postgres backend (PGlite has exactly one), with PgBouncer's transaction-mode rules:
// a session's batch (its messages up to a Sync or a simple Query) runs alone on the backend; the ReadyForQuery
// status that ends it says whether the session is now inside a transaction ('T', or 'E' for a failed one); if so,
// the session owns the backend and only its batches run until it is idle ('I') again. Other sessions wait in
// FIFO order. So no session ever runs inside another's transaction or sees its uncommitted rows.
//
// Each session's state is its own: a hand-off happens when the backend runs a batch of another session than the
// one that ran last. It saves what the outgoing session left (its settings, SQL prepared statements and temporary
// relations: session-state.ts), puts it away (RESET ALL, DEALLOCATE, temporary relations renamed out of sight),
// and gives the incoming session its own back, its identity always from scratch (SET SESSION AUTHORIZATION <its
// role>: nothing a session did to its identity survives its turn). The same session back to back costs nothing.
// The multiplexer also rolls back the transaction of a session that disconnects inside one, drops a departing
// session's statements and temporary relations (DISCARD ALL when the last session leaves), replays sessions'
// protocol-level prepared statements after the backend was restarted, and ends a session that idles inside a
// transaction while others wait.
//
// Group commit: batches of several sessions that run back to back while others wait are executed with
// deferFlush, and their changes shipped by one flush (one write batch, one acknowledgement); each session's result
// is released only when that flush resolved.
//
// A stateless session's request and the proxy's session reset sent with it can run as one item (`thenReset`): one
// exec of both, one output. It stands for the two items it replaces: the session's state after it is the reset's
// (its status, and `clean` judged on the reset's part of the output alone), and cancel, failure and group commit
// are those of the request's batch. A reset of a session alone on the backend runs as Postgres' DISCARD ALL and
// the session's identity (session-state.ts, nativeResetQueries), several Queries answered as the one the proxy sent.
import { close, concat, query, readInt32, sync } from '../../lib/pg-wire/index.ts';
import type { ErrorFields, TxStatus } from '../../lib/pg-wire/index.ts';
import { dropMessages, errorsIn, lastReadyStatus } from './wire/backend-output.ts';
import {
  bringBackSql, CAPTURE_SQL, dropSql, nativeResetQueries, STATELESS_CAPTURE_SQL, identitySql, parseCapture, putAwaySql, resultsOf, roleSql, settingsSql, SUPERUSER,
} from './session-state.ts';
import type { QueryResult, SavedState, TempRelation } from './session-state.ts';

/** What runs the batches: the compute's PGlite (execProtocolRaw). Rejects when the backend failed. */
export interface Backend {
  /**
   * `deferFlush`: the batch's changes are not shipped after it; its output must not reach the client before a
   * later flush() resolved (group commit).
   */
  exec(bytes: Uint8Array, opts?: { deferFlush?: boolean }): Promise<Uint8Array>;
  /** Ships the changes of the deferred batches as one write batch; resolves once it is acknowledged. */
  flush(): Promise<void>;
}

/** Most client batches that share one write batch (group commit). */
const MAX_GROUP = 32;
/** Most bytes of results held for one group: past it the group ships (each result is bounded on its own too). */
const MAX_GROUP_BYTES = 64 * 1024 * 1024;

/** The multiplexer's view of a client session. */
export interface MuxSession {
  readonly id: number;
  readonly user: string;
  /** Prefix of the session's statement and portal names on the shared backend. */
  readonly prefix: string;
  /** The session's named prepared statements (client name -> renamed Parse message), for replay and clean-up. */
  readonly statements: Map<string, Uint8Array>;
  /**
   * Keeps no state between its batches (the proxy's pooled connection for SQL over HTTP, which resets after each
   * request): a hand-off drops what it left instead of saving it, and skips the costly settings capture.
   */
  readonly stateless?: boolean;
  /** Work nobody asked for (the control plane's lake sync): its batches are not activity, so it keeps no compute awake. */
  background?: boolean;
  /** Ends the session from the server side (sends the error, closes the socket). */
  terminate(err: ErrorFields): void;
}

/** The backend failed or was restarted while a batch ran: the batch's outcome is unknown or undone. */
export class BackendFailure extends Error {
  readonly reason: 'cancel' | 'crash' | 'stopped' | 'fenced';
  constructor(reason: BackendFailure['reason'], message: string) {
    super(message);
    this.name = 'BackendFailure';
    this.reason = reason;
  }
}

export class SessionGone extends Error {
  constructor() {
    super('session closed');
    this.name = 'SessionGone';
  }
}

/** A session-level failure to report before the batch could run (e.g. its role does not exist). */
export class SessionRefused extends Error {
  readonly fields: ErrorFields;
  constructor(fields: ErrorFields) {
    super(fields.message);
    this.name = 'SessionRefused';
    this.fields = fields;
  }
}

interface Item {
  seq: number;
  session: MuxSession;
  bytes: Uint8Array;
  internal: boolean;
  /** Runs as soon as the batch succeeded, before the next batch is picked. */
  after?: () => void;
  /** Internal work that is more than one exec (in place of `bytes`). */
  work?: () => Promise<Uint8Array>;
  /** An internal batch that runs as the session (its identity and settings), as a client batch does. */
  asSession?: boolean;
  /** The batch is the proxy's session reset (SESSION_RESET_SQL) of a stateless session. */
  resets?: boolean;
  /**
   * The session's next batch is already buffered (a stateless session's reset sent with its statement but not
   * taken as `thenReset`, e.g. behind a pipelined batch): the backend stays its own until that batch ran, so no
   * other session's turn falls between a request and its reset.
   */
  holdTurn?: boolean;
  /**
   * The proxy's session reset (a simple Query of SESSION_RESET_SQL, as the session rewrote it), buffered behind
   * this batch of a stateless session: it runs in the same exec, as if it were the next item with `resets`.
   */
  thenReset?: Uint8Array;
  enqueuedAt: number;
  resolve: (out: Uint8Array) => void;
  reject: (e: Error) => void;
}

interface SessionState {
  epoch: number;
  lastActivity: number;
  status: TxStatus;
  /** The session's state while others have the backend (null while it is the resident one, or has none). */
  saved: SavedState | null;
  /** A stateless session whose last batch was the proxy's session reset, without error: it left nothing. */
  clean: boolean;
}

export interface MultiplexerOptions {
  /** A session idle inside a transaction for this long while others wait for the backend is ended (0: never). */
  idleInTransactionTimeoutMs: number;
  onBatch?: (ms: number, waitedMs: number) => void;
  onInternalError?: (what: string, err: unknown) => void;
}

/** Returns a backend of unknown state to neutral: the superuser, no SET ROLE, every setting at its default. */
const NEUTRAL_SQL = `SET SESSION AUTHORIZATION ${SUPERUSER}; RESET ROLE; RESET ALL`;

export class Multiplexer {
  private readonly backend: Backend;
  private readonly opts: MultiplexerOptions;
  private readonly queue: Item[] = [];
  private readonly sessions = new Map<MuxSession, SessionState>();
  private owner: MuxSession | null = null;
  private runningItem: Item | null = null;
  /** The running item's own bytes are on the backend (its hand-off, if any, is done). */
  private clientStatementRunning = false;
  /**
   * Group commit: batches that ran while others waited, with their output, held until one flush ships all their
   * changes in one write batch (each client sees its result only once the batch holding its changes is durable).
   */
  private readonly held: { item: Item; out: Uint8Array; t0: number }[] = [];
  private flushing = false;
  /** Bytes of the results in `held`. */
  private heldBytes = 0;
  private flushNow = false;
  /** The last two distinct sessions whose batch finished, and when (to tell whether others are busy). */
  private lastDone: { s: MuxSession | null; at: number } = { s: null, at: 0 };
  private prevDone: { s: MuxSession | null; at: number } = { s: null, at: 0 };
  /** The session whose state (identity, settings, temporary relations) is live on the backend. */
  private resident: MuxSession | null = null;
  /** Hidden temporary relations of departed sessions, dropped at the next hand-off. */
  private pendingDrops: TempRelation[] = [];
  private epoch = 0;
  private closedWith: Error | null = null;
  private readonly timer: NodeJS.Timeout;
  private lastActivityAt = Date.now();
  private seq = 0;

  constructor(backend: Backend, opts: MultiplexerOptions) {
    this.backend = backend;
    this.opts = opts;
    this.timer = setInterval(() => this.checkIdleOwner(), 1000);
    this.timer.unref();
  }

  attach(s: MuxSession): void {
    this.sessions.set(s, { epoch: this.epoch, lastActivity: Date.now(), status: 'I', saved: null, clean: false });
  }

  /** The session is gone: drop its waiting batches, roll back its transaction, drop its statements and tables. */
  detach(s: MuxSession): void {
    const st = this.sessions.get(s);
    if (!st) return;
    this.sessions.delete(s);
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i].session === s && !this.queue[i].internal) this.queue.splice(i, 1)[0].reject(new SessionGone());
    }
    if (this.closedWith) return;
    const parts: Uint8Array[] = [];
    if (this.owner === s || this.runningItem?.session === s) {
      // ROLLBACK first: a Sync first would commit an unfinished extended-protocol batch (an implicit transaction);
      // a backend skipping to Sync after an error ignores the first ROLLBACK, hence the second one
      parts.push(query('ROLLBACK'), sync(), query('ROLLBACK'));
    }
    // a compute that is stopping ends every session anyway: no clean-up to report
    const failed = (e: unknown): void => {
      if (!(e instanceof BackendFailure && e.reason === 'stopped')) this.opts.onInternalError?.('session clean-up', e);
    };
    if (this.sessions.size === 0) {
      // nobody is left: everything session-level goes (the next session's hand-off restores the identity)
      parts.push(query('DISCARD ALL'));
      const after = (): void => {
        this.resident = null;
        this.pendingDrops = [];
      };
      this.enqueue(s, concat(parts), true, { after }).catch(failed);
      return;
    }
    const work = async (): Promise<Uint8Array> => {
      const out = parts.length > 0 ? await this.backend.exec(concat(parts)) : new Uint8Array(0);
      // still resident: its state is live on the backend; else it was put away (or dropped) at a hand-off
      if (this.resident === s) await this.vacate();
      else if (st.saved && st.saved.epoch === this.epoch) this.pendingDrops.push(...st.saved.temps);
      st.saved = null;
      if (s.statements.size > 0 && st.epoch === this.epoch) {
        await this.backend.exec(concat([...[...s.statements.keys()].map((n) => close('S', s.prefix + n)), sync()]));
      }
      return out;
    };
    this.enqueue(s, new Uint8Array(0), true, { work }).catch(failed);
  }

  /** Runs one client batch; resolves with the backend's messages for it. */
  run(s: MuxSession, bytes: Uint8Array, opts: Pick<Item, 'resets' | 'holdTurn' | 'thenReset'> = {}): Promise<Uint8Array> {
    if (!this.sessions.has(s)) return Promise.reject(new SessionGone());
    return this.enqueue(s, bytes, false, opts);
  }

  /** Puts the session's open transaction into the failed state ('E'), as an error inside it would. */
  failTransaction(s: MuxSession, begin: boolean): Promise<Uint8Array> {
    const sql = `${begin ? 'BEGIN; ' : ''}DO $lakebase$BEGIN RAISE EXCEPTION 'transaction aborted by the compute'; END$lakebase$`;
    // after a restart of the backend nobody is resident: the session's identity and settings come first
    return this.enqueue(s, query(sql), true, { asSession: true });
  }

  /** Removes a session's batch that is still waiting; false when it is running or not queued. */
  dropWaiting(s: MuxSession): boolean {
    const i = this.queue.findIndex((it) => it.session === s && !it.internal);
    if (i < 0) return false;
    this.queue.splice(i, 1)[0].reject(new BackendFailure('cancel', 'canceling statement due to user request'));
    return true;
  }

  /** The sequence number of this session's batch running on the backend now, or 0. */
  runningBatch(s: MuxSession): number {
    // not during the hand-off before it: a cancel must interrupt the client's statement, never the capture
    return this.runningItem?.session === s && !this.runningItem.internal && this.clientStatementRunning ? this.runningItem.seq : 0;
  }

  statusOf(s: MuxSession): TxStatus {
    return this.sessions.get(s)?.status ?? 'I';
  }

  /** The backend was replaced (restarted on its timeline): every session-level thing on it is gone. */
  backendRestarted(): void {
    this.epoch++;
    this.resident = null;
    this.pendingDrops = [];
    this.owner = null;
    for (const st of this.sessions.values()) st.status = 'I';
  }

  /** Rejects everything waiting; later calls fail with `err`. */
  close(err: Error): void {
    this.closedWith = err;
    clearInterval(this.timer);
    for (const it of this.queue.splice(0)) it.reject(err);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  get inTransaction(): boolean {
    return this.owner !== null;
  }

  get waiting(): number {
    return this.queue.length;
  }

  get busy(): boolean {
    return this.runningItem !== null || this.flushing;
  }

  /** Busy with, or holding, a batch some client asked for (background work is not activity). */
  get busyForeground(): boolean {
    return (this.runningItem !== null && !this.runningItem.session.background) || this.queue.some((i) => !i.session.background)
      || this.held.some((h) => !h.item.session.background);
  }

  /** Last time a batch finished (ms since epoch). */
  get lastActivity(): number {
    return this.lastActivityAt;
  }

  /** Counts now as activity (a start that just finished: its idle time begins there, not at its request). */
  touch(): void {
    this.lastActivityAt = Date.now();
  }

  /** Resolves when no batch is running or waiting (for a clean stop). */
  async drained(timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    const idle = (): boolean => !this.runningItem && !this.flushing && this.held.length === 0 && this.queue.length === 0;
    while (!idle() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    return idle();
  }

  private enqueue(s: MuxSession, bytes: Uint8Array, internal: boolean, more: Pick<Item, 'after' | 'work' | 'asSession' | 'resets' | 'holdTurn' | 'thenReset'> = {}): Promise<Uint8Array> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise<Uint8Array>((resolve, reject) => {
      const item: Item = { seq: ++this.seq, session: s, bytes, internal, ...more, enqueuedAt: performance.now(), resolve, reject };
      // a session's own clean-up goes before its later work and, while it owns the backend, before anyone's
      if (internal && this.owner === s) {
        const i = this.queue.findIndex((it) => it.session === s);
        this.queue.splice(Math.max(i, 0), 0, item);
      } else this.queue.push(item);
      this.pump();
    });
  }

  private nextIndex(): number {
    const i = this.owner === null ? 0 : this.queue.findIndex((it) => it.session === this.owner);
    return i < this.queue.length ? i : -1;
  }

  private pump(): void {
    if (this.runningItem || this.flushing) return;
    if (this.flushNow || (this.held.length > 0 && (this.closedWith || this.held.length >= MAX_GROUP || this.heldBytes >= MAX_GROUP_BYTES || this.nextIndex() < 0))) {
      this.flushNow = false;
      this.flushing = true;
      const foreground = this.held.some((h) => !h.item.session.background);
      void this.flushHeld().finally(() => {
        this.flushing = false;
        if (foreground) this.lastActivityAt = Date.now();
        this.pump();
      });
      return;
    }
    const i = this.nextIndex();
    if (i < 0) return;
    const item = this.queue.splice(i, 1)[0];
    this.runningItem = item;
    void this.execute(item).finally(() => {
      this.runningItem = null;
      if (!item.session.background) this.lastActivityAt = Date.now();
      this.pump();
    });
  }

  private async execute(item: Item): Promise<void> {
    const s = item.session;
    const st = this.sessions.get(s);
    const t0 = performance.now();
    let defer = false;
    try {
      // while others wait (or a group is open), the batch's changes wait for the group's one write batch
      defer = !item.internal && (this.held.length > 0 || this.queue.length > 0 || this.othersBusy(s));
      if ((!item.internal || item.asSession) && st) await this.prepareFor(s, st, defer);
      const out = item.work ? await item.work() : await this.runClientBatch(item, st, defer);
      // a session's clean-up (work) leaves nothing open: it ends with its ROLLBACKs, if any
      const status = item.work ? 'I' : lastReadyStatus(out);
      // no ReadyForQuery (a Flush in the middle of an extended-protocol batch): the batch is not over
      if (status === 'I') {
        if (item.holdTurn) this.owner = s;
        else if (this.owner === s) this.owner = null;
      } else this.owner = s;
      if (st) {
        st.status = status ?? st.status;
        st.lastActivity = Date.now();
        st.clean = leftClean(item, out);
      }
      item.after?.();
      this.noteDone(s);
      if (defer) {
        this.held.push({ item, out, t0 });
        this.heldBytes += out.length;
        return;
      }
      if (!item.internal) this.opts.onBatch?.(performance.now() - t0, t0 - item.enqueuedAt);
      item.resolve(out);
    } catch (e) {
      if (this.owner === s) this.owner = null;
      item.reject(e as Error);
      // held batches are settled before anything else runs (a failed backend lost their changes: flush says so),
      // and a failed deferred batch's account with the backend is closed the same way
      this.flushNow = this.held.length > 0 || defer;
    }
  }

  /** Runs a batch's own bytes (after its hand-off): the part a CancelRequest may interrupt. */
  private async execStatement(bytes: Uint8Array, defer: boolean): Promise<Uint8Array> {
    this.clientStatementRunning = true;
    try {
      return await this.backend.exec(bytes, defer ? { deferFlush: true } : undefined);
    } finally {
      this.clientStatementRunning = false;
    }
  }

  /**
   * Runs a client batch, with the reset behind it (`thenReset`) in the same exec. A reset (alone or behind the
   * request) of a session alone on the backend runs in its native form, judged before the request runs: nothing else
   * runs on the backend until the reset did.
   */
  private runClientBatch(item: Item, st: SessionState | undefined, defer: boolean): Promise<Uint8Array> {
    if ((item.resets || item.thenReset) && this.aloneOnBackend(item.session)) return this.runNativeReset(item, st, defer);
    return this.execStatement(item.thenReset ? concat([item.bytes, item.thenReset]) : item.bytes, defer);
  }

  /**
   * The reset as DISCARD ALL and the session's identity (nativeResetQueries), its output made that of the one
   * simple Query the proxy sent: the request's output as it was, then the reset's messages with one ReadyForQuery.
   */
  private async runNativeReset(item: Item, st: SessionState | undefined, defer: boolean): Promise<Uint8Array> {
    const user = item.session.user;
    const bytes = (rollback: boolean): Uint8Array => concat(nativeResetQueries(user, rollback).map((q) => query(q)));
    // a reset alone knows whether the session is in a transaction; one behind a request learns it from the output
    const rollback = item.resets === true && st !== undefined && st.status !== 'I';
    const out = await this.execStatement(item.thenReset ? concat([item.bytes, bytes(rollback)]) : bytes(rollback), defer);
    const [request, first] = item.thenReset ? splitAfterFirstReady(out) : [out.subarray(0, 0), out];
    let reset = first;
    let queries = nativeResetQueries(user, rollback).length;
    const status = lastReadyStatus(reset);
    if (status === 'T' || status === 'E') {
      // the request left a transaction open (rare over HTTP), which DISCARD ALL refused: ROLLBACK, then all again
      reset = await this.execStatement(bytes(true), defer);
      queries = nativeResetQueries(user, true).length;
    }
    const results = resultsOf(reset);
    // DISCARD ALL made the backend the superuser and its identity failed: the next batch, whoever's, starts with a
    // full hand-off (nothing of the session is left to capture)
    if (results.at(-1)?.error && results.length >= 2 && !results.at(-2)?.error) this.resident = null;
    return concat([request, dropMessages(reset, 'Z', queries - 1)]);
  }

  /** No other session has statements or hidden temporary relations on the backend (see nativeResetQueries). */
  private aloneOnBackend(s: MuxSession): boolean {
    if (this.pendingDrops.length > 0) return false;
    for (const [other, st] of this.sessions) {
      if (other !== s && (other.statements.size > 0 || (st.saved?.temps.length ?? 0) > 0)) return false;
    }
    return true;
  }

  private noteDone(s: MuxSession): void {
    const now = performance.now();
    if (this.lastDone.s !== s) this.prevDone = this.lastDone;
    this.lastDone = { s, at: now };
  }

  /**
   * Another session finished a batch within the last 2 ms: its next batch is probably on its way, so this one
   * waits to share its write batch (it ships at once if nothing else is queued when it finishes).
   */
  private othersBusy(s: MuxSession): boolean {
    const since = performance.now() - 2;
    return (this.lastDone.s !== s && this.lastDone.at > since) || (this.prevDone.s !== s && this.prevDone.s !== null && this.prevDone.at > since);
  }

  /** Ships the held batches' changes; their clients get their results once it is acknowledged. */
  private async flushHeld(): Promise<void> {
    const group = this.held.splice(0);
    this.heldBytes = 0;
    try {
      await this.backend.flush();
    } catch (e) {
      const err = e instanceof BackendFailure && e.reason !== 'cancel'
        ? e
        : new BackendFailure('crash', `the write batch holding the statement was not acknowledged: ${(e as Error)?.message ?? e}`);
      for (const h of group) {
        if (this.owner === h.item.session) this.owner = null;
        h.item.reject(err);
      }
      return;
    }
    for (const h of group) {
      this.opts.onBatch?.(performance.now() - h.t0, h.t0 - h.item.enqueuedAt);
      h.item.resolve(h.out);
    }
  }

  /** Before a session's batch: its turn on the backend (a hand-off), and its prepared statements after a restart. */
  private async prepareFor(s: MuxSession, st: SessionState, defer: boolean): Promise<void> {
    if (this.resident !== s && this.owner !== s) await this.handOff(s, st, defer);
    if (st.epoch !== this.epoch) {
      st.epoch = this.epoch;
      if (s.statements.size > 0) await this.backend.exec(concat([...s.statements.values(), sync()]));
    }
  }

  /** Runs simple Queries in one call (one round trip; each its own implicit transaction). */
  private async queries(sqls: string[], defer: boolean): Promise<(QueryResult | undefined)[]> {
    if (sqls.length === 0) return [];
    return resultsOf(await this.backend.exec(concat(sqls.map((q) => query(q))), defer ? { deferFlush: true } : undefined));
  }

  /**
   * Saves and puts away the state of the session that ran last (drops it if that session is gone), and gives `s`
   * its own: settings, temporary relations, identity, SQL prepared statements. One round trip when neither has
   * prepared statements or temporary relations (what the capture finds decides the second).
   */
  private async handOff(s: MuxSession, st: SessionState, defer: boolean): Promise<void> {
    const from = this.resident;
    const fromSt = from ? this.sessions.get(from) : undefined;
    // the proxy's HTTP sessions of one role taking turns: the last one's reset already left the backend as this
    // role with every default, which is all the incoming session needs (it has nothing saved)
    if (from && fromSt?.clean && from.user === s.user && !st.saved && this.pendingDrops.length === 0) {
      this.resident = s;
      return;
    }
    this.resident = null;
    const saved = st.saved;
    st.saved = null;
    // a restarted backend lost temporary relations and prepared statements; settings still come back
    const temps = saved && saved.epoch === this.epoch ? saved.temps : [];
    const prepared = saved && saved.epoch === this.epoch ? saved.prepared : [];
    const settings = saved?.settings.length ? [settingsSql(saved.settings)] : [];
    // the identity from scratch, then the session's SET ROLE (checked by Postgres against that identity)
    const identity = [identitySql(s.user), ...(saved?.role ? [roleSql(saved.role)] : [])];
    let twoSteps = temps.length > 0 || prepared.length > 0 || this.pendingDrops.length > 0;
    // a stateless session whose last batch was its own successful reset left nothing: no capture, only neutral
    const capture = !from || fromSt?.clean ? NEUTRAL_SQL : from.stateless ? STATELESS_CAPTURE_SQL : CAPTURE_SQL;
    const first = [capture, ...(twoSteps ? [] : [...settings, ...identity])];
    const r1 = await this.queries(first, defer);
    let refusal = twoSteps ? undefined : r1[first.length - identity.length]?.error;
    let putAway: string[] = [];
    if (r1[0]?.error) {
      // nothing of the capture happened (one transaction): reset on its own, then settings and identity again
      this.opts.onInternalError?.('session state capture', new Error(r1[0].error.message));
      await this.queries(NEUTRAL_SQL.split('; '), defer);
      twoSteps = true;
    } else if (from && capture !== NEUTRAL_SQL) {
      const captured = parseCapture(r1[0]?.rows ?? []);
      // a session still attached gets its state back on its next turn; a departed or stateless one's is dropped
      const keep = fromSt !== undefined && !from.stateless;
      if (fromSt && keep) fromSt.saved = { settings: captured.settings, role: captured.role, prepared: [...captured.prepared.values()].filter((p) => p !== null), temps: captured.temps, epoch: this.epoch };
      putAway = putAwaySql(captured, keep);
    }
    const fix = [...putAway, ...this.pendingDrops.map((t) => dropSql(t, true)), ...bringBackSql(temps)];
    this.pendingDrops = [];
    if (fix.length > 0 || twoSteps) {
      const second = [
        ...(fix.length > 0 ? [`SET SESSION AUTHORIZATION ${SUPERUSER}; ${fix.join('; ')}`] : []),
        ...(twoSteps ? settings : []), ...identity, ...prepared,
      ];
      const r2 = await this.queries(second, defer);
      refusal = r2[second.length - prepared.length - identity.length]?.error;
      if (fix.length > 0 && r2[0]?.error) refusal = await this.fixOneByOne(fix, s, r2[0].error.message, defer);
    }
    if (refusal) {
      // the backend is left as the superuser: the next batch, whoever's, starts with a full hand-off
      throw new SessionRefused({ severity: 'FATAL', code: refusal.code === '42704' ? '28000' : refusal.code, message: refusal.message });
    }
    this.resident = s;
  }

  /** The put-away failed as a whole (one implicit transaction): each statement on its own, then the identity. */
  private async fixOneByOne(fix: string[], s: MuxSession, why: string, defer: boolean): Promise<QueryResult['error'] | undefined> {
    this.opts.onInternalError?.('session state put-away', new Error(why));
    const r = await this.queries([...fix.map((f) => `SET SESSION AUTHORIZATION ${SUPERUSER}; ${f}`), identitySql(s.user)], defer);
    return r[fix.length]?.error;
  }

  /** The resident session leaves for good: its temporary relations and SQL prepared statements are dropped. */
  private async vacate(): Promise<void> {
    this.resident = null;
    const r = await this.queries([CAPTURE_SQL], false);
    if (r[0]?.error) {
      this.opts.onInternalError?.('session state capture', new Error(r[0].error.message));
      await this.queries(NEUTRAL_SQL.split('; '), false);
      return;
    }
    const drop = putAwaySql(parseCapture(r[0]?.rows ?? []), false);
    const [d] = await this.queries(drop.length > 0 ? [drop.join('; ')] : [], false);
    if (d?.error) this.opts.onInternalError?.('session state clean-up', new Error(d.error.message));
  }

  private checkIdleOwner(): void {
    const limit = this.opts.idleInTransactionTimeoutMs;
    const owner = this.owner;
    if (limit <= 0 || !owner || this.runningItem) return;
    const st = this.sessions.get(owner);
    if (!st || Date.now() - st.lastActivity < limit) return;
    if (!this.queue.some((it) => it.session !== owner)) return;
    owner.terminate({
      severity: 'FATAL', code: '25P03',
      message: 'terminating connection due to idle-in-transaction timeout',
      detail: `The session held the compute's only backend inside a transaction for over ${Math.round(limit / 1000)} s while other sessions waited.`,
    });
  }
}

/**
 * Whether a batch left its (stateless) session clean: it was the proxy's session reset, or ended with it, and that
 * reset's part of the output (after the request's ReadyForQuery) ended idle without an error.
 */
function leftClean(item: Item, out: Uint8Array): boolean {
  const reset = item.thenReset ? splitAfterFirstReady(out)[1] : item.resets ? out : null;
  return reset !== null && lastReadyStatus(reset) === 'I' && errorsIn(reset).length === 0;
}

/** A run of messages cut after its first ReadyForQuery (the rest empty if it has none). */
function splitAfterFirstReady(out: Uint8Array): [Uint8Array, Uint8Array] {
  let off = 0;
  while (off + 5 <= out.length) {
    const len = readInt32(out, off + 1);
    if (len < 4) break; // not a message: lastReadyStatus, run on every output, reports it
    const next = off + 1 + len;
    if (out[off] === 0x5a /* Z */) return [out.subarray(0, next), out.subarray(next)];
    off = next;
  }
  return [out, out.subarray(out.length)];
}
