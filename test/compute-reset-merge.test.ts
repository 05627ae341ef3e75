// The proxy's HTTP pool sends each request with the session reset behind it in one write; on the PGlite engine the
// compute host runs the two as one backend exec (compute/host/wire/session.ts, multiplexer.ts `thenReset`). Over
// the wire (real compute host in-process, real PGlite worker, real storage node, the proxy's own compute
// connection): one backend batch per request, nothing of a request reaches the next one of another session, a
// failed request still resets, a reset sent later or behind other messages still works. The reset of a session
// alone on the backend runs as DISCARD ALL and the session's identity (several Queries, answered as one): what each
// request leaves (an open or failed transaction, a WITH HOLD cursor, an advisory lock, currval, SET ROLE) is gone,
// and another session's named statement (then the reset runs as sent) survives. The multiplexer's side of it, over
// an in-process PGlite: test/compute-multiplexer-reset.test.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { startTestStorageNode } from './support/storage-node-in-process.ts';
import type { StorageNode } from '../storage-node/server.ts';
import { StorageClient } from '../storage-node/client.ts';
import { createLogger } from '../lib/logger.ts';
import { createTemplateTimeline } from '../compute/template.ts';
import { startComputeHost } from '../compute/host/server.ts';
import type { RunningHost } from '../compute/host/server.ts';
import { DEFAULT_HOST_OPTIONS } from '../compute/host/host.ts';
import { BackendConnection } from '../proxy/compute/connection.ts';
import { readSimpleResult, runQuery, runSimple } from '../proxy/http/sql-executor.ts';
import { SESSION_RESET_SQL, STATELESS_PARAM } from '../lib/compute-startup.ts';
import { bind, concat, decodeUtf8, describe as describeMsg, execute, parse, query, sync } from '../lib/pg-wire/index.ts';
import { HostApi, connectPg } from './support/compute-host.ts';
import type { StartedCompute } from './support/compute-host.ts';

const TOKEN = 'internal-token-for-reset-merge-tests';
let root: string;
let node: StorageNode;
let host: RunningHost;
let compute: StartedCompute;
const conns: BackendConnection[] = [];
const clients: pg.Client[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'lakebase-reset-merge-'));
  node = await startTestStorageNode(root);
  const template = await createTemplateTimeline({
    storageUrl: node.url, storageToken: node.token,
    setupSql: [
      'CREATE ROLE app LOGIN', 'CREATE ROLE grp', 'GRANT grp TO app', 'GRANT ALL ON SCHEMA public TO app', 'CREATE TABLE kv (k int PRIMARY KEY, v text)',
      'GRANT ALL ON kv TO app', 'CREATE SEQUENCE seq', 'GRANT ALL ON seq TO app',
    ],
  });
  host = await startComputeHost({
    ...DEFAULT_HOST_OPTIONS, limits: { ...DEFAULT_HOST_OPTIONS.limits }, storageUrl: node.url, storageToken: node.token, token: TOKEN,
    advertiseHost: '127.0.0.1', poolSize: 1, log: createLogger('compute-host', 'warn'),
  });
  const timelineId = (await new StorageClient(node.url, node.token).createTimeline({ ancestorTimelineId: template.timelineId })).timelineId;
  compute = await new HostApi(host.url).start({ computeId: 'ep-reset-merge', timelineId });
});

