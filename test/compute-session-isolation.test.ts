// On the PGlite engine a session's identity and state are its own (issue 9, items 3 and 14): sessions share the
// compute's one backend, and every hand-off between them puts the outgoing session's settings, temporary tables
// and SQL prepared statements away and restores the incoming session's, its identity from scratch. Real compute
// host in-process, real PGlite worker, real storage node, `pg` over loopback, and the proxy's SQL over HTTP (its
// pooled compute session) in front of the compute.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import ws from 'ws';
import { startTestStorageNode } from './support/storage-node-in-process.ts';
import type { StorageNode } from '../storage-node/server.ts';
import { StorageClient } from '../storage-node/client.ts';
import { createLogger } from '../lib/logger.ts';
import { createTemplateTimeline } from '../compute/template.ts';
import { startComputeHost } from '../compute/host/server.ts';
import type { RunningHost } from '../compute/host/server.ts';
import { DEFAULT_HOST_OPTIONS } from '../compute/host/host.ts';
import { Pool, neon, neonConfig } from '@neondatabase/serverless';
import { RESET_SQL } from '../proxy/http/connection-pool.ts';
import { BackendConnection } from '../proxy/compute/connection.ts';
import { runSimple } from '../proxy/http/sql-executor.ts';
import { SESSION_RESET_SQL, STATELESS_PARAM } from '../lib/compute-startup.ts';
import { startProxy } from '../proxy/server.ts';
import type { RunningProxy } from '../proxy/server.ts';
import { TestDirectory } from './support/proxy-stack.ts';
import { HostApi, connectPg } from './support/compute-host.ts';
import type { StartedCompute } from './support/compute-host.ts';

const TOKEN = 'internal-token-for-isolation-tests';
let root: string;
let node: StorageNode;
let host: RunningHost;
let compute: StartedCompute;
const clients: pg.Client[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'lakebase-isolation-'));
  node = await startTestStorageNode(root);
  const template = await createTemplateTimeline({
    storageUrl: node.url, storageToken: node.token,
    setupSql: [
      'CREATE ROLE neondb_owner LOGIN', 'GRANT ALL ON SCHEMA public TO neondb_owner',
      'CREATE ROLE low LOGIN', 'GRANT USAGE, CREATE ON SCHEMA public TO low', 'CREATE ROLE helper NOLOGIN', 'GRANT helper TO low',
      'CREATE TABLE owner_only (secret text)', "INSERT INTO owner_only VALUES ('s3cret')", 'CREATE TABLE shared (id int)',
      'GRANT SELECT ON shared TO low, neondb_owner',
    ],
  });
  host = await startComputeHost({
    ...DEFAULT_HOST_OPTIONS, limits: { ...DEFAULT_HOST_OPTIONS.limits }, storageUrl: node.url, storageToken: node.token, token: TOKEN,
    advertiseHost: '127.0.0.1', poolSize: 1, log: createLogger('compute-host', 'warn'),
  });
  const timelineId = (await new StorageClient(node.url, node.token).createTimeline({ ancestorTimelineId: template.timelineId })).timelineId;
  compute = await new HostApi(host.url).start({ computeId: 'ep-isolation', timelineId });
});

