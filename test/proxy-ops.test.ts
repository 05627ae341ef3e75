// Operating the proxy: cold starts (wake single-flight, retries, unreachable computes, control-plane errors),
// rate and size limits, endpoint isolation across two real PostgreSQL clusters, metrics, SCRAM verifiers
// interchangeable with PostgreSQL's own, and proxy/main.ts as a process over the HTTP directory.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type net from 'node:net';
import { Pool, neon, neonConfig } from '@neondatabase/serverless';
import pg from 'pg';
import ws from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.ts';
import { DirectoryError } from '../proxy/directory/directory.ts';
import { makeVerifier, parseVerifier, verifyCleartext } from '../proxy/auth/scram.ts';
import { startProxy, type RunningProxy } from '../proxy/server.ts';
import { freePort, startNativePostgres, type NativePostgres } from './support/native-postgres.ts';
import { BASE_DOMAIN, DATABASE, ENDPOINT, INTERNAL_PASSWORD, PASSWORD, USER, startProxyStack, type ProxyStack } from './support/proxy-stack.ts';

let stack: ProxyStack;
let pgB: NativePostgres;
const extraProxies: RunningProxy[] = [];

const address = () => ({ host: stack.pg.host, port: stack.pg.port, password: INTERNAL_PASSWORD, engine: 'pglite' as const });

