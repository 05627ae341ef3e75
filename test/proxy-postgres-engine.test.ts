// The proxy in front of a `postgres`-engine compute (issue 11): a real PostgreSQL 15 whose pg_hba asks SCRAM of
// every TCP login and whose roles hold the control plane's verifier literals. The proxy logs each session in as the
// client's own role with the SCRAM keys the client proved (TCP) or its password gave (WebSocket, HTTP), never with
// a password of its own. Checked with real clients: node-postgres over TCP, the serverless driver's Pool over
// WebSocket and neon() over HTTP, plus raw wire exchanges compared with the same PostgreSQL reached directly.
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Pool, neon, neonConfig } from '@neondatabase/serverless';
import pg from 'pg';
import { pino } from 'pino';
import ws from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelRequest, parseAuthentication, utf8 } from '../lib/pg-wire/index.ts';
import { ScramClient, keysFromCleartext, makeVerifier, parseVerifier } from '../proxy/auth/scram.ts';
import { DirectoryError, type ComputeAddress, type EndpointDirectory, type RoleSecret } from '../proxy/directory/directory.ts';
import { computeAddress } from '../proxy/directory/http-directory.ts';
import { startProxy, type RunningProxy } from '../proxy/server.ts';
import { type NativePostgres, startNativePostgres } from './support/native-postgres.ts';
import { WireClient, passwordMessage, saslInitialResponse, saslResponse, startupMessage } from './support/proxy-wire.ts';

const EP = 'ep-postgres-engine-123456';
/** Only ever used with wrong passwords: it must never be woken. */
const EP_UNWOKEN = 'ep-never-woken-654321';
const BASE = 'lakebase.local';
const PW = { alice: 'alice-pw-1', bob: 'bob pw ü 2', carol: 'carol-pw-3', dave: 'dave-pw-4' };
type Role = keyof typeof PW;

/** The control plane's view at this level: every role's verifier, and the native server as the compute. */
class EngineDirectory implements EndpointDirectory {
  readonly verifiers = new Map<string, string>();
  readonly wakes = new Map<string, number>();
  private readonly address: ComputeAddress;

  constructor(address: ComputeAddress) {
    this.address = address;
  }

  async lookupRole(endpointId: string, role: string): Promise<RoleSecret | null> {
    const verifier = this.verifiers.get(role);
    return (endpointId === EP || endpointId === EP_UNWOKEN) && verifier ? { verifier } : null;
  }

  async wake(endpointId: string): Promise<ComputeAddress> {
    this.wakes.set(endpointId, (this.wakes.get(endpointId) ?? 0) + 1);
    if (endpointId !== EP && endpointId !== EP_UNWOKEN) throw new DirectoryError('endpoint not found', { status: 404 });
    return this.address;
  }
}

let server: NativePostgres;
let admin: pg.Client;
let directory: EngineDirectory;
let proxy: RunningProxy;
const logLines: string[] = [];

/** Creates `role` on the compute with `computeVerifier` and gives the directory `directoryVerifier`. */
async function addRole(role: Role, computeVerifier: string, directoryVerifier = computeVerifier): Promise<void> {
  await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${computeVerifier}'`);
  directory.verifiers.set(role, directoryVerifier);
}

