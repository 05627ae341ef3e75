// The edge gateway (workers/gateway) in workerd: forwarding is byte-transparent for HTTP and WebSocket
// (checked against a recording upstream, and against the real proxy with the real driver), and the opt-in
// result cache: a read is served from cache on the second call, a write is never cached (nor a read that
// turns out to write), a cached result expires after its TTL, and a transaction bypasses the cache.
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyQuery } from '../workers/gateway/cacheable.ts';
import { startBackend, tcpClient, type WorkersBackend } from './support/workers-backend.ts';
import { startWorkers, type WorkersHarness } from './support/workers-miniflare.ts';
import type { ProbeResponse } from './support/workers-probe-worker.ts';
import { startRecorder, type RecordedMessage, type Recorder } from './support/workers-recorder.ts';

let backend: WorkersBackend;
let recorder: Recorder;
let workers: WorkersHarness;
let tcp: pg.Client;

beforeAll(async () => {
  [backend, recorder] = await Promise.all([startBackend(), startRecorder()]);
  workers = await startWorkers({
    proxyOrigin: backend.proxyOrigin,
    databaseUrl: backend.connectionString,
    recorderOrigin: recorder.origin,
    cacheMaxTtl: 60,
  });
  tcp = await tcpClient(backend);
  await tcp.query('CREATE TABLE gw_items (id serial PRIMARY KEY, label text NOT NULL)');
  await tcp.query("INSERT INTO gw_items (label) VALUES ('one'), ('two'), ('three')");
}, 180_000);

afterAll(async () => {
  await tcp?.end();
  await workers?.dispose();
  await recorder?.close();
  await backend?.close();
});