afterAll(async () => {
  for (const c of conns) c.destroy();
  for (const c of clients) await c.end().catch(() => {});
  await host?.close();
  await node?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

/** A connection as the proxy's HTTP pool opens it (stateless). */
async function statelessConn(): Promise<BackendConnection> {
  const conn = await BackendConnection.connect(
    { host: compute.host, port: compute.port, password: TOKEN, engine: 'pglite' as const },
    { user: 'app', database: 'neondb', extra: { client_encoding: 'UTF8', [STATELESS_PARAM]: 'on' } },
  );
  conns.push(conn);
  return conn;
}

const budget = () => ({ remaining: 1e9, max: 1e9 });
const trailer = () => ({ bytes: query(SESSION_RESET_SQL), sent: false });

/** One request as the proxy sends it: the statement, then (same write) the reset; resolves to its JSON text. */
async function request(conn: BackendConnection, sql: string, params: string[] = []): Promise<string> {
  const t = trailer();
  try {
    return await runQuery(conn, { query: sql, params, arrayMode: false }, { rawText: false }, budget(), t);
  } finally {
    expect(t.sent).toBe(true);
    await readSimpleResult(conn); // the reset: throws on its error
    expect(conn.txStatus).toBe('I');
  }
}

const rowsOf = (json: string): unknown[] => (JSON.parse(json) as { rows: unknown[] }).rows;

async function batches(): Promise<number> {
  return (await host.host.metrics.batches.get()).values[0]?.value ?? 0;
}

/** Reads up to `n` ReadyForQuery messages: the types seen ('Z' with its status) and the error codes. */
async function readResults(conn: BackendConnection, n: number): Promise<{ types: string[]; texts: string[] }> {
  const types: string[] = [];
  const texts: string[] = [];
  let left = n;
  await conn.read((m) => {
    types.push(m.type === 'Z' ? `Z${String.fromCharCode(m.body[0])}` : m.type);
    if (m.type === 'D') texts.push(decodeUtf8(m.body.subarray(6)));
    return m.type === 'Z' && --left === 0;
  });
  return { types, texts };
}

const extended = (sql: string): Uint8Array => concat([parse(sql), bind([]), describeMsg('P'), execute(), sync()]);

describe('a stateless session with the reset sent behind each request', () => {
  it('runs each request and its reset as one backend batch', async () => {
    const conn = await statelessConn();
    await request(conn, 'SELECT 1'); // the session's first turn
    const before = await batches();
    for (let i = 1; i <= 20; i++) expect(rowsOf(await request(conn, 'SELECT $1::int AS n', [String(i)]))).toEqual([{ n: i }]);
    expect((await batches()) - before).toBe(20);
  });

  it("leaves nothing of a request (settings, temporary tables, prepared statements) to another session's", async () => {
    const [one, two] = [await statelessConn(), await statelessConn()];
    const check = "SELECT current_setting('search_path') AS sp, current_setting('TimeZone') AS tz, current_user AS u, "
      + "(SELECT count(*)::int FROM pg_prepared_statements) AS prepared, to_regclass('pg_temp.leak') IS NULL AS no_temp";
    const defaults = rowsOf(await request(two, check));
    expect(defaults).toMatchObject([{ u: 'app', prepared: 0, no_temp: true }]);
    for (let i = 0; i < 3; i++) {
      await runSimple(one, "SET search_path = pg_catalog; SET TimeZone = 'Asia/Tokyo'; CREATE TEMP TABLE leak (id int); PREPARE leak_p AS SELECT 1", trailer());
      await readSimpleResult(one);
      await request(one, 'SET search_path = public, pg_catalog');
      expect(rowsOf(await request(two, check))).toEqual(defaults);
      expect(rowsOf(await request(one, check))).toEqual(defaults);
    }
    const tcp = await connectPg(compute, TOKEN, { user: 'app' });
    clients.push(tcp);
    expect((await tcp.query("SELECT current_setting('TimeZone') AS tz, to_regclass('pg_temp.leak') IS NULL AS no_temp")).rows)
      .toEqual([{ tz: (defaults[0] as { tz: string }).tz, no_temp: true }]);
  });

  it('resets after a request that failed, and the session serves the next request', async () => {
    const [one, two] = [await statelessConn(), await statelessConn()];
    await expect(request(one, 'SELECT 1/0')).rejects.toMatchObject({ fields: { C: '22012' } });
    // a failed explicit transaction and an open one: the reset's ROLLBACK ends both
    await expect(runSimple(one, "BEGIN; SET LOCAL TimeZone = 'Asia/Tokyo'; SELECT nope", trailer())).rejects.toMatchObject({ fields: { C: '42703' } });
    await readSimpleResult(one);
    expect(one.txStatus).toBe('I');
    await runSimple(one, "BEGIN; INSERT INTO kv VALUES (1, 'uncommitted')", trailer());
    await readSimpleResult(one);
    expect(rowsOf(await request(two, 'SELECT count(*)::int AS n FROM kv'))).toEqual([{ n: 0 }]);
    expect(rowsOf(await request(one, "INSERT INTO kv VALUES (2, 'x') RETURNING k"))).toEqual([{ k: 2 }]);
    expect(rowsOf(await request(two, 'SELECT k FROM kv ORDER BY k'))).toEqual([{ k: 2 }]);
  });

  it('answers the reset as one Query, and ends a transaction the request left open or failed', async () => {
    const [one, two] = [await statelessConn(), await statelessConn()];
    await request(one, 'SELECT 1');
    for (const [sql, status] of [['BEGIN; SELECT 1', 'ZT'], ['BEGIN; SELECT 1/0', 'ZE'], ['SELECT 1', 'ZI']]) {
      one.write(concat([query(sql), query(SESSION_RESET_SQL)]));
      const { types } = await readResults(one, 2);
      const reset = types.slice(types.indexOf(status) + 1);
      // the reset's part: no error, no notice (no ROLLBACK warning), exactly one ReadyForQuery, idle
      expect(reset.filter((t) => t === 'E' || t === 'N' || t.startsWith('Z'))).toEqual(['ZI']);
      expect(one.txStatus).toBe('I');
    }
    await runSimple(one, "BEGIN; INSERT INTO kv VALUES (7, 'open')", trailer());
    await readSimpleResult(one);
    expect(rowsOf(await request(two, 'SELECT count(*)::int AS n FROM kv WHERE k = 7'))).toEqual([{ n: 0 }]);
    expect(rowsOf(await request(one, 'SELECT count(*)::int AS n FROM kv WHERE k = 7'))).toEqual([{ n: 0 }]);
  });

  it('leaves no cursor WITH HOLD, advisory lock, currval or SET ROLE of a request to the next one', async () => {
    const [one, two] = [await statelessConn(), await statelessConn()];
    await request(one, 'DECLARE held CURSOR WITH HOLD FOR SELECT 1');
    await expect(request(one, 'FETCH held')).rejects.toMatchObject({ fields: { C: '34000' } });
    await request(one, 'SELECT pg_advisory_lock(7)');
    const locks = "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'";
    expect(rowsOf(await request(one, locks))).toEqual([{ n: 0 }]);
    await request(one, "SELECT nextval('seq')");
    await expect(request(one, "SELECT currval('seq')")).rejects.toMatchObject({ fields: { C: '55000' } });
    await request(one, 'SET ROLE grp');
    const who = "SELECT current_user AS u, current_setting('role') AS r";
    expect(rowsOf(await request(one, who))).toEqual([{ u: 'app', r: 'none' }]);
    await request(one, 'SET ROLE grp');
    expect(rowsOf(await request(two, who))).toEqual([{ u: 'app', r: 'none' }]);
  });

  it("keeps another session's named prepared statement (the reset runs as sent), and resets all the same", async () => {
    const one = await statelessConn();
    const tcp = await connectPg(compute, TOKEN, { user: 'app' });
    try {
      const keep = (n: number) => tcp.query({ name: 'keep', text: 'SELECT $1::int AS n', values: [n] });
      expect((await keep(1)).rows).toEqual([{ n: 1 }]);
      await request(one, "SET TimeZone = 'Asia/Tokyo'");
      await request(one, 'CREATE TEMP TABLE leak (id int)');
      await request(one, 'PREPARE mine AS SELECT 1');
      await request(one, "SELECT pg_advisory_lock(8), nextval('seq')");
      await expect(request(one, "SELECT currval('seq')")).rejects.toMatchObject({ fields: { C: '55000' } });
      const check = "SELECT current_setting('TimeZone') <> 'Asia/Tokyo' AS tz, to_regclass('pg_temp.leak') IS NULL AS no_temp, "
        + "(SELECT count(*)::int FROM pg_prepared_statements WHERE from_sql) AS prepared, "
        + "(SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory') AS locks";
      expect(rowsOf(await request(one, check))).toEqual([{ tz: true, no_temp: true, prepared: 0, locks: 0 }]);
      expect((await keep(2)).rows).toEqual([{ n: 2 }]);
    } finally {
      await tcp.end();
    }
  });

  it('runs a reset that arrives in a later write, and one behind another request, as batches of their own', async () => {
    const conn = await statelessConn();
    await request(conn, 'SELECT 1');
    let before = await batches();
    conn.write(extended('SELECT 41 + 1'));
    expect(await readResults(conn, 1)).toMatchObject({ types: ['1', '2', 'T', 'D', 'C', 'ZI'], texts: ['42'] });
    conn.write(query(SESSION_RESET_SQL));
    await readSimpleResult(conn);
    expect((await batches()) - before).toBe(2);
    // two requests pipelined, the reset behind the second: the first runs alone, the second with the reset
    before = await batches();
    conn.write(concat([extended("SET TimeZone = 'Asia/Tokyo'"), extended("SELECT current_setting('TimeZone')"), query(SESSION_RESET_SQL)]));
    const r = await readResults(conn, 3);
    expect(r.texts[0]).toBe('Asia/Tokyo');
    expect(r.types.filter((t) => t.startsWith('Z') || t === 'E')).toEqual(['ZI', 'ZI', 'ZI']);
    expect((await batches()) - before).toBe(2);
    expect(rowsOf(await request(conn, "SELECT current_setting('TimeZone') <> 'Asia/Tokyo' AS reset"))).toEqual([{ reset: true }]);
  });
});