beforeAll(async () => {
  server = await startNativePostgres({ settings: { log_connections: 'on' } });
  admin = new pg.Client({ host: server.socketDir, port: server.port, user: server.superuser, database: 'postgres' });
  await admin.connect();
  directory = new EngineDirectory({ host: server.host, port: server.port, engine: 'postgres' });
  await addRole('alice', await makeVerifier(PW.alice));
  await addRole('bob', await makeVerifier(PW.bob));
  // carol: the compute holds another verifier of the same password (another salt): the keys cannot answer it
  await addRole('carol', await makeVerifier(PW.carol), await makeVerifier(PW.carol));
  // dave: same salt and iterations, other password: the compute itself refuses the proof
  const salt = randomBytes(16);
  await addRole('dave', await makeVerifier('not-dave-pw', 4096, salt), await makeVerifier(PW.dave, 4096, salt));
  await admin.query('CREATE DATABASE neondb OWNER alice');
  await admin.query('CREATE DATABASE otherdb OWNER bob');
  const neondb = new pg.Client({ host: server.socketDir, port: server.port, user: server.superuser, database: 'neondb' });
  await neondb.connect();
  await neondb.query("CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items VALUES (1, 'one'), (2, 'two'); ALTER TABLE items OWNER TO alice");
  await neondb.end();
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
  proxy = await startProxy({
    directory,
    baseDomains: [BASE],
    logger,
    connectRetry: { retries: 2, baseDelayMs: 20, factor: 2 },
    wakeRetry: { retries: 2, baseDelayMs: 20, factor: 2 },
  });
  neonConfig.fetchEndpoint = () => `http://127.0.0.1:${proxy.httpPort}/sql`;
  neonConfig.wsProxy = (host, port) => `127.0.0.1:${proxy.httpPort}/v2?address=${host}:${port}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.webSocketConstructor = ws;
}, 120_000);

afterAll(async () => {
  await proxy?.close();
  await admin?.end().catch(() => {});
  await server?.stop();
});

const connString = (role: Role, o: { password?: string; database?: string; endpoint?: string } = {}): string =>
  `postgresql://${role}:${encodeURIComponent(o.password ?? PW[role])}@${o.endpoint ?? EP}.${BASE}/${o.database ?? 'neondb'}`;

function tcpClient(role: Role, o: { password?: string; database?: string; endpoint?: string; application_name?: string } = {}): pg.Client {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: proxy.tcpPort as number,
    user: role,
    password: o.password ?? PW[role],
    database: o.database ?? 'neondb',
    options: `endpoint=${o.endpoint ?? EP}`,
    application_name: o.application_name,
  });
  c.on('error', () => {});
  return c;
}

async function onTcp<T>(c: pg.Client, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

async function onWs<T>(conn: string, fn: (p: Pool) => Promise<T>): Promise<T> {
  const pool = new Pool({ connectionString: conn });
  pool.on('error', () => {});
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

const WHO = 'SELECT current_user AS cu, session_user AS su, current_database() AS db, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS sup';

/** Waits until `sql` (as the superuser) returns a row with ok = true. */
async function until(sql: string, params: unknown[] = []): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await admin.query(sql, params)).rows[0]?.ok === true) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`never true: ${sql}`);
}

const errorOf = (p: Promise<unknown>): Promise<{ code?: string; message: string; severity?: string }> =>
  p.then(
    () => ({ message: 'no error' }),
    (e: { code?: string; message: string; severity?: string }) => e,
  );

// ---- raw wire: the exact messages a client gets, from the proxy and from PostgreSQL itself ----

/** A SCRAM login over raw TCP; resolves with the messages up to ReadyForQuery or an error (with the codes of R). */
async function rawLogin(port: number, params: Record<string, string>, password: string): Promise<WireClient> {
  const w = await WireClient.tcp(port);
  w.send(startupMessage(params));
  const scram = new ScramClient(password);
  let seen = 0;
  while (!w.messages.some((m) => m.type === 'Z' || m.type === 'E')) {
    await w.until(() => w.messages.length > seen || w.closed);
    if (w.closed && w.messages.length === seen) break;
    const m = w.messages[seen++];
    if (m.type !== 'R') continue;
    const auth = parseAuthentication(m.body);
    if (auth.kind === 'sasl') w.send(saslInitialResponse('SCRAM-SHA-256', utf8(scram.first())));
    if (auth.kind === 'saslContinue') w.send(saslResponse(utf8(await scram.final(Buffer.from(auth.data).toString()))));
  }
  return w;
}

/** Message tags, with AuthenticationRequest codes: "R10 R11 R12 R0 S S ... K Z". */
const shape = (w: WireClient): string => w.messages.map((m) => (m.type === 'R' ? `R${m.body.readInt32BE(0)}` : m.type)).join(' ');