afterAll(async () => {
  for (const c of clients) await c.end().catch(() => {});
  await host?.close();
  await node?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function connect(user: string): Promise<pg.Client> {
  const client = await connectPg(compute, TOKEN, { user });
  client.on('error', () => {});
  clients.push(client);
  return client;
}

/** The SQLSTATE a statement fails with ('' when it succeeds). */
async function sqlstate(client: pg.Client, sql: string | pg.QueryConfig): Promise<string> {
  return client.query(sql).then(() => '', (e: { code?: string }) => e.code ?? 'no code');
}

async function who(client: pg.Client): Promise<{ current_user: string; session_user: string }> {
  return (await client.query<{ current_user: string; session_user: string }>('SELECT current_user, session_user')).rows[0];
}

async function show(client: pg.Client): Promise<Record<string, string>> {
  const r = await client.query<{ search_path: string; tz: string; st: string }>(
    "SELECT current_setting('search_path') AS search_path, current_setting('TimeZone') AS tz, current_setting('statement_timeout') AS st");
  return { ...r.rows[0] };
}

describe('identity', () => {
  it('refuses a low role becoming the superuser with 42501, over simple and extended protocol', async () => {
    const low = await connect('low');
    expect(await sqlstate(low, 'SET SESSION AUTHORIZATION postgres')).toBe('42501');
    expect(await sqlstate(low, "SET SESSION AUTHORIZATION 'postgres'")).toBe('42501');
    expect(await sqlstate(low, 'SET session_authorization = postgres')).toBe('42501');
    expect(await sqlstate(low, 'SELECT 1; SET LOCAL SESSION AUTHORIZATION neondb_owner')).toBe('42501');
    expect(await sqlstate(low, { text: 'SET SESSION AUTHORIZATION postgres', name: 'escalate' })).toBe('42501');
    expect(await sqlstate(low, 'SET ROLE postgres')).toBe('42501');
    expect(await sqlstate(low, "SELECT set_config('role', 'postgres', false)")).toBe('42501');
    // its own role is a no-op; RESET and DEFAULT mean "back to the role I logged in as"
    expect(await sqlstate(low, 'SET SESSION AUTHORIZATION low')).toBe('');
    expect(await sqlstate(low, 'RESET SESSION AUTHORIZATION')).toBe('');
    expect(await who(low)).toEqual({ current_user: 'low', session_user: 'low' });
    expect(await sqlstate(low, 'SELECT * FROM owner_only')).toBe('42501');
    // the transaction a refusal happened in is failed, as after any error
    await low.query('BEGIN');
    expect(await sqlstate(low, 'SET SESSION AUTHORIZATION postgres')).toBe('42501');
    expect(await sqlstate(low, 'SELECT 1')).toBe('25P02');
    await low.query('ROLLBACK');
  });

  it('undoes escalations Postgres cannot refuse at the next hand-off: other sessions and roles run as themselves', async () => {
    const attacker = await connect('low');
    const sameRole = await connect('low');
    const owner = await connect('neondb_owner');
    const escalations = [
      "DO $$BEGIN SET SESSION AUTHORIZATION postgres; END$$",
      "SELECT set_config('session_authorization', 'postgres', false)",
      "DO $$BEGIN PERFORM set_config('session_authorization', 'postgres', false); SET ROLE postgres; END$$",
    ];
    for (const sql of escalations) {
      await attacker.query(sql);
      // PGlite cannot stop it within the session's own turn (the trust model in compute/host/README.md)
      expect((await who(attacker)).current_user).toBe('postgres');
      expect(await who(sameRole)).toEqual({ current_user: 'low', session_user: 'low' });
      expect(await sqlstate(sameRole, 'SELECT * FROM owner_only')).toBe('42501');
      expect(await who(owner)).toEqual({ current_user: 'neondb_owner', session_user: 'neondb_owner' });
      expect(await sqlstate(owner, 'SELECT * FROM owner_only')).toBe('42501');
      // the attacker's own next turn starts from its role again
      expect(await who(attacker)).toEqual({ current_user: 'low', session_user: 'low' });
    }
    // what the owner creates is the owner's
    await owner.query('CREATE TABLE made_by_owner (id int)');
    const r = await owner.query<{ o: string }>("SELECT tableowner AS o FROM pg_tables WHERE tablename = 'made_by_owner'");
    expect(r.rows[0].o).toBe('neondb_owner');
  });

  it("keeps a session's SET ROLE (of a role it is a member of) across its turns, and to itself", async () => {
    const low = await connect('low');
    const other = await connect('low');
    await low.query('SET ROLE helper');
    expect(await who(other)).toEqual({ current_user: 'low', session_user: 'low' });
    expect(await who(low)).toEqual({ current_user: 'helper', session_user: 'low' });
    await low.query('RESET ROLE');
    expect(await who(other)).toEqual({ current_user: 'low', session_user: 'low' });
    expect(await who(low)).toEqual({ current_user: 'low', session_user: 'low' });
  });

  it('RESET / DEFAULT return an escalated session to its own role within its turn (a pooled HTTP session reset)', async () => {
    const s = await connect('low');
    await s.query("DO $$BEGIN SET SESSION AUTHORIZATION postgres; END$$");
    await s.query('SET SESSION AUTHORIZATION DEFAULT; RESET ALL');
    expect(await who(s)).toEqual({ current_user: 'low', session_user: 'low' });
    await s.query("SELECT set_config('session_authorization', 'postgres', false)");
    await s.query('RESET SESSION AUTHORIZATION');
    expect(await sqlstate(s, 'SELECT * FROM owner_only')).toBe('42501');
  });
});

describe('session state', () => {
  it('keeps settings, temporary tables and SQL prepared statements to their session', async () => {
    const b = await connect('neondb_owner');
    const defaults = await show(b);
    const a = await connect('neondb_owner');
    await a.query("SET search_path = ''");
    await a.query("SET TIME ZONE 'Asia/Tokyo'");
    await a.query("SET statement_timeout = '7s'");
    await a.query('CREATE TEMP TABLE scratch (id serial PRIMARY KEY, v text); INSERT INTO scratch (v) VALUES (\'mine\')');
    await a.query('SELECT 1; PREPARE pick(int) AS SELECT $1 + 1 AS n; SELECT 2');
    const mine = { search_path: '""', tz: 'Asia/Tokyo', st: '7s' };
    expect(await show(a)).toEqual(mine);

    for (let round = 0; round < 2; round++) {
      expect(await show(b)).toEqual(defaults);
      expect(await sqlstate(b, 'SELECT * FROM scratch')).toBe('42P01');
      expect(await sqlstate(b, 'EXECUTE pick(1)')).toBe('26000');
      expect((await b.query('SELECT count(*)::int AS n FROM public.shared')).rows[0].n).toBe(0);
      // A's state comes back on its turn
      expect(await show(a)).toEqual(mine);
      expect((await a.query<{ v: string }>('SELECT v FROM pg_temp.scratch')).rows).toEqual([{ v: 'mine' }]);
      expect((await a.query<{ n: number }>('EXECUTE pick(41)')).rows).toEqual([{ n: 42 }]);
    }
    // B's own temporary table of the same name and statement of the same name do not meet A's
    await b.query('CREATE TEMP TABLE scratch (other int); PREPARE pick AS SELECT 7 AS n');
    expect((await a.query<{ n: number }>('EXECUTE pick(1)')).rows).toEqual([{ n: 2 }]);
    expect((await b.query<{ n: number }>('EXECUTE pick')).rows).toEqual([{ n: 7 }]);
    expect((await a.query('SELECT v FROM pg_temp.scratch')).rows).toHaveLength(1);
    expect((await b.query('SELECT other FROM scratch')).rows).toHaveLength(0);

    // A leaves: nothing of it remains for anyone (its temporary relations are dropped)
    await a.end();
    const c = await connect('neondb_owner');
    for (const s of [b, c]) {
      expect(await show(s)).toEqual(defaults);
      await s.query('SELECT 1');
    }
    expect(await sqlstate(c, 'SELECT * FROM scratch')).toBe('42P01');
    expect(await sqlstate(c, 'EXECUTE pick(1)')).toBe('26000');
    const left = await b.query<{ relname: string }>(
      "SELECT relname FROM pg_class WHERE relnamespace = pg_my_temp_schema() AND relkind IN ('r', 'S', 'v') ORDER BY relname");
    expect(left.rows.map((r) => r.relname)).toEqual(['scratch']); // B's own
  });

  it("keeps a session's temporary composite types to it (they would shadow type names for everyone)", async () => {
    const a = await connect('neondb_owner');
    const b = await connect('neondb_owner');
    await a.query('CREATE TYPE pg_temp.only_a AS (x int)');
    expect((await a.query("SELECT (ROW(1)::only_a).x AS x")).rows).toEqual([{ x: 1 }]);
    expect(await sqlstate(b, 'SELECT NULL::only_a')).toBe('42704');
    expect((await a.query("SELECT (ROW(2)::only_a).x AS x")).rows).toEqual([{ x: 2 }]);
    await a.end();
    expect(await sqlstate(b, 'SELECT NULL::only_a')).toBe('42704');
    await b.end();
  });

  it('keeps protocol-level named statements working across hand-offs', async () => {
    const a = await connect('low');
    const b = await connect('low');
    const q = { name: 'same-name', text: 'SELECT $1::int * 2 AS n' };
    for (let i = 1; i <= 3; i++) {
      expect((await a.query<{ n: number }>({ ...q, values: [i] })).rows[0].n).toBe(i * 2);
      expect((await b.query<{ n: number }>({ ...q, values: [i * 10] })).rows[0].n).toBe(i * 20);
    }
  });

  it("scopes DEALLOCATE ALL, DISCARD TEMP and DISCARD ALL (the proxy's session reset among them) to the session", async () => {
    const a = await connect('low');
    const named = { name: 'kept', text: 'SELECT $1::int AS n' };
    await a.query('CREATE TEMP TABLE a_tmp (id int); PREPARE a_stmt AS SELECT 1 AS n');
    await a.query({ ...named, values: [1] });
    for (const reset of [RESET_SQL, 'DISCARD ALL', 'DEALLOCATE PREPARE ALL; DISCARD TEMPORARY']) {
      const b = await connect('low');
      await b.query('CREATE TEMP TABLE b_tmp (id int); PREPARE b_stmt AS SELECT 2');
      await b.query({ ...named, values: [2] });
      await b.query(reset);
      expect(await sqlstate(b, 'SELECT * FROM b_tmp')).toBe('42P01');
      expect(await sqlstate(b, 'EXECUTE b_stmt')).toBe('26000');
      expect(await who(b)).toEqual({ current_user: 'low', session_user: 'low' });
      // B's protocol-level statement went with DEALLOCATE ALL, as in Postgres (node-postgres does not know)
      expect(await sqlstate(b, { ...named, values: [3] })).toBe('26000');
      expect((await a.query('SELECT * FROM a_tmp')).rows).toEqual([]);
      expect((await a.query('EXECUTE a_stmt')).rows).toEqual([{ n: 1 }]);
      expect((await a.query({ ...named, values: [4] })).rows).toEqual([{ n: 4 }]);
      await b.end();
    }
  });

  it('measures the cost of a hand-off (two sessions alternating vs one session)', async () => {
    const a = await connect('neondb_owner');
    const b = await connect('low');
    const n = 200;
    const time = async (pick: (i: number) => pg.Client): Promise<number> => {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await pick(i).query('SELECT 1');
      return ((performance.now() - t0) * 1000) / n;
    };
    await time(() => a);
    const one = await time(() => a);
    const alternating = await time((i) => (i % 2 === 0 ? a : b));
    await a.query("SET search_path = public; SET TIME ZONE 'UTC'; CREATE TEMP TABLE t1 (id int); PREPARE p1 AS SELECT 1");
    const withState = await time((i) => (i % 2 === 0 ? a : b));
    console.log(`hand-off cost: one session ${one.toFixed(0)} µs/SELECT 1, alternating ${alternating.toFixed(0)} µs (+${(alternating - one).toFixed(0)} per hand-off), `
      + `alternating with one session holding settings + a temp table + a prepared statement ${withState.toFixed(0)} µs (+${(withState - one).toFixed(0)})`);
    expect((await a.query('EXECUTE p1')).rows).toEqual([{ '?column?': 1 }]);
    expect(await sqlstate(b, 'SELECT * FROM t1')).toBe('42P01');
  });
});

describe('a stateless session (the proxy HTTP pool\'s compute connection)', () => {
  it('leaves nothing behind at a hand-off: its settings, temporary tables and prepared statements are dropped, not kept', async () => {
    const defaults = await show(await connect('neondb_owner'));
    const conn = await BackendConnection.connect(
      { host: compute.host, port: compute.port, password: TOKEN, engine: 'pglite' as const },
      { user: 'neondb_owner', database: 'neondb', extra: { client_encoding: 'UTF8', [STATELESS_PARAM]: 'on' } },
    );
    const tcp = await connect('neondb_owner');
    const hidden = "SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'lb_hidden_%'";
    const hiddenBefore = (await tcp.query(hidden)).rows;
    try {
      await runSimple(conn, "CREATE TEMP TABLE from_http (id int); SELECT set_config('search_path', '', false); PREPARE from_http_p AS SELECT 1");
      expect(await show(tcp)).toEqual(defaults);
      expect(await sqlstate(tcp, 'SELECT * FROM from_http')).toBe('42P01');
      expect(await sqlstate(tcp, 'EXECUTE from_http_p')).toBe('26000');
      // dropped rather than hidden: nothing of the stateless session is left on the backend
      expect((await tcp.query(hidden)).rows).toEqual(hiddenBefore);
      await expect(runSimple(conn, 'EXECUTE from_http_p')).rejects.toMatchObject({ fields: { C: '26000' } });
      // the proxy's reset as its last batch: the next hand-off takes the short way (no capture) and still leaks nothing
      await runSimple(conn, "CREATE TEMP TABLE from_http2 (id int); SELECT set_config('TimeZone', 'Asia/Tokyo', false); PREPARE from_http_q AS SELECT 2");
      await runSimple(conn, SESSION_RESET_SQL);
      expect(await show(tcp)).toEqual(defaults);
      expect(await sqlstate(tcp, 'SELECT * FROM from_http2')).toBe('42P01');
      expect(await sqlstate(tcp, 'EXECUTE from_http_q')).toBe('26000');
      expect((await tcp.query(hidden)).rows).toEqual(hiddenBefore);
    } finally {
      conn.destroy();
    }
  });

  it("a stateless session's reset never touches another session's temporary tables or named statements", async () => {
    const a = await connect('neondb_owner');
    await a.query('CREATE TEMP TABLE kept_tmp (id int); INSERT INTO kept_tmp VALUES (7)');
    const named = { name: 'kept_named', text: 'SELECT $1::int AS n' };
    expect((await a.query({ ...named, values: [1] })).rows).toEqual([{ n: 1 }]);
    const conn = await BackendConnection.connect(
      { host: compute.host, port: compute.port, password: TOKEN, engine: 'pglite' as const },
      { user: 'neondb_owner', database: 'neondb', extra: { client_encoding: 'UTF8', [STATELESS_PARAM]: 'on' } },
    );
    try {
      await runSimple(conn, 'CREATE TEMP TABLE gone_tmp (id int)');
      await runSimple(conn, SESSION_RESET_SQL);
    } finally {
      conn.destroy();
    }
    expect((await a.query('SELECT id FROM kept_tmp')).rows).toEqual([{ id: 7 }]);
    expect((await a.query({ ...named, values: [2] })).rows).toEqual([{ n: 2 }]);
    expect(await sqlstate(a, 'SELECT * FROM gone_tmp')).toBe('42P01');
    await a.end();
  });

  it('two stateless sessions of one role taking turns: an escalation and settings undone by the reset stay undone', async () => {
    const open = () => BackendConnection.connect(
      { host: compute.host, port: compute.port, password: TOKEN, engine: 'pglite' as const },
      { user: 'low', database: 'neondb', extra: { client_encoding: 'UTF8', [STATELESS_PARAM]: 'on' } },
    );
    const [one, two] = [await open(), await open()];
    try {
      for (let i = 0; i < 2; i++) {
        await runSimple(one, "DO $$BEGIN SET SESSION AUTHORIZATION postgres; END$$; SELECT set_config('search_path', '', false)");
        await runSimple(one, SESSION_RESET_SQL);
        await expect(runSimple(two, 'SELECT * FROM owner_only')).rejects.toMatchObject({ fields: { C: '42501' } });
        await runSimple(two, 'SELECT * FROM shared'); // unqualified: the default search_path is back
        await runSimple(two, SESSION_RESET_SQL);
      }
    } finally {
      one.destroy();
      two.destroy();
    }
  });
});

describe('SQL over HTTP through the proxy (its pooled compute session)', () => {
  const ENDPOINT = 'ep-isolation-123456';
  let proxy: RunningProxy;

  beforeAll(async () => {
    const directory = new TestDirectory();
    directory.addEndpoint(ENDPOINT, { host: compute.host, port: compute.port, password: TOKEN, engine: 'pglite' as const });
    await directory.setRole(ENDPOINT, 'low', 'low-password');
    await directory.setRole(ENDPOINT, 'neondb_owner', 'owner-password');
    proxy = await startProxy({ directory, baseDomains: ['lakebase.local'], logger: createLogger('proxy', 'warn') });
    neonConfig.fetchEndpoint = () => `http://127.0.0.1:${proxy.httpPort}/sql`;
  });

  afterAll(async () => {
    await proxy?.close();
  });

  const http = (user: string, password: string) => neon(`postgresql://${user}:${password}@${ENDPOINT}.lakebase.local/neondb`);
  const httpCode = (p: Promise<unknown>): Promise<string> => p.then(() => '', (e: { code?: string }) => e.code ?? 'no code');

  it("an escalation in one request never reaches the role's next request nor the owner's", async () => {
    const low = http('low', 'low-password');
    const owner = http('neondb_owner', 'owner-password');
    for (let i = 0; i < 2; i++) {
      await low`DO $$BEGIN SET SESSION AUTHORIZATION postgres; END$$`;
      expect(await low`SELECT current_user, session_user`).toEqual([{ current_user: 'low', session_user: 'low' }]);
      expect(await httpCode(low`SELECT * FROM owner_only`)).toBe('42501');
      await low`SELECT set_config('session_authorization', 'postgres', false)`;
      expect(await owner`SELECT current_user, session_user`).toEqual([{ current_user: 'neondb_owner', session_user: 'neondb_owner' }]);
      expect(await httpCode(owner`SELECT * FROM owner_only`)).toBe('42501');
    }
    expect(await httpCode(low`SET SESSION AUTHORIZATION postgres`)).toBe('42501');
  });

  it('a failed pg_dump leaves nothing behind: later TCP, WebSocket and HTTP sessions see the defaults', async () => {
    const defaults = await show(await connect('neondb_owner'));
    // Debian's pg_dump 15 sets search_path to '' on connecting, then refuses PGlite's server version
    const env = { ...process.env, PGPASSWORD: 'owner-password', PGOPTIONS: `endpoint=${ENDPOINT}`, PGCONNECT_TIMEOUT: '10' };
    const args = ['-h', '127.0.0.1', '-p', String(proxy.tcpPort), '-U', 'neondb_owner', '-d', 'neondb', '--schema-only'];
    const failure = await promisify(execFile)('pg_dump', args, { env }).then(() => null, (e: { stderr?: string }) => e);
    expect(failure?.stderr).toMatch(/server version mismatch/);
    const tcp = new pg.Client({ host: '127.0.0.1', port: proxy.tcpPort as number, user: 'neondb_owner', password: 'owner-password', database: 'neondb', options: `endpoint=${ENDPOINT}` });
    await tcp.connect();
    try {
      expect(await show(tcp)).toEqual(defaults);
    } finally {
      await tcp.end();
    }
    neonConfig.webSocketConstructor = ws;
    neonConfig.wsProxy = (host, port) => `127.0.0.1:${proxy.httpPort}/v2?address=${host}:${port}`;
    neonConfig.useSecureWebSocket = false;
    const pool = new Pool({ connectionString: `postgresql://neondb_owner:owner-password@${ENDPOINT}.lakebase.local/neondb` });
    try {
      const r = await pool.query<{ search_path: string; tz: string; st: string }>(
        "SELECT current_setting('search_path') AS search_path, current_setting('TimeZone') AS tz, current_setting('statement_timeout') AS st");
      expect({ ...r.rows[0] }).toEqual(defaults);
    } finally {
      await pool.end();
    }
    const [row] = await http('neondb_owner', 'owner-password')`SELECT current_setting('search_path') AS search_path, current_setting('TimeZone') AS tz, current_setting('statement_timeout') AS st`;
    expect(row).toEqual(defaults);
  });

  it("a TCP session's settings and temporary table are not seen by HTTP requests", async () => {
    const defaults = await show(await connect('neondb_owner'));
    const tcp = await connect('neondb_owner');
    await tcp.query("SET search_path = ''; SET TIME ZONE 'Asia/Tokyo'; SET statement_timeout = '3s'; CREATE TEMP TABLE only_tcp (id int)");
    const owner = http('neondb_owner', 'owner-password');
    const [row] = await owner`SELECT current_setting('search_path') AS search_path, current_setting('TimeZone') AS tz, current_setting('statement_timeout') AS st`;
    expect(row).toEqual(defaults);
    expect(await owner`SELECT count(*)::int AS n FROM shared`).toEqual([{ n: 0 }]);
    expect(await httpCode(owner`SELECT * FROM only_tcp`)).toBe('42P01');
    expect((await tcp.query('SELECT * FROM pg_temp.only_tcp')).rows).toEqual([]);
    await tcp.end();
    expect(await httpCode(owner`SELECT * FROM only_tcp`)).toBe('42P01');
  });
});
