// The multiplexer running a stateless session's request with the proxy's session reset behind it as one exec
// (compute/host/multiplexer.ts `thenReset`), over an in-process PGlite: the session is judged clean on the reset's
// part of the output alone; the reset of a session alone on the backend runs as DISCARD ALL and the session's
// identity, a ROLLBACK only after an open transaction; group commit holds the merged result until its flush. Apart
// from test/compute-reset-merge.test.ts (the same over the wire): an in-process PGlite and a compute host's workers
// in one process crashed V8 once (a wasm JIT-page check) when both freed their wasm code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGlite } from '@electric-sql/pglite';
import { Multiplexer } from '../compute/host/multiplexer.ts';
import type { Backend, MuxSession } from '../compute/host/multiplexer.ts';
import { STATELESS_CAPTURE_SQL } from '../compute/host/session-state.ts';
import { SESSION_RESET_SQL } from '../lib/compute-startup.ts';
import { decodeUtf8, messagesIn, parse, query, } from '../lib/pg-wire/index.ts';


function muxSession(id: number, statements = new Map<string, Uint8Array>()): MuxSession {
  return { id, user: 'postgres', prefix: `lb${id}_`, statements, stateless: true, terminate: () => {} };
}

/** PGlite as the backend, recording what each exec ran. */
class RecordingBackend implements Backend {
  readonly execs: { sql: string; deferred: boolean }[] = [];
  flushes = 0;
  private gate: (() => void) | null = null;
  private readonly pg: PGlite;
  constructor(pg: PGlite) {
    this.pg = pg;
  }

  exec(bytes: Uint8Array, opts?: { deferFlush?: boolean }): Promise<Uint8Array> {
    this.execs.push({ sql: decodeUtf8(bytes), deferred: opts?.deferFlush === true });
    return this.pg.execProtocolRaw(bytes);
  }

  /** Flushes wait for openFlush() (else they resolve at once). */
  holdFlushes = false;

  flush(): Promise<void> {
    this.flushes++;
    if (!this.holdFlushes) return Promise.resolve();
    return new Promise((resolve) => (this.gate = resolve));
  }

  openFlush(): void {
    this.gate?.();
    this.gate = null;
  }
}

