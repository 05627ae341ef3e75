// The WebSocket path (reference §2, checklist items 30-45): the driver's Pool and Client in all four
// pipelineConnect x coalesceWrites modes against a real PostgreSQL behind the proxy, and raw frames for the
// handshake details.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Client, Pool, neonConfig } from '@neondatabase/serverless';
import pg from 'pg';
import ws from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BodyReader, cancelRequest, message, parseErrorFields, passwordMessage, query as queryMessage, startupMessage } from '../lib/pg-wire/index.ts';
import { BASE_DOMAIN, DATABASE, ENDPOINT, PASSWORD, USER, startProxyStack, type ProxyStack } from './support/proxy-stack.ts';
import { WireClient } from './support/proxy-wire.ts';

let stack: ProxyStack;
let direct: pg.Client;
let wsBase: string;

beforeAll(async () => {
  stack = await startProxyStack();
  wsBase = `ws://127.0.0.1:${stack.proxy.httpPort}`;
  neonConfig.wsProxy = (host, port) => `127.0.0.1:${stack.proxy.httpPort}/v2?address=${host}:${port}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.webSocketConstructor = ws;
  direct = new pg.Client(stack.directConfig());
  await direct.connect();
  await direct.query('CREATE TABLE items (id serial PRIMARY KEY, v text)');
});

afterAll(async () => {
  neonConfig.pipelineConnect = 'password';
  neonConfig.coalesceWrites = true;
  await direct?.end();
  await stack?.close();
});

const SAMPLE_SQL = `SELECT 1::int2 AS i2, 9007199254740993::int8 AS i8, 123.456::numeric AS num, 2.5::float8 AS f8,
  true AS b, 'txt ünï'::text AS t, '\\x0102ff'::bytea AS by, '{"b":null}'::jsonb AS jb, ARRAY[1,2,NULL]::int[] AS arr,
  '2024-01-02 03:04:05.123+00'::timestamptz AS ts, '2024-01-02'::date AS d, '1 day 02:03:04'::interval AS iv, NULL AS n`;

describe.each([
  ['password', true],
  ['password', false],
  [false, true],
  [false, false],
] as const)('driver with pipelineConnect=%s coalesceWrites=%s', (pipelineConnect, coalesceWrites) => {
  beforeAll(() => {
    neonConfig.pipelineConnect = pipelineConnect;
    neonConfig.coalesceWrites = coalesceWrites;
  });

  it('items 37, 38, 43: Pool queries return what node-postgres returns over TCP', async () => {
    const pool = new Pool({ connectionString: stack.connString() });
    try {
      const viaWs = await pool.query(SAMPLE_SQL);
      const viaPg = await direct.query(SAMPLE_SQL);
      expect(viaWs.rows).toEqual(viaPg.rows);
      expect(viaWs.fields).toEqual(viaPg.fields);
      const p = await pool.query('SELECT $1::int + 1 AS n, current_user AS u, current_database() AS d', [41]);
      expect(p.rows).toEqual([{ n: 42, u: USER, d: DATABASE }]);
    } finally {
      await pool.end();
    }
  });

  it('Client: interactive transaction, rollback and commit', async () => {
    const client = new Client({ connectionString: stack.connString() });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query('INSERT INTO items (v) VALUES ($1)', [`rolled-${pipelineConnect}-${coalesceWrites}`]);
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      const ins = await client.query('INSERT INTO items (v) VALUES ($1) RETURNING id', [`kept-${pipelineConnect}-${coalesceWrites}`]);
      expect(ins.rowCount).toBe(1);
      await client.query('COMMIT');
      const seen = await direct.query('SELECT v FROM items WHERE v LIKE $1', [`%-${pipelineConnect}-${coalesceWrites}`]);
      expect(seen.rows).toEqual([{ v: `kept-${pipelineConnect}-${coalesceWrites}` }]);
      await expect(client.query('SELECT * FROM nope')).rejects.toMatchObject({ code: '42P01', position: '15' });
      expect((await client.query('SELECT 7 AS n')).rows).toEqual([{ n: 7 }]);
    } finally {
      await client.end();
    }
  });

  it('concurrent clients each see their own session', async () => {
    const clients = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const c = new Client({ connectionString: stack.connString() });
        await c.connect();
        await c.query(`SET application_name = 'c${i}'`);
        return c;
      }),
    );
    try {
      const names = await Promise.all(clients.map(async (c) => (await c.query("SELECT current_setting('application_name') AS a, pg_sleep(0.05)")).rows[0].a));
      expect(names).toEqual(clients.map((_, i) => `c${i}`));
      const pids = await Promise.all(clients.map(async (c) => (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p));
      expect(new Set(pids).size).toBe(6);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('item 41: a wrong password rejects with the auth error', async () => {
    const client = new Client({ connectionString: stack.connString({ password: 'wrong' }) });
    client.on('error', () => {});
    const err = await client
      .connect()
      .then(() => client.query('SELECT 1'))
      .catch((e: pg.DatabaseError) => e);
    expect(err).toMatchObject({ message: `password authentication failed for user '${USER}'`, code: 'XX000' });
    await client.end().catch(() => {});
  });
});

describe('raw WebSocket handshake', () => {
  const opened: WireClient[] = [];
  afterEach(() => {
    for (const c of opened.splice(0)) c.close();
  });
  async function open(path = `/v2?address=${ENDPOINT}.${BASE_DOMAIN}:5432`, headers: Record<string, string> = {}): Promise<WireClient> {
    const c = await WireClient.ws(wsBase + path, headers);
    opened.push(c);
    return c;
  }
  const startup = (extra: Record<string, string> = {}) =>
    startupMessage({ user: USER, database: DATABASE, application_name: 'raw-test', client_encoding: 'UTF8', ...extra });

  it('items 32, 36, 39, 40: startup + password + query in one frame; exact greeting', async () => {
    const c = await open();
    c.send(startup(), passwordMessage(PASSWORD), queryMessage('SELECT 1 AS n'));
    await c.until(() => c.readyCount() >= 2);
    const types = c.types();
    // R/3, R/0, ParameterStatus..., exactly one K, one Z, then the query's T D C Z.
    expect(types).toMatch(/^RRS+KZTDCZ$/);
    const auth = c.messages.filter((m) => m.type === 'R').map((m) => m.body.readInt32BE(0));
    expect(auth).toEqual([3, 0]);
    const params = new Map(
      c.messages.filter((m) => m.type === 'S').map((m) => {
        const r = new BodyReader(m.body);
        return [r.cstring(), r.cstring()] as const;
      }),
    );
    for (const p of ['server_version', 'client_encoding', 'DateStyle', 'TimeZone', 'integer_datetimes', 'standard_conforming_strings']) {
      expect(params.has(p), p).toBe(true);
    }
    expect(params.get('application_name')).toBe('raw-test');
    const z = c.messages.find((m) => m.type === 'Z');
    expect(z?.body.toString()).toBe('I');
    // The proxy's own key, not the backend's pid.
    const k = c.messages.find((m) => m.type === 'K') as { body: Buffer };
    const backendPids = (await direct.query("SELECT pid FROM pg_stat_activity WHERE application_name = 'raw-test'")).rows.map((r) => r.pid);
    expect(backendPids).toHaveLength(1);
    expect(k.body.readInt32BE(0)).not.toBe(backendPids[0]);
  });

  it('item 32: messages split across frames, one byte per frame', async () => {
    const c = await open();
    const bytes = Buffer.concat([startup(), passwordMessage(PASSWORD), queryMessage("SELECT 'split' AS s")]);
    for (const b of bytes) c.send(Buffer.from([b]));
    await c.until(() => c.readyCount() >= 2);
    const d = c.messages.find((m) => m.type === 'D') as { body: Buffer };
    expect(d.body.subarray(6).toString()).toBe('split');
  });

  it('item 33: a text frame closes the connection', async () => {
    const c = (await open()) as WireClient & { socket: ws };
    c.socket.send('hello', { binary: false });
    await c.until(() => c.closed);
    expect(c.closeCode).toBe(1003);
  });

  it('item 35: an SSLRequest in the tunnel is answered N and startup continues', async () => {
    const c = await open();
    c.rawMode(true);
    const ssl = Buffer.alloc(8);
    ssl.writeInt32BE(8, 0);
    ssl.writeInt32BE(80877103, 4);
    c.send(ssl);
    await c.until(() => c.raw.length >= 1);
    expect(c.raw.toString()).toBe('N');
    c.rawMode(false);
    c.send(startup(), passwordMessage(PASSWORD), queryMessage('SELECT 1'));
    await c.until(() => c.readyCount() >= 2);
  });

  it('item 34: endpoint from options, Host label, address=, password forms; conflicts and absence rejected', async () => {
    const ok = async (c: WireClient, pw = PASSWORD, extra: Record<string, string> = {}) => {
      c.send(startup(extra), passwordMessage(pw), queryMessage('SELECT 1'));
      await c.until(() => c.readyCount() >= 2 || c.closed);
      expect(c.error()).toBeNull();
    };
    const fails = async (c: WireClient, pw: string, extra: Record<string, string>, msg: string) => {
      c.send(startup(extra), passwordMessage(pw));
      await c.until(() => c.closed);
      expect(c.error()?.M).toContain(msg);
      expect(c.error()?.C).toBe('XX000');
    };
    await ok(await open('/'), PASSWORD, { options: `endpoint=${ENDPOINT}` });
    await ok(await open('/v1', { Host: `${ENDPOINT}.${BASE_DOMAIN}` }));
    await ok(await open('/sql', { Host: `${ENDPOINT}-pooler.${BASE_DOMAIN}:443` }));
    await ok(await open(`/v2?address=${ENDPOINT}-pooler.${BASE_DOMAIN}:5432`));
    await ok(await open('/v2'), `endpoint=${ENDPOINT};${PASSWORD}`);
    await ok(await open('/v2'), `project=${ENDPOINT}$${PASSWORD}`);
    await ok(await open('/v2?address=127.0.0.1:5432', { Host: `api.${BASE_DOMAIN}` }), `endpoint=${ENDPOINT};${PASSWORD}`);
    await fails(await open('/v2'), PASSWORD, {}, 'Endpoint ID is not specified');
    await fails(await open('/v2', { Host: `ep-other-thing-1.${BASE_DOMAIN}` }), PASSWORD, { options: `endpoint=${ENDPOINT}` }, 'Inconsistent project name inferred from SNI');
    await fails(await open('/v2'), PASSWORD, { options: 'endpoint=ep_bad!' }, 'must contain only alphanumeric characters and hyphen');
    await fails(await open('/v2'), 'wrong', { options: `endpoint=${ENDPOINT}` }, `password authentication failed for user '${USER}'`);
    await fails(await open('/v2'), PASSWORD, { options: 'endpoint=ep-unknown-x-1' }, `password authentication failed for user '${USER}'`);
  });

  it('item 43: application_name and options (minus endpoint=) reach Postgres', async () => {
    const c = await open('/');
    c.send(
      startup({ options: `endpoint=${ENDPOINT} -c search_path=pg_catalog,public -c statement_timeout=1234`, application_name: 'fwd-app' }),
      passwordMessage(PASSWORD),
      queryMessage("SELECT current_setting('search_path') || '|' || current_setting('statement_timeout') || '|' || current_setting('application_name')"),
    );
    await c.until(() => c.readyCount() >= 2);
    const d = c.messages.find((m) => m.type === 'D') as { body: Buffer };
    expect(d.body.subarray(6).toString()).toBe('pg_catalog,public|1234ms|fwd-app');
  });

  it('limits: a startup packet over 10000 bytes or a password over 512 bytes ends the session', async () => {
    const big = await open();
    big.send(startup({ application_name: 'x'.repeat(10_001) }));
    await big.until(() => big.closed);
    const longPw = await open();
    longPw.send(startup(), passwordMessage('p'.repeat(600)));
    await longPw.until(() => longPw.closed);
    expect(longPw.error()).toBeNull();
    const wrongTag = await open();
    wrongTag.send(startup(), queryMessage('SELECT 1'));
    await wrongTag.until(() => wrongTag.closed);
    expect(wrongTag.error()?.M).toBe("incorrect message tag, expected 'p', got 'Q'");
  });

  it('random bytes never hurt the proxy', async () => {
    for (let i = 0; i < 20; i++) {
      const c = await open('/v2');
      const junk = Buffer.alloc(4 + Math.floor(Math.random() * 300));
      for (let j = 0; j < junk.length; j++) junk[j] = Math.floor(Math.random() * 256);
      if (i % 2) junk.writeInt32BE(8 + (i % 40), 0);
      c.send(junk);
      c.close();
    }
    // and on the same port as plain HTTP: garbage and broken upgrades
    for (let i = 0; i < 10; i++) {
      const s = net.connect({ host: '127.0.0.1', port: stack.proxy.httpPort });
      s.on('error', () => {});
      await new Promise((r) => s.once('connect', r));
      s.end(i % 2 ? randomBytes(200) : 'GET /v2 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    }
    const c = await open();
    c.send(startup(), passwordMessage(PASSWORD), queryMessage('SELECT 1'));
    await c.until(() => c.readyCount() >= 2);
  });

  it('item 42: a CancelRequest on a fresh WebSocket with the issued key cancels the running query', async () => {
    const c = await open();
    c.send(startup(), passwordMessage(PASSWORD), queryMessage('SELECT pg_sleep(5)'));
    await c.until(() => c.readyCount() >= 1);
    const k = c.messages.find((m) => m.type === 'K') as { body: Buffer };
    const started = Date.now();
    // a wrong secret is ignored
    const wrong = await open();
    wrong.send(cancelRequest(k.body.readInt32BE(0), k.body.readInt32BE(4) ^ 1));
    await wrong.until(() => wrong.closed);
    const cancel = await open();
    cancel.send(cancelRequest(k.body.readInt32BE(0), k.body.readInt32BE(4)));
    await c.until(() => c.readyCount() >= 2);
    expect(Date.now() - started).toBeLessThan(2000);
    const err = c.messages.find((m) => m.type === 'E') as { body: Buffer };
    expect(parseErrorFields(err.body).C).toBe('57014');
  });

  it('item 44: closing either side closes the other', async () => {
    const count = async () => (await direct.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'close-test'")).rows[0].n;
    const a = await open();
    a.send(startup({ application_name: 'close-test' }), passwordMessage(PASSWORD), queryMessage('SELECT 1'));
    await a.until(() => a.readyCount() >= 2);
    expect(await count()).toBe(1);
    a.close();
    await expect.poll(count, { timeout: 2000 }).toBe(0);
    const b = await open();
    b.send(startup({ application_name: 'close-test' }), passwordMessage(PASSWORD), queryMessage('SELECT 1'));
    await b.until(() => b.readyCount() >= 2);
    b.send(message('X'));
    await b.until(() => b.closed);
    await expect.poll(count, { timeout: 2000 }).toBe(0);
    const c = await open();
    c.send(startup({ application_name: 'close-test' }), passwordMessage(PASSWORD), queryMessage('SELECT 1'));
    await c.until(() => c.readyCount() >= 2);
    await direct.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'close-test'");
    await c.until(() => c.closed);
  });
});