function useProxy(port: number): void {
  neonConfig.fetchEndpoint = () => `http://127.0.0.1:${port}/sql`;
  neonConfig.wsProxy = (host, p) => `127.0.0.1:${port}/v2?address=${host}:${p}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.webSocketConstructor = ws;
}

async function addEndpoint(id: string, wakeDelayMs = 0, addr = address()): Promise<void> {
  stack.directory.addEndpoint(id, addr, wakeDelayMs);
  await stack.directory.setRole(id, USER, PASSWORD);
}

beforeAll(async () => {
  [stack, pgB] = await Promise.all([startProxyStack(), startNativePostgres()]);
  useProxy(stack.proxy.httpPort);
  const b = new pg.Client({ connectionString: pgB.url() });
  await b.connect();
  await b.query(`CREATE ROLE ${USER} LOGIN PASSWORD 'b-internal'`);
  await b.query(`CREATE DATABASE ${DATABASE} OWNER ${USER}`);
  await b.end();
});

afterAll(async () => {
  for (const p of extraProxies) await p.close();
  await stack?.close();
  await pgB?.stop();
});

describe('cold start', () => {
  it('items 46: ten concurrent first queries wait for one ~200 ms wake, then all succeed', async () => {
    const id = 'ep-sleepy-owl-333333';
    await addEndpoint(id, 200);
    const sql = neon(stack.connString({ endpoint: id }));
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => sql`SELECT ${i}::int AS i`));
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(results).toEqual(Array.from({ length: 10 }, (_, i) => [{ i }]));
    expect(stack.directory.wakeCalls.get(id)).toBe(1);
    await sql`SELECT 1`;
    expect(stack.directory.wakeCalls.get(id)).toBe(1); // address cached
    expect(stack.directory.activity.get(id)).toBeGreaterThanOrEqual(11);
  });

  it('a WebSocket session to a cold endpoint is held until the wake finishes (single-flight with HTTP)', async () => {
    const id = 'ep-sleepy-cat-444444';
    await addEndpoint(id, 200);
    const pool = new Pool({ connectionString: stack.connString({ endpoint: id }) });
    const sql = neon(stack.connString({ endpoint: id }));
    const [viaWs, viaHttp] = await Promise.all([pool.query('SELECT 1 AS n'), sql`SELECT 2 AS n`]);
    expect(viaWs.rows).toEqual([{ n: 1 }]);
    expect(viaHttp).toEqual([{ n: 2 }]);
    expect(stack.directory.wakeCalls.get(id)).toBe(1);
    await pool.end();
  });

  it('item 47: an unreachable compute is "Couldn\'t connect to compute node" (HTTP 500, WebSocket XX000), then recovers', async () => {
    const id = 'ep-dead-compute-555555';
    await addEndpoint(id, 0, { host: '127.0.0.1', port: await freePort(), password: INTERNAL_PASSWORD, engine: 'pglite' });
    const sql = neon(stack.connString({ endpoint: id }));
    const err = await sql`SELECT 1`.catch((e: Error) => e);
    expect((err as Error).message).toMatch(/^Server error \(HTTP status 500\): \{"message":"Couldn't connect to compute node","code":""/);
    const pool = new Pool({ connectionString: stack.connString({ endpoint: id }) });
    pool.on('error', () => {});
    await expect(pool.query('SELECT 1')).rejects.toMatchObject({ message: "Couldn't connect to compute node", code: 'XX000' });
    await pool.end();
    const calls = stack.directory.wakeCalls.get(id) ?? 0;
    (stack.directory.endpoints.get(id) as { address: unknown }).address = address(); // the compute came back elsewhere
    expect(await sql`SELECT 3 AS n`).toEqual([{ n: 3 }]);
    expect(stack.directory.wakeCalls.get(id)).toBeGreaterThan(calls);
  });

  it('control-plane failures: retriable ones are retried, others map to Neon\'s texts', async () => {
    const id = 'ep-flaky-plane-666666';
    await addEndpoint(id);
    const ep = stack.directory.endpoints.get(id) as { failures: DirectoryError[] };
    const sql = neon(stack.connString({ endpoint: id }));
    ep.failures.push(new DirectoryError('busy', { status: 409, retriable: true }), new DirectoryError('busy', { status: 409, retriable: true }));
    expect(await sql`SELECT 1 AS n`).toEqual([{ n: 1 }]);
    expect(stack.directory.wakeCalls.get(id)).toBe(3);

    const id2 = 'ep-broken-plane-777777';
    await addEndpoint(id2);
    const ep2 = stack.directory.endpoints.get(id2) as { failures: DirectoryError[] };
    const sql2 = neon(stack.connString({ endpoint: id2 }));
    ep2.failures.push(new DirectoryError('disabled', { status: 406 }));
    await expect(sql2`SELECT 1`).rejects.toMatchObject({ message: 'Control plane request failed: endpoint is disabled', code: '' });
    ep2.failures.push(new DirectoryError('boom', { status: 500 }));
    await expect(sql2`SELECT 1`).rejects.toThrow('Server error (HTTP status 500): {"message":"Control plane request failed"');
    ep2.failures.push(...Array.from({ length: 3 }, () => new DirectoryError('busy', { status: 423, retriable: true })));
    await expect(sql2`SELECT 1`).rejects.toThrow('endpoint is temporarily unavailable');
    ep2.failures.push(new DirectoryError('quota', { status: 429, userMessage: 'You have exceeded the limit of concurrently active endpoints.' }));
    await expect(sql2`SELECT 1`).rejects.toThrow('You have exceeded the limit of concurrently active endpoints.');
    expect(await sql2`SELECT 2 AS n`).toEqual([{ n: 2 }]);
  });
});

describe('limits', () => {
  let limited: RunningProxy;
  beforeAll(async () => {
    limited = await startProxy({
      directory: stack.directory,
      baseDomains: [BASE_DOMAIN],
      rateLimits: [{ rps: 2, windowMs: 1000 }],
      maxRequestBytes: 1000,
      maxResponseBytes: 1000,
      logger: createLogger('proxy-limited', 'silent'),
    });
    extraProxies.push(limited);
  });

  it('item 48: new connections per endpoint are rate limited with Neon\'s message (HTTP and WebSocket)', async () => {
    useProxy(limited.httpPort);
    try {
      const sql = neon(stack.connString());
      const outcomes = await Promise.all(Array.from({ length: 4 }, () => sql`SELECT pg_sleep(0.1)`.then(() => 'ok', (e: Error) => e.message)));
      expect(outcomes.filter((o) => o === 'ok')).toHaveLength(2);
      for (const o of outcomes.filter((x) => x !== 'ok')) {
        expect(o).toMatch(/^Server error \(HTTP status 500\): \{"message":"Too many connections to this endpoint. Please try again later."/);
      }
      const pool = new Pool({ connectionString: stack.connString() });
      pool.on('error', () => {});
      await expect(pool.query('SELECT 1')).rejects.toMatchObject({ message: 'Too many connections to this endpoint. Please try again later.' });
      await pool.end();
    } finally {
      useProxy(stack.proxy.httpPort);
    }
  });

  it('items 24, 25: request and response limits are configurable', async () => {
    const post = (query: string) =>
      fetch(`http://127.0.0.1:${limited.httpPort}/sql`, { method: 'POST', body: JSON.stringify({ query }), headers: { 'Neon-Connection-String': stack.connString(), 'Neon-Array-Mode': 'true', 'Neon-Raw-Text-Output': 'true' } });
    await new Promise((r) => setTimeout(r, 1100)); // let the rate-limit window pass
    let res = await post(`SELECT '${'x'.repeat(1000)}'`);
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ message: 'request is too large (max is 1000 bytes)' });
    res = await post("SELECT repeat('y', 600) FROM generate_series(1, 2)");
    expect(res.status).toBe(507);
    expect(await res.json()).toMatchObject({ message: 'response is too large (max is 1000 bytes)' });
    res = await post("SELECT repeat('y', 600)");
    expect(res.status).toBe(200);
  });
});