describe('each session logs in to the compute as the client role', () => {
  it('TCP (SCRAM): current_user and session_user are the role, which is no superuser; startup parameters reach the compute', async () => {
    const row = await onTcp(tcpClient('alice', { application_name: 'pe-app' }), async (c) => {
      const r = await c.query(`${WHO}, current_setting('application_name') AS app`);
      return r.rows[0];
    });
    expect(row).toEqual({ cu: 'alice', su: 'alice', db: 'neondb', sup: false, app: 'pe-app' });
  });

  it('WebSocket (cleartext password) and HTTP: the same', async () => {
    expect((await onWs(connString('alice'), (p) => p.query(WHO))).rows[0]).toEqual({ cu: 'alice', su: 'alice', db: 'neondb', sup: false });
    expect(await neon(connString('alice')).query(WHO)).toEqual([{ cu: 'alice', su: 'alice', db: 'neondb', sup: false }]);
    // the proxy's own startup parameters are for PGlite's compute host: a real PostgreSQL never sees them
    expect(await neon(connString('alice')).query("SELECT current_setting('lakebase.stateless', true) AS s")).toEqual([{ s: null }]);
  });

  it('two roles each get their own identity and privileges', async () => {
    expect(await neon(connString('bob')).query(WHO)).toEqual([{ cu: 'bob', su: 'bob', db: 'neondb', sup: false }]);
    expect(await errorOf(neon(connString('bob')).query('SELECT * FROM items'))).toMatchObject({ code: '42501' });
    const tcp = await onTcp(tcpClient('bob'), (c) => errorOf(c.query('SELECT * FROM items')));
    expect(tcp).toMatchObject({ code: '42501', message: 'permission denied for table items' });
    // nor can bob become alice, or a superuser
    expect(await errorOf(neon(connString('bob')).query('SET ROLE alice'))).toMatchObject({ code: '42501' });
    expect(await neon(connString('alice')).query('SELECT v FROM items ORDER BY id')).toEqual([{ v: 'one' }, { v: 'two' }]);
  });

  it('a database other than the default is reached by its name, on every protocol', async () => {
    const db = 'SELECT current_database() AS db, current_user AS cu';
    expect(await neon(connString('bob', { database: 'otherdb' })).query(db)).toEqual([{ db: 'otherdb', cu: 'bob' }]);
    expect((await onWs(connString('bob', { database: 'otherdb' }), (p) => p.query(db))).rows).toEqual([{ db: 'otherdb', cu: 'bob' }]);
    expect((await onTcp(tcpClient('bob', { database: 'otherdb' }), (c) => c.query(db))).rows).toEqual([{ db: 'otherdb', cu: 'bob' }]);
  });

  it('the client sees exactly the messages PostgreSQL itself sends at login: one AuthenticationOk, its ParameterStatus, a key, ReadyForQuery', async () => {
    const params = { user: 'alice', database: 'neondb', client_encoding: 'UTF8' };
    const direct = await rawLogin(server.port, params, PW.alice);
    const proxied = await rawLogin(proxy.tcpPort as number, { ...params, options: `endpoint=${EP}` }, PW.alice);
    direct.close();
    proxied.close();
    expect(shape(proxied)).toBe(shape(direct));
    expect(shape(proxied)).toMatch(/^R10 R11 R12 R0 (S )+K Z$/);
    const ws1 = await WireClient.ws(`ws://127.0.0.1:${proxy.httpPort}/v2?address=${EP}.${BASE}:5432`);
    ws1.send(startupMessage(params), passwordMessage(PW.alice));
    await ws1.until(() => ws1.readyCount() === 1);
    ws1.close();
    expect(shape(ws1)).toMatch(/^R3 R0 (S )+K Z$/);
  });

  it("a database that does not exist: the compute's FATAL 3D000, after AuthenticationOk as from PostgreSQL", async () => {
    const params = { user: 'alice', database: 'nope' };
    const direct = await rawLogin(server.port, params, PW.alice);
    const proxied = await rawLogin(proxy.tcpPort as number, { ...params, options: `endpoint=${EP}` }, PW.alice);
    expect(shape(proxied)).toBe('R10 R11 R12 R0 E');
    expect(shape(direct)).toBe('R10 R11 R12 R0 E');
    const pick = (f: Record<string, string> | null) => f && { S: f.S, V: f.V, C: f.C, M: f.M };
    expect(pick(proxied.error())).toEqual(pick(direct.error()));
    expect(pick(proxied.error())).toEqual({ S: 'FATAL', V: 'FATAL', C: '3D000', M: 'database "nope" does not exist' });
    expect(await errorOf(neon(connString('alice', { database: 'nope' })).query('SELECT 1'))).toMatchObject({ code: '3D000' });
  });
});