/** A request as the driver sends it (`neon()`), to `origin`/sql. */
function sqlRequest(origin: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${origin}/sql`, {
    method: 'POST',
    headers: {
      'Neon-Connection-String': backend.connectionString,
      'Neon-Raw-Text-Output': 'true',
      'Neon-Array-Mode': 'true',
      'Content-Type': 'text/plain;charset=UTF-8',
      ...headers,
    },
    body: JSON.stringify(body),
  });
}

const ttl = (seconds: number) => ({ 'Lakebase-Cache-TTL': String(seconds) });

/** A /sql response body: a single result, a batch's results, or an error. */
interface SqlBody {
  fields?: Array<{ name: string; dataTypeID: number }>;
  rows?: unknown[][];
  command?: string;
  results?: Array<{ rows: unknown[][] }>;
  message?: string;
}

async function json(res: Response): Promise<SqlBody> {
  return (await res.json()) as SqlBody;
}

async function answer(res: Response): Promise<{ status: number; cache: string | null; reason: string | null; body: SqlBody }> {
  return { status: res.status, cache: res.headers.get('Lakebase-Cache'), reason: res.headers.get('Lakebase-Cache-Reason'), body: await json(res) };
}

describe('forwarding is byte-transparent', () => {
  it('HTTP: method, path, query, headers and body bytes reach the upstream; its status, headers and bytes come back', async () => {
    const requestBody = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(200_000)]);
    const responseBody = Buffer.concat([randomBytes(300_000), Buffer.from([0, 13, 10, 255])]);
    recorder.respond.push({ status: 200, headers: { 'Content-Type': 'application/octet-stream', 'X-Upstream': 'kept', 'Neon-Request-Id': 'abc' }, body: responseBody });
    const before = recorder.requests.length;
    const res = await fetch(`${workers.recorderGatewayOrigin}/sql?x=1&y=%20z`, {
      method: 'POST',
      headers: { 'Neon-Connection-String': 'postgresql://u:p@ep-a-1.example/db', 'X-Client': 'a  b', 'Content-Type': 'application/octet-stream' },
      body: requestBody,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('X-Upstream')).toBe('kept');
    expect(res.headers.get('Neon-Request-Id')).toBe('abc');
    expect(res.headers.get('Lakebase-Cache')).toBeNull();
    expect(Buffer.from(await res.arrayBuffer()).equals(responseBody)).toBe(true);

    const seen = recorder.requests[before];
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/sql?x=1&y=%20z');
    expect(seen.headers['neon-connection-string']).toBe('postgresql://u:p@ep-a-1.example/db');
    expect(seen.headers['x-client']).toBe('a  b');
    expect(seen.body.equals(requestBody)).toBe(true);
  });

  it('HTTP: error statuses, CORS pre-flights and redirects pass through unchanged; other paths are not forwarded', async () => {
    const errorBody = Buffer.from('{"message":"response is too large (max is 10485760 bytes)","code":""}');
    recorder.respond.push({ status: 507, headers: { 'Content-Type': 'application/json' }, body: errorBody });
    const err = await fetch(`${workers.recorderGatewayOrigin}/sql`, { method: 'POST', body: '{}' });
    expect(err.status).toBe(507);
    expect(Buffer.from(await err.arrayBuffer()).equals(errorBody)).toBe(true);

    recorder.respond.push({ status: 200, headers: { Allow: 'OPTIONS, POST', 'Access-Control-Max-Age': '86400' }, body: Buffer.alloc(0) });
    const pre = await fetch(`${workers.recorderGatewayOrigin}/sql`, { method: 'OPTIONS' });
    expect(pre.status).toBe(200);
    expect(pre.headers.get('Allow')).toBe('OPTIONS, POST');
    expect(recorder.requests.at(-1)?.method).toBe('OPTIONS');

    recorder.respond.push({ status: 302, headers: { Location: 'http://elsewhere.invalid/' }, body: Buffer.alloc(0) });
    const redirect = await fetch(`${workers.recorderGatewayOrigin}/sql`, { method: 'POST', body: '{}', redirect: 'manual' });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('Location')).toBe('http://elsewhere.invalid/');

    const count = recorder.requests.length;
    const other = await fetch(`${workers.recorderGatewayOrigin}/metrics`);
    expect(other.status).toBe(404);
    expect(recorder.requests.length).toBe(count);
  });

  it('WebSocket: the upgrade path and query reach the upstream, and every message arrives as sent, both ways', async () => {
    const fromServer: RecordedMessage[] = [
      { data: Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]), isBinary: true },
      { data: randomBytes(70_000), isBinary: true },
      { data: Buffer.from('text frame ✓'), isBinary: false },
      { data: randomBytes(1 << 20), isBinary: true },
    ];
    const fromClient: RecordedMessage[] = [
      { data: Buffer.from(Array.from({ length: 256 }, (_, i) => i)), isBinary: true },
      { data: randomBytes(150_000), isBinary: true },
      { data: Buffer.from('héllo'), isBinary: false },
      { data: Buffer.from([1]), isBinary: true },
    ];
    recorder.greeting.splice(0, recorder.greeting.length, ...fromServer);
    const wsOrigin = workers.recorderGatewayOrigin!.replace('http:', 'ws:');
    const ws = new WebSocket(`${wsOrigin}/v2?address=ep-quiet-lake-123456.lakebase.local:5432`, { perMessageDeflate: false });
    const received: RecordedMessage[] = [];
    ws.on('message', (data: Buffer, isBinary: boolean) => received.push({ data: Buffer.from(data), isBinary }));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    for (const m of fromClient) ws.send(m.data, { binary: m.isBinary });
    const upgrade = () => recorder.upgrades.at(-1);
    for (let i = 0; i < 200 && (received.length < fromServer.length || (upgrade()?.received.length ?? 0) < fromClient.length); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    ws.close();
    expect(upgrade()?.url).toBe('/v2?address=ep-quiet-lake-123456.lakebase.local:5432');
    expect(received).toEqual(fromServer);
    expect(upgrade()?.received).toEqual(fromClient);
  });

  it('the real proxy through the gateway: the same response bytes as direct, and the driver works over both paths', async () => {
    const query = { query: "SELECT n, md5(n::text) AS h, repeat('x', n % 7) AS pad FROM generate_series(1, 500) AS n", params: [] };
    const [direct, viaGateway] = await Promise.all([sqlRequest(backend.proxyOrigin, query), sqlRequest(workers.gatewayOrigin, query)]);
    expect(viaGateway.status).toBe(direct.status);
    expect(viaGateway.headers.get('Content-Type')).toBe(direct.headers.get('Content-Type'));
    expect(Buffer.from(await viaGateway.arrayBuffer()).equals(Buffer.from(await direct.arrayBuffer()))).toBe(true);

    const statements = [{ text: 'SELECT label FROM gw_items WHERE id = $1', params: [2] }];
    for (const via of ['http', 'ws'] as const) {
      const res = await workers.probe({ via, proxy: workers.gatewayOrigin, statements });
      expect(res).toMatchObject({ ok: true, results: [{ rows: [{ label: 'two' }] }] });
    }
  });
});

describe('result cache', () => {
  it('a read is a miss, then a hit with the same bytes; the answer is what the proxy gives', async () => {
    const q = { query: 'SELECT random() AS r, $1::text AS tag', params: ['hit-test'] };
    const first = await answer(await sqlRequest(workers.gatewayOrigin, q, ttl(30)));
    const second = await answer(await sqlRequest(workers.gatewayOrigin, q, ttl(30)));
    expect(first).toMatchObject({ status: 200, cache: 'miss' });
    expect(second).toMatchObject({ status: 200, cache: 'hit' });
    expect(second.body).toEqual(first.body);
    // Same shape as the proxy's own single-query answer (the miss ran as a one-query read-only batch).
    const direct = await json(await sqlRequest(backend.proxyOrigin, q));
    expect(Object.keys(first.body)).toEqual(Object.keys(direct));
    expect({ ...first.body, rows: null }).toEqual({ ...direct, rows: null });
    // Another parameter, another entry.
    const other = await answer(await sqlRequest(workers.gatewayOrigin, { ...q, params: ['other'] }, ttl(30)));
    expect(other.cache).toBe('miss');
  });

  it('is keyed by credentials: a wrong password is never answered from the cache', async () => {
    const q = { query: 'SELECT label FROM gw_items ORDER BY id', params: [] };
    expect((await answer(await sqlRequest(workers.gatewayOrigin, q, ttl(30)))).cache).toBe('miss');
    const wrong = new URL(backend.connectionString.replace(/^postgres(ql)?:/, 'http:'));
    wrong.password = 'not-the-password';
    const res = await sqlRequest(workers.gatewayOrigin, q, { ...ttl(30), 'Neon-Connection-String': wrong.href.replace(/^http:/, 'postgresql:') });
    expect(res.status).not.toBe(200);
    expect(res.headers.get('Lakebase-Cache')).toBe('miss');
  });

  it('the driver asks for it with lakebaseCache(ttl) (workers/lakebase-config.ts)', async () => {
    const run = () =>
      workers.probe({ via: 'http', proxy: workers.gatewayOrigin, cacheTtl: 30, statements: [{ text: "SELECT random() AS r, 'driver' AS via" }] });
    const value = (res: ProbeResponse) => (res.ok ? res.results[0].rows[0].r : res.error.message);
    const a = await run();
    expect(a.ok).toBe(true);
    expect(value(await run())).toBe(value(a));
  });

  it('a write is never cached, by keyword or because PostgreSQL refuses it in a read-only transaction', async () => {
    const count = async () => (await tcp.query('SELECT count(*)::int AS n FROM gw_items')).rows[0].n as number;
    const start = await count();
    const insert = { query: 'INSERT INTO gw_items (label) VALUES ($1) RETURNING id', params: ['written'] };
    const a = await answer(await sqlRequest(workers.gatewayOrigin, insert, ttl(30)));
    const b = await answer(await sqlRequest(workers.gatewayOrigin, insert, ttl(30)));
    expect([a.cache, b.cache]).toEqual(['bypass', 'bypass']);
    expect(a.body.rows?.[0][0]).not.toBe(b.body.rows?.[0][0]);
    expect(await count()).toBe(start + 2);

    const cte = { query: "WITH w AS (INSERT INTO gw_items (label) VALUES ('cte') RETURNING id) SELECT count(*) FROM w", params: [] };
    expect(await answer(await sqlRequest(workers.gatewayOrigin, cte, ttl(30)))).toMatchObject({ cache: 'bypass', reason: 'data-modifying keyword' });
    expect(await count()).toBe(start + 3);

    // A read by every lexical rule, but the function writes: the read-only attempt is refused (and rolled
    // back), the request is then forwarded as sent, exactly once, and not cached.
    await tcp.query(`CREATE FUNCTION gw_sneaky() RETURNS int LANGUAGE sql AS 'INSERT INTO gw_items (label) VALUES (''sneaky'') RETURNING id'`);
    const sneaky = { query: 'SELECT gw_sneaky() AS id', params: [] };
    const s1 = await answer(await sqlRequest(workers.gatewayOrigin, sneaky, ttl(30)));
    const s2 = await answer(await sqlRequest(workers.gatewayOrigin, sneaky, ttl(30)));
    expect([s1.status, s1.cache, s1.reason]).toEqual([200, 'bypass', 'statement writes']);
    expect(s2.cache).toBe('bypass');
    expect(s2.body.rows?.[0][0]).not.toBe(s1.body.rows?.[0][0]);
    expect(await count()).toBe(start + 5);

    const seq = { query: "SELECT nextval('gw_items_id_seq')", params: [] };
    expect(await answer(await sqlRequest(workers.gatewayOrigin, seq, ttl(30)))).toMatchObject({ cache: 'bypass', reason: 'function with side effects' });
  });

  it('a cached result expires after its TTL', async () => {
    const q = { query: 'SELECT clock_timestamp() AS t', params: [] };
    const first = await answer(await sqlRequest(workers.gatewayOrigin, q, ttl(1)));
    const second = await answer(await sqlRequest(workers.gatewayOrigin, q, ttl(1)));
    expect([first.cache, second.cache]).toEqual(['miss', 'hit']);
    expect(second.body).toEqual(first.body);
    await new Promise((r) => setTimeout(r, 1300));
    const third = await answer(await sqlRequest(workers.gatewayOrigin, q, ttl(1)));
    expect(third.cache).toBe('miss');
    expect(third.body.rows).not.toEqual(first.body.rows);
    // A client asking for a shorter TTL than the entry's does not get an older answer than it allows.
    await new Promise((r) => setTimeout(r, 1100));
    expect((await answer(await sqlRequest(workers.gatewayOrigin, q, ttl(30)))).cache).toBe('miss');
    expect((await answer(await sqlRequest(workers.gatewayOrigin, q, ttl(30)))).cache).toBe('hit');
    await new Promise((r) => setTimeout(r, 1100));
    expect((await answer(await sqlRequest(workers.gatewayOrigin, q, ttl(1)))).cache).toBe('miss');
  });

  it('a request in a transaction bypasses the cache', async () => {
    const batch = { queries: [{ query: 'SELECT label FROM gw_items WHERE id = $1', params: ['1'] }, { query: 'SELECT 2 AS n', params: [] }] };
    for (let i = 0; i < 2; i++) {
      const res = await answer(await sqlRequest(workers.gatewayOrigin, batch, ttl(30)));
      expect(res).toMatchObject({ status: 200, cache: 'bypass', reason: 'transaction' });
      expect(res.body.results?.map((r: { rows: unknown[] }) => r.rows)).toEqual([[['one']], [['2']]]);
    }
    // The driver's transaction() options arrive as Neon-Batch-* headers: also a transaction.
    const single = { query: 'SELECT 1 AS n', params: [] };
    const withHeader = await answer(await sqlRequest(workers.gatewayOrigin, single, { ...ttl(30), 'Neon-Batch-Isolation-Level': 'Serializable' }));
    expect(withHeader.cache).toBe('bypass');
  });

  it('without the header nothing is cached or labelled; a bad TTL is a 400 the driver can read', async () => {
    const q = { query: 'SELECT random() AS r', params: [] };
    const a = await sqlRequest(workers.gatewayOrigin, q);
    const b = await sqlRequest(workers.gatewayOrigin, q);
    expect(a.headers.get('Lakebase-Cache')).toBeNull();
    expect((await json(a)).rows).not.toEqual((await json(b)).rows);
    for (const bad of ['-1', 'soon', '61', '1.5']) {
      const res = await sqlRequest(workers.gatewayOrigin, q, { 'Lakebase-Cache-TTL': bad });
      expect(res.status).toBe(400);
      expect((await json(res)).message).toBe('Lakebase-Cache-TTL must be a whole number of seconds from 0 to 60');
    }
    expect((await answer(await sqlRequest(workers.gatewayOrigin, q, ttl(0)))).cache).toBe('bypass');
  });
});

describe('which statements may be cached', () => {
  it.each([
    'SELECT * FROM t WHERE id = $1',
    '  select 1;  ',
    '(SELECT 1) UNION (SELECT 2)',
    'VALUES (1), (2)',
    'TABLE t',
    'SHOW search_path',
    'WITH x AS (SELECT 1) SELECT * FROM x',
    "SELECT 'insert into t' AS s, \"update\" FROM t -- delete\n",
    'SELECT updated_at, inserted_by FROM t /* into */',
  ])('cacheable: %s', (q) => {
    expect(classifyQuery(q)).toEqual({ cacheable: true });
  });

  it.each([
    ['INSERT INTO t VALUES (1)', 'not a read (insert)'],
    ['UPDATE t SET a = 1', 'not a read (update)'],
    ['BEGIN', 'not a read (begin)'],
    ['SET search_path = x', 'not a read (set)'],
    ['EXPLAIN ANALYZE DELETE FROM t', 'not a read (explain)'],
    ['WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', 'data-modifying keyword'],
    ['SELECT * INTO t2 FROM t', 'data-modifying keyword'],
    ['SELECT * FROM t FOR UPDATE', 'data-modifying keyword'],
    ['SELECT * FROM t FOR SHARE', 'row lock'],
    ['SELECT * FROM t FOR KEY SHARE', 'row lock'],
    ['SELECT 1; DELETE FROM t', 'more than one statement'],
    ["SELECT nextval('s')", 'function with side effects'],
    ["SELECT pg_advisory_lock(1)", 'function with side effects'],
    ["SELECT set_config('a.b', 'c', false)", 'function with side effects'],
    ['SELECT $$;$$', 'dollar-quoted text'],
    ["SELECT E'\\''", 'escape string'],
    ["SELECT 'unterminated", 'unterminated literal or comment'],
    ['/* comment only */', 'not a read (empty)'],
  ])('not cacheable: %s', (q, reason) => {
    expect(classifyQuery(q)).toEqual({ cacheable: false, reason });
  });
});