describe('the multiplexer running a batch with the reset behind it', () => {
  let pglite: PGlite;
  beforeAll(async () => {
    pglite = await PGlite.create();
  });
  afterAll(async () => {
    await pglite?.close();
  });

  const setUp = (...sessions: MuxSession[]) => {
    const backend = new RecordingBackend(pglite);
    const mux = new Multiplexer(backend, { idleInTransactionTimeoutMs: 0 });
    for (const s of sessions) mux.attach(s);
    return { backend, mux };
  };

  it('judges the session clean on the reset alone: an error in the request leaves it clean (no capture at the next hand-off)', async () => {
    const [a, b] = [muxSession(1), muxSession(2)];
    const { backend, mux } = setUp(a, b);
    // the SET is committed, then the request fails (in a transaction block, left failed: 'E' before the reset)
    const out = await mux.run(a, query('BEGIN; SET search_path = pg_catalog; COMMIT; BEGIN; SELECT 1/0'), { thenReset: query(SESSION_RESET_SQL) });
    expect(decodeUtf8(out)).toContain('division by zero');
    expect(mux.statusOf(a)).toBe('I');
    expect(mux.inTransaction).toBe(false);
    const n = backend.execs.length;
    const r = await mux.run(b, query("SELECT current_setting('search_path')"));
    expect(decodeUtf8(r)).not.toContain('pg_catalog');
    expect(backend.execs.length - n).toBe(1); // the short hand-off: only b's own batch ran
    mux.close(new Error('done'));
  });

  it('judges it unclean when the reset failed, though the request succeeded (the next hand-off captures)', async () => {
    // another session's named statement: the reset runs as sent (not in its native form)
    const [a, b, c] = [muxSession(1), muxSession(2), muxSession(3, new Map([['s', parse('SELECT 1', 'lb3_s')]]))];
    const { backend, mux } = setUp(a, b, c);
    await mux.run(a, query('SELECT 1'), { thenReset: query('SELECT 1/0') });
    const n = backend.execs.length;
    await mux.run(b, query('SELECT 1'));
    expect(backend.execs.slice(n).some((e) => e.sql.includes(STATELESS_CAPTURE_SQL.slice(0, 60)))).toBe(true);
    mux.close(new Error('done'));
  });

  it('runs the reset of a session alone as DISCARD ALL and its identity, a ROLLBACK only after an open transaction', async () => {
    const [a, b] = [muxSession(1), muxSession(2)];
    const { backend, mux } = setUp(a, b);
    await mux.run(a, query('SELECT 1'), { thenReset: query(SESSION_RESET_SQL) });
    let n = backend.execs.length;
    const out = await mux.run(a, query('SELECT 2'), { thenReset: query(SESSION_RESET_SQL) });
    expect(backend.execs.slice(n).map((e) => e.sql)).toEqual([expect.stringContaining('DISCARD ALL')]);
    expect(backend.execs.at(-1)?.sql).not.toContain('ROLLBACK');
    const types = (o: Uint8Array) => [...messagesIn(o)].map((m) => (m.type === 'Z' ? `Z${String.fromCharCode(m.body[0])}` : m.type));
    expect(types(out)).toEqual(['T', 'D', 'C', 'ZI', 'C', 'C', 'ZI']);
    // the request leaves a transaction open: DISCARD ALL refuses it, the reset runs again after a ROLLBACK
    n = backend.execs.length;
    const open = await mux.run(a, query('BEGIN; CREATE TEMP TABLE t (x int)'), { thenReset: query(SESSION_RESET_SQL) });
    expect(backend.execs.length - n).toBe(2);
    expect(backend.execs.at(-1)?.sql).toMatch(/^.{5}ROLLBACK/s);
    expect(types(open)).toEqual(['C', 'C', 'ZT', 'C', 'C', 'C', 'ZI']);
    expect(mux.statusOf(a)).toBe('I');
    // a reset sent on its own, inside a transaction: the ROLLBACK goes first
    await mux.run(a, query('BEGIN'));
    const alone = await mux.run(a, query(SESSION_RESET_SQL), { resets: true });
    expect(backend.execs.at(-1)?.sql).toMatch(/^.{5}ROLLBACK/s);
    expect(types(alone)).toEqual(['C', 'C', 'C', 'ZI']);
    // all clean: b's turn is the short hand-off
    n = backend.execs.length;
    expect(decodeUtf8(await mux.run(b, query("SELECT to_regclass('pg_temp.t') IS NULL AS gone")))).toContain('gone');
    expect(backend.execs.length - n).toBe(1);
    mux.close(new Error('done'));
  });

  it('runs a full hand-off next when the identity after DISCARD ALL failed (the backend is the superuser then)', async () => {
    await pglite.exec('CREATE ROLE doomed SUPERUSER');
    const a: MuxSession = { ...muxSession(1), user: 'doomed' };
    const b = muxSession(2);
    const { mux } = setUp(a, b);
    await mux.run(a, query('SELECT 1'), { thenReset: query(SESSION_RESET_SQL) });
    const out = await mux.run(a, query('SET SESSION AUTHORIZATION postgres; DROP ROLE doomed'), { thenReset: query(SESSION_RESET_SQL) });
    expect(decodeUtf8(out)).toContain('role "doomed" does not exist');
    expect([...messagesIn(out)].filter((m) => m.type === 'Z')).toHaveLength(2);
    // the session's own next batch does not run as the superuser: its hand-off finds its role gone
    await expect(mux.run(a, query('SELECT current_user'))).rejects.toMatchObject({ name: 'SessionRefused' });
    expect(decodeUtf8(await mux.run(b, query('SELECT 1 AS one')))).toContain('one');
    mux.close(new Error('done'));
  });

  it('runs request and reset in one exec and, deferred for group commit, releases the output only after the flush', async () => {
    const [a, b] = [muxSession(1), muxSession(2)];
    const { backend, mux } = setUp(a, b);
    await mux.run(a, query('SELECT 1'), { thenReset: query(SESSION_RESET_SQL) });
    backend.holdFlushes = true;
    // b's request runs while another batch waits: deferred, it shares the group's flush
    const ra = mux.run(a, query('SELECT 2'), { thenReset: query(SESSION_RESET_SQL) });
    let released = false;
    const rb = mux.run(b, query('SELECT 3'), { thenReset: query(SESSION_RESET_SQL) }).then((out) => {
      released = true;
      return out;
    });
    const rc = mux.run(a, query('SELECT 4'));
    for (let i = 0; i < 1000 && backend.flushes === 0; i++) await new Promise((r) => setTimeout(r, 5));
    const merged = backend.execs.filter((e) => e.sql.includes('SELECT 3'));
    expect(merged).toHaveLength(1);
    expect(merged[0]).toMatchObject({ deferred: true });
    expect(merged[0].sql).toContain('DISCARD ALL');
    expect(released).toBe(false);
    backend.openFlush();
    await Promise.all([ra, rc]);
    const out = await rb;
    expect([...messagesIn(out)].filter((m) => m.type === 'Z')).toHaveLength(2); // both ReadyForQuery messages, one output
    expect(mux.statusOf(b)).toBe('I');
    mux.close(new Error('done'));
  });
});