describe('refusals', () => {
  it('a wrong password is refused by the proxy and never reaches the compute', async () => {
    const logFile = path.join(server.socketDir, 'log');
    const before = statSync(logFile).size;
    const bad = { password: 'wrong', endpoint: EP_UNWOKEN };
    const tcp = await onTcp(tcpClient('alice', bad), async () => 'connected').catch((e: pg.DatabaseError) => e);
    expect(tcp).toMatchObject({ message: "password authentication failed for user 'alice'", code: 'XX000' }); // Neon's proxy's code
    const ws1 = await errorOf(onWs(connString('alice', bad), (p) => p.query('SELECT 1')));
    expect(ws1).toMatchObject({ message: "password authentication failed for user 'alice'" });
    const http = await errorOf(neon(connString('alice', bad)).query('SELECT 1'));
    expect(http).toMatchObject({ message: "password authentication failed for user 'alice'" });
    expect(directory.wakes.get(EP_UNWOKEN)).toBeUndefined();
    const logged = readFileSync(logFile).subarray(before).toString();
    expect(logged).not.toContain('connection received');
  });

  it('a compute whose verifier differs from the directory\'s: FATAL 28P01, and the proxy logs why', async () => {
    const tcp = await onTcp(tcpClient('carol'), async () => 'connected').catch((e: pg.DatabaseError) => e);
    expect(tcp).toMatchObject({ code: '28P01', severity: 'FATAL', message: 'password authentication failed for user "carol"' });
    const raw = await rawLogin(proxy.tcpPort as number, { user: 'carol', database: 'neondb', options: `endpoint=${EP}` }, PW.carol);
    expect(shape(raw)).toBe('R10 R11 R12 E'); // the proxy checked the client; no AuthenticationOk without the compute's
    expect(await errorOf(neon(connString('carol')).query('SELECT 1'))).toMatchObject({ code: '28P01' });
    expect(await errorOf(onWs(connString('carol'), (p) => p.query('SELECT 1')))).toMatchObject({ code: '28P01' });
    const reasons = logLines.filter((l) => l.includes('compute refused the client role'));
    expect(reasons.length).toBeGreaterThanOrEqual(3);
    expect(JSON.parse(reasons[0])).toMatchObject({ user: 'carol', endpointId: EP, reason: expect.stringContaining('verifier is not the one') });
  });

  it("the compute's own refusal (same salt, other password) reaches the client as PostgreSQL sent it", async () => {
    const tcp = await onTcp(tcpClient('dave'), async () => 'connected').catch((e: pg.DatabaseError) => e);
    expect(tcp).toMatchObject({ code: '28P01', severity: 'FATAL', message: 'password authentication failed for user "dave"' });
    expect(await errorOf(neon(connString('dave')).query('SELECT 1'))).toMatchObject({ code: '28P01' });
  });
});

describe('SQL over HTTP on a pool of role backends', () => {
  it('concurrent queries run on different backends', async () => {
    const sql = neon(connString('alice'));
    const rows = await Promise.all(Array.from({ length: 8 }, () => sql.query('SELECT pg_backend_pid() AS pid, pg_sleep(0.3)')));
    expect(new Set(rows.map((r) => r[0].pid)).size).toBeGreaterThan(1);
  });

  it('a query waiting on a lock does not hold up the next one', async () => {
    const holder = tcpClient('alice');
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE items IN ACCESS EXCLUSIVE MODE');
      const sql = neon(connString('alice'));
      const blocked = Promise.resolve(sql.query('SELECT count(*)::int AS n FROM items')); // the driver's query runs when awaited
      await until("SELECT count(*) > 0 AS ok FROM pg_stat_activity WHERE usename = 'alice' AND wait_event_type = 'Lock' AND query LIKE 'SELECT count(*)%'");
      expect(await sql.query('SELECT 2 AS n')).toEqual([{ n: 2 }]); // ran while the first is still blocked
      await until("SELECT count(*) > 0 AS ok FROM pg_stat_activity WHERE usename = 'alice' AND wait_event_type = 'Lock'");
      await holder.query('COMMIT');
      expect(await blocked).toEqual([{ n: 2 }]);
    } finally {
      await holder.end();
    }
  });

  it('session state set over HTTP does not reach the next request on the same backend', async () => {
    // bob in otherdb is used here alone, so both requests get the one backend of that (endpoint, database, role)
    const sql = neon(connString('bob', { database: 'otherdb' }));
    const [first] = await sql.query('SELECT pg_backend_pid() AS pid');
    await sql.query("SET search_path TO leaked, public");
    await sql.query("SELECT set_config('application_name', 'leaked', false)");
    await sql.query('CREATE TEMP TABLE scratch (x int)');
    const [next] = await sql.query("SELECT pg_backend_pid() AS pid, current_setting('search_path') AS sp, current_setting('application_name') AS app, to_regclass('scratch') AS t");
    expect(next).toEqual({ pid: first.pid, sp: '"$user", public', app: '', t: null });
  });

  it('a per-endpoint cap bounds the backends; a request of another role still gets one', async () => {
    const capped = await startProxy({ directory, baseDomains: [BASE], logger: pino({ level: 'silent' }), pool: { maxPerEndpoint: 2 } });
    try {
      const post = async (role: Role, database: string, query: string): Promise<{ status: number; rows: Record<string, unknown>[] }> => {
        const res = await fetch(`http://127.0.0.1:${capped.httpPort}/sql`, {
          method: 'POST',
          headers: { 'Neon-Connection-String': connString(role, { database }) },
          body: JSON.stringify({ query, params: [] }),
        });
        const body = (await res.json()) as { rows?: Record<string, unknown>[] };
        return { status: res.status, rows: body.rows ?? [] };
      };
      const burst = await Promise.all(Array.from({ length: 6 }, () => post('alice', 'neondb', 'SELECT pg_backend_pid() AS pid, pg_sleep(0.2)')));
      expect(burst.map((r) => r.status)).toEqual(Array(6).fill(200));
      expect(new Set(burst.map((r) => r.rows[0].pid)).size).toBeLessThanOrEqual(2); // six queries, two backends
      // other roles wait their turn behind busy backends of alice, and get theirs
      const mixed = await Promise.all([
        post('alice', 'neondb', 'SELECT pg_sleep(0.2)'),
        post('alice', 'neondb', 'SELECT pg_sleep(0.2)'),
        post('bob', 'otherdb', 'SELECT current_user AS cu'),
        post('alice', 'neondb', 'SELECT current_user AS cu'),
      ]);
      expect(mixed.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      expect(mixed[2].rows).toEqual([{ cu: 'bob' }]);
      // the cap is full of idle backends: one of them makes room for yet another key
      expect((await post('bob', 'neondb', 'SELECT current_user AS cu')).rows).toEqual([{ cu: 'bob' }]);
    } finally {
      await capped.close();
    }
  });
});