describe('isolation, metrics, verifiers', () => {
  it('one endpoint never reaches another\'s backend, even with pooled connections', async () => {
    const other = 'ep-other-place-222222';
    stack.directory.addEndpoint(other, { host: pgB.host, port: pgB.port, password: 'b-internal', engine: 'pglite' });
    await stack.directory.setRole(other, USER, 'b-client-pass');
    const a = neon(stack.connString());
    const b = neon(stack.connString({ endpoint: other, password: 'b-client-pass' }));
    const ports = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? b : a)`SELECT current_setting('port')::int AS port`));
    for (const [i, r] of ports.entries()) expect(r[0].port).toBe(i % 2 ? pgB.port : stack.pg.port);
    await expect(neon(stack.connString({ endpoint: other }))`SELECT 1`).rejects.toMatchObject({ message: `password authentication failed for user '${USER}'` });
  });

  it('GET /metrics exposes sessions, queries, wakes and errors', async () => {
    const res = await fetch(`http://127.0.0.1:${stack.proxy.httpPort}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/lakebase_proxy_sessions_total\{protocol="http"\} \d+/);
    expect(text).toMatch(/lakebase_proxy_sessions_total\{protocol="websocket"\} \d+/);
    expect(text).toContain('lakebase_proxy_active_sessions');
    expect(text).toMatch(/lakebase_proxy_http_queries_total \d+/);
    expect(text).toMatch(/lakebase_proxy_wake_total\{outcome="ok"\} \d+/);
    expect(text).toMatch(/lakebase_proxy_wake_duration_seconds_count \d+/);
    expect(text).toMatch(/lakebase_proxy_errors_total\{protocol="http",code="compute_unreachable"\} \d+/);
  });

  it('SCRAM verifiers are interchangeable with PostgreSQL\'s own', async () => {
    const stored = (await stack.admin(`SELECT rolpassword FROM pg_authid WHERE rolname = '${USER}'`)).rows[0].rolpassword as string;
    const parsed = parseVerifier(stored);
    expect(parsed).not.toBeNull();
    expect(await verifyCleartext(parsed!, INTERNAL_PASSWORD)).toBe(true);
    expect(await verifyCleartext(parsed!, 'nope')).toBe(false);
    const ours = await makeVerifier('ünïcode pass');
    await stack.admin(`CREATE ROLE verif_user LOGIN PASSWORD '${ours}'`);
    const c = new pg.Client({ host: stack.pg.host, port: stack.pg.port, user: 'verif_user', password: 'ünïcode pass', database: 'postgres' });
    await c.connect();
    await c.end();
  });
});

describe('proxy/main.ts as a process, over the HTTP directory', () => {
  let directoryServer: http.Server;
  let child: ChildProcess;
  let ports: { httpPort: number; tcpPort: number };
  const seen: string[] = [];

  beforeAll(async () => {
    directoryServer = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const send = (status: number, body?: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(body === undefined ? '' : JSON.stringify(body));
      };
      if (req.headers.authorization !== 'Bearer dir-token') return send(401);
      const m = /^\/v1\/endpoints\/([^/]+)\/(roles\/([^/]+)|wake|activity)$/.exec(req.url ?? '');
      if (!m) return send(404);
      const id = decodeURIComponent(m[1]);
      if (m[3] !== undefined) {
        void stack.directory.lookupRole(id, decodeURIComponent(m[3])).then((r) => (r ? send(200, r) : send(404)));
      } else if (m[2] === 'wake') {
        if (id === 'ep-disabled-thing-1') return send(406, { message: '', reason: 'ENDPOINT_DISABLED' });
        void stack.directory.wake(id).then((a) => send(200, a), () => send(404));
      } else send(204);
    });
    await new Promise<void>((r) => directoryServer.listen(0, '127.0.0.1', () => r()));
    const dirPort = (directoryServer.address() as net.AddressInfo).port;
    child = spawn(process.execPath, ['proxy/main.ts', '--directory-url', `http://127.0.0.1:${dirPort}`, '--http-port', '0', '--tcp-port', '0', '--base-domain', BASE_DOMAIN], {
      cwd: new URL('..', import.meta.url).pathname,
      env: { ...process.env, LAKEBASE_PROXY_DIRECTORY_TOKEN: 'dir-token', LAKEBASE_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    ports = await new Promise((resolve, reject) => {
      let buf = '';
      child.stdout?.on('data', (d: Buffer) => {
        buf += d.toString();
        for (const line of buf.split('\n')) {
          if (line.startsWith('{"httpPort"')) resolve(JSON.parse(line));
        }
      });
      child.once('exit', (code) => reject(new Error(`proxy exited with ${code}`)));
    });
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await new Promise((r) => directoryServer?.close(r));
  });

  it('serves HTTP, WebSocket and TCP with roles and wakes from the directory service', async () => {
    useProxy(ports.httpPort);
    try {
      expect(await neon(stack.connString())`SELECT 1 AS n`).toEqual([{ n: 1 }]);
      const pool = new Pool({ connectionString: stack.connString() });
      expect((await pool.query('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
      await pool.end();
      const c = new pg.Client({ host: '127.0.0.1', port: ports.tcpPort, user: USER, password: PASSWORD, database: DATABASE, options: `endpoint=${ENDPOINT}` });
      await c.connect();
      expect((await c.query('SELECT 3 AS n')).rows).toEqual([{ n: 3 }]);
      await c.end();
      await expect(neon(stack.connString({ password: 'bad' }))`SELECT 1`).rejects.toMatchObject({ message: `password authentication failed for user '${USER}'` });
      stack.directory.addEndpoint('ep-disabled-thing-1', address());
      await stack.directory.setRole('ep-disabled-thing-1', USER, PASSWORD);
      await expect(neon(stack.connString({ endpoint: 'ep-disabled-thing-1' }))`SELECT 1`).rejects.toMatchObject({ message: 'Control plane request failed: endpoint is disabled' });
      expect(seen).toContain(`GET /v1/endpoints/${ENDPOINT}/roles/${USER}`);
      expect(seen).toContain(`POST /v1/endpoints/${ENDPOINT}/wake`);
      expect(seen).toContain(`POST /v1/endpoints/${ENDPOINT}/activity`);
    } finally {
      useProxy(stack.proxy.httpPort);
    }
  });
});