describe('cancel and key hygiene', () => {
  it("a CancelRequest with the proxy's key cancels the query on the compute (57014)", async () => {
    const c = tcpClient('alice');
    await c.connect();
    try {
      const sleeping = errorOf(c.query('SELECT pg_sleep(30)'));
      await until("SELECT count(*) > 0 AS ok FROM pg_stat_activity WHERE usename = 'alice' AND state = 'active' AND query = 'SELECT pg_sleep(30)'");
      const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
      const real = await admin.query("SELECT pid FROM pg_stat_activity WHERE usename = 'alice' AND query = 'SELECT pg_sleep(30)'");
      expect(real.rows.map((r) => r.pid)).not.toContain(processID); // the client holds the proxy's key, not the backend's
      const w = await WireClient.tcp(proxy.tcpPort as number);
      w.send(cancelRequest(processID, secretKey));
      expect(await sleeping).toMatchObject({ code: '57014' });
      w.close();
    } finally {
      await c.end();
    }
  });

  it('no log line holds a role\'s ClientKey', async () => {
    for (const role of ['alice', 'bob'] as const) {
      const keys = await keysFromCleartext(parseVerifier(directory.verifiers.get(role) as string)!, PW[role]);
      const clientKey = keys?.clientKey as Buffer;
      const all = logLines.join('\n');
      expect(all).not.toContain(clientKey.toString('base64'));
      expect(all).not.toContain(clientKey.toString('hex'));
    }
    expect(logLines.length).toBeGreaterThan(0);
  });
});

describe('the wake answer', () => {
  it('carries the engine; a password only for pglite; no engine means pglite', () => {
    expect(computeAddress({ host: 'h', port: 1, engine: 'postgres' })).toEqual({ host: 'h', port: 1, engine: 'postgres' });
    expect(computeAddress({ host: 'h', port: 1, engine: 'postgres', password: 'x' })).toEqual({ host: 'h', port: 1, engine: 'postgres' });
    expect(computeAddress({ host: 'h', port: 1, password: 'x' })).toEqual({ host: 'h', port: 1, engine: 'pglite', password: 'x' });
    expect(computeAddress({ host: 'h', port: 1, engine: 'pglite', password: 'x' })).toEqual({ host: 'h', port: 1, engine: 'pglite', password: 'x' });
    for (const bad of [{ host: 'h', port: 1, engine: 'pglite' }, { host: 'h', port: 1, engine: 'oracle', password: 'x' }, { host: 'h', engine: 'postgres' }, null]) {
      expect(() => computeAddress(bad)).toThrow(DirectoryError);
    }
  });
});
