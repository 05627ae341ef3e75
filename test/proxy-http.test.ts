// SQL over HTTP through the proxy: the real @neondatabase/serverless driver (neon(), transaction(), fullResults,
// abort) compared with node-postgres straight to the same PostgreSQL, plus raw HTTP checks of the parts of
// the contract the driver cannot see (reference §1, checklist items 1-29).
import { neon, neonConfig, NeonDbError } from '@neondatabase/serverless';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE, ENDPOINT, PASSWORD, USER, startProxyStack, type ProxyStack } from './support/proxy-stack.ts';

let stack: ProxyStack;
let direct: pg.Client;
let url: string;

beforeAll(async () => {
  stack = await startProxyStack();
  url = `http://127.0.0.1:${stack.proxy.httpPort}/sql`;
  neonConfig.fetchEndpoint = () => url;
  direct = new pg.Client(stack.directConfig());
  await direct.connect();
  await stack.admin(`CREATE DATABASE "my db" OWNER ${USER}`);
  await stack.admin(`CREATE ROLE "odd@user" LOGIN PASSWORD 'internal-compute-secret'`);
  await stack.directory.setRole(ENDPOINT, 'odd@user', 'p@ss/w:rd%?#');
});

afterAll(async () => {
  await direct?.end();
  await stack?.close();
});

const DRIVER_HEADERS = { 'Neon-Raw-Text-Output': 'true', 'Neon-Array-Mode': 'true' };

async function post(body: unknown, headers: Record<string, string> = {}, conn?: string): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'Neon-Connection-String': conn ?? stack.connString(), ...DRIVER_HEADERS, ...headers },
  });
}

// Bodies are checked by value; a static type for arbitrary JSON would add nothing.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyJson = any;
const readJson = (res: Response): Promise<AnyJson> => res.json() as Promise<AnyJson>;

const ERROR_KEYS = [
  'message', 'code', 'detail', 'hint', 'position', 'internalPosition', 'internalQuery', 'severity', 'where',
  'table', 'column', 'schema', 'dataType', 'constraint', 'file', 'line', 'routine',
];

describe('raw HTTP contract', () => {
  it('item 7: SELECT 1 AS n returns exactly the reference JSON, with CORS and a request id', async () => {
    const res = await post({ query: 'SELECT 1 AS n', params: [] }, { 'Content-Type': 'text/plain;charset=UTF-8' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('neon-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(await res.text()).toBe(
      '{"fields":[{"name":"n","dataTypeID":23,"tableID":0,"columnID":0,"dataTypeSize":4,"dataTypeModifier":-1,"format":"text"}],"rows":[["1"]],"command":"SELECT","rowCount":1,"rowAsArray":true}',
    );
  });

  it('item 1: OPTIONS /sql is the CORS pre-flight', async () => {
    const res = await fetch(url, { method: 'OPTIONS' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-max-age')).toBe('86400');
    expect(res.headers.get('allow')).toBe('OPTIONS, POST');
    const allowed = (res.headers.get('access-control-allow-headers') ?? '').split(',').map((h) => h.trim().toLowerCase());
    for (const h of ['Authorization', 'Neon-Connection-String', 'Neon-Raw-Text-Output', 'Neon-Array-Mode', 'Neon-Batch-Isolation-Level', 'Neon-Batch-Read-Only', 'Neon-Batch-Deferrable', 'Neon-Pool-Opt-In']) {
      expect(allowed).toContain(h.toLowerCase());
    }
    expect(res.headers.get('neon-request-id')).toBeTruthy();
  });

  it('other paths get 400 "query is not supported", with a request id', async () => {
    for (const [path, method] of [['/', 'GET'], ['/v1/sql', 'POST'], ['/sql', 'GET']]) {
      const res = await fetch(`http://127.0.0.1:${stack.proxy.httpPort}${path}`, { method });
      expect(res.status).toBe(400);
      expect(await readJson(res)).toBe('query is not supported');
      expect(res.headers.get('neon-request-id')).toBeTruthy();
    }
  });

  it('items 2, 8, 29: any content type, no params, unknown headers', async () => {
    for (const ct of [undefined, 'text/plain;charset=UTF-8', 'application/sql', 'application/json', 'x/y']) {
      const headers: Record<string, string> = { 'Neon-Pool-Opt-In': 'true', 'X-Neon-Query-ID': 'q1', 'Sec-Fetch-Mode': 'cors', 'User-Agent': 'node' };
      if (ct) headers['Content-Type'] = ct;
      const res = await post({ query: 'SELECT 2 AS two' }, headers);
      expect(res.status).toBe(200);
      expect((await readJson(res)).rows).toEqual([['2']]);
    }
  });

  it('item 3: database, user and password are percent-decoded; -pooler accepted; URL host not used', async () => {
    const conn = `postgresql://${encodeURIComponent('odd@user')}:${encodeURIComponent('p@ss/w:rd%?#')}@${ENDPOINT}-pooler.lakebase.local/my%20db`;
    const res = await post({ query: 'SELECT current_user AS u, current_database() AS d' }, {}, conn);
    expect(res.status).toBe(200);
    expect((await readJson(res)).rows).toEqual([['odd@user', 'my db']]);
    const postgres = await post({ query: 'SELECT 1' }, {}, stack.connString().replace('postgresql:', 'postgres:'));
    expect(postgres.status).toBe(200);
  });

  it('item 4: unknown query parameters in the connection string are ignored', async () => {
    const conn = stack.connString({ query: 'sslmode=require&channel_binding=require&application_name=x&foo=bar&options=endpoint%3Dignored' });
    const res = await post({ query: 'SELECT 1' }, {}, conn);
    expect(res.status).toBe(200);
  });

  it('item 5: bad connection strings are 400 with a JSON message', async () => {
    const cases: [Record<string, string>, string][] = [
      [{}, 'invalid header: neon-connection-string'],
      [{ 'Neon-Connection-String': 'not a url' }, 'invalid connection string: '],
      [{ 'Neon-Connection-String': `mysql://${USER}:${PASSWORD}@${ENDPOINT}.x/${DATABASE}` }, 'incorrect scheme'],
      [{ 'Neon-Connection-String': `postgresql://:${PASSWORD}@${ENDPOINT}.x/${DATABASE}` }, 'missing username'],
      [{ 'Neon-Connection-String': `postgresql://${USER}@${ENDPOINT}.x/${DATABASE}` }, 'missing authentication credentials: required password'],
      [{ 'Neon-Connection-String': `postgresql://${USER}:${PASSWORD}@${ENDPOINT}.x` }, 'missing database name'],
      [{ 'Neon-Connection-String': `postgresql://${USER}:${PASSWORD}@127.0.0.1/${DATABASE}` }, 'missing hostname'],
    ];
    for (const [headers, message] of cases) {
      const res = await fetch(url, { method: 'POST', body: '{"query":"SELECT 1"}', headers: { ...DRIVER_HEADERS, ...headers } });
      expect(res.status).toBe(400);
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      const body = await readJson(res);
      expect(Object.keys(body)).toEqual(ERROR_KEYS);
      expect(body.message.startsWith(message)).toBe(true);
      expect(body.code).toBe('');
      expect(body.severity).toBe('');
    }
  });

  it('item 6: wrong password, unknown user and unknown endpoint look the same', async () => {
    const conns = [
      stack.connString({ password: 'wrong' }),
      stack.connString({ user: 'nobody' }),
      stack.connString({ endpoint: 'ep-unknown-thing-999999' }),
    ];
    const bodies = [];
    for (const conn of conns) {
      const res = await post({ query: 'SELECT 1' }, {}, conn);
      expect(res.status).toBe(400);
      bodies.push(await readJson(res));
    }
    expect(bodies[0]).toEqual({ message: `password authentication failed for user '${USER}'`, ...Object.fromEntries(ERROR_KEYS.slice(1).map((k) => [k, k === 'code' || k === 'severity' ? '' : null])) });
    expect(bodies[1].message).toBe(`password authentication failed for user 'nobody'`);
    expect(bodies[2]).toEqual(bodies[0]);
  });

  it('item 28: an Authorization header is refused on the password path', async () => {
    const res = await post({ query: 'SELECT 1' }, { Authorization: 'Bearer abc' });
    expect(res.status).toBe(400);
    expect((await readJson(res)).message).toBe('missing authentication credentials: required password');
  });

  it('items 9, 10: parameters are untyped text; JSON values are converted', async () => {
    let body = await readJson(await post({ query: 'SELECT $1 AS x, $2 AS y', params: ['42', null] }));
    expect(body.fields.map((f: { dataTypeID: number }) => f.dataTypeID)).toEqual([25, 25]);
    expect(body.rows).toEqual([['42', null]]);
    body = await readJson(
      await post({
        query: 'SELECT $1::bool AS b, $2::numeric AS n, $3::jsonb AS j, $4::int[] AS a, $5::text[] AS t, $6::int[] AS nested',
        params: [true, 1.5, { k: [1, 'x'] }, [1, 2, null], ['a"b', 'c,d\\e', '{x}'], [[1], [2]]],
      }),
    );
    expect(body.rows).toEqual([['t', '1.5', '{"k": [1, "x"]}', '{1,2,NULL}', '{"a\\"b","c,d\\\\e","{x}"}', '{{1},{2}}']]);
  });

  it('item 11: raw text output is Postgres text, NULL is null', async () => {
    const body = await readJson(await post({ query: "SELECT true, 1.5::numeric, '{1,NULL}'::int[], '\\x01'::bytea, NULL::int" }));
    expect(body.rows).toEqual([['t', '1.5', '{1,NULL}', '\\x01', null]]);
  });

  it('items 12, 13: object rows without array mode, converted values without raw mode, per-query arrayMode', async () => {
    const q = "SELECT 1::int2 AS a, 2 AS b, 3::int8 AS c, 1.5::float8 AS d, 'NaN'::float4 AS e, true AS f, '{\"x\":[1]}'::jsonb AS g, '[0:1]={1,NULL}'::int[] AS h, '{\"q\\\"x\",y}'::text[] AS i, 2.5::numeric AS j, NULL AS k, 1 AS a";
    let res = await post({ query: q }, { 'Neon-Array-Mode': 'false', 'Neon-Raw-Text-Output': 'false' });
    let body = await readJson(res);
    expect(body.rowAsArray).toBe(false);
    expect(body.rows).toEqual([{ a: 1, b: 2, c: '3', d: 1.5, e: 'NaN', f: true, g: { x: [1] }, h: [1, null], i: ['q"x', 'y'], j: '2.5', k: null }]);
    res = await post({ query: 'SELECT 1 AS n', arrayMode: false });
    body = await readJson(res);
    expect(body.rowAsArray).toBe(false);
    expect(body.rows).toEqual([{ n: '1' }]);
    res = await post({ query: 'SELECT 1 AS n', arrayMode: true }, { 'Neon-Array-Mode': 'nope' });
    body = await readJson(res);
    expect(body.rowAsArray).toBe(true);
    expect(body.rows).toEqual([['1']]);
  });

  it('items 14, 15, 16: command tags, row counts, fields of table columns', async () => {
    const run = async (query: string) => readJson(await post({ query }));
    expect(await run('CREATE TABLE tags_t (id int PRIMARY KEY, v text)')).toEqual({ fields: [], rows: [], command: 'CREATE', rowCount: null, rowAsArray: true });
    expect(await run("INSERT INTO tags_t VALUES (1,'a'),(2,'b'),(3,'c')")).toMatchObject({ command: 'INSERT', rowCount: 3, fields: [], rows: [] });
    expect(await run("UPDATE tags_t SET v = 'z' WHERE id < 3")).toMatchObject({ command: 'UPDATE', rowCount: 2 });
    expect(await run('SELECT * FROM tags_t WHERE false')).toMatchObject({ command: 'SELECT', rowCount: 0, rows: [] });
    const sel = await run('SELECT v, id FROM tags_t ORDER BY id LIMIT 1');
    const oid = (await direct.query("SELECT 'tags_t'::regclass::oid AS oid")).rows[0].oid;
    expect(sel.fields).toEqual([
      { name: 'v', dataTypeID: 25, tableID: oid, columnID: 2, dataTypeSize: -1, dataTypeModifier: -1, format: 'text' },
      { name: 'id', dataTypeID: 23, tableID: oid, columnID: 1, dataTypeSize: 4, dataTypeModifier: -1, format: 'text' },
    ]);
    expect(await run('DROP TABLE tags_t')).toMatchObject({ command: 'DROP', rowCount: null });
  });

  it('item 17: batches return results in order; an empty batch returns no results', async () => {
    let res = await post({ queries: [] });
    expect(await res.text()).toBe('{"results":[]}');
    res = await post({ queries: [{ query: 'SELECT 1 AS a' }, { query: 'SELECT $1 AS b', params: ['x'] }] }, { 'Neon-Batch-Isolation-Level': 'RepeatableRead', 'Neon-Batch-Read-Only': 'true', 'Neon-Batch-Deferrable': 'true' });
    expect(res.status).toBe(200);
    expect(res.headers.get('neon-batch-isolation-level')).toBe('RepeatableRead');
    expect(res.headers.get('neon-batch-read-only')).toBe('true');
    expect(res.headers.get('neon-batch-deferrable')).toBe('true');
    const body = await readJson(res);
    expect(body.results.map((r: { rows: unknown }) => r.rows)).toEqual([[['1']], [['x']]]);
  });

  it('item 18: an unknown isolation level is a 400', async () => {
    const res = await post({ queries: [{ query: 'SELECT 1' }] }, { 'Neon-Batch-Isolation-Level': 'serializable' });
    expect(res.status).toBe(400);
    expect((await readJson(res)).message).toBe('invalid isolation level');
  });

  it('items 20-22: Postgres errors carry every field; parameter count and multi-statement errors', async () => {
    let res = await post({ query: 'SELECT * FROM nope' });
    expect(res.status).toBe(400);
    let body = await readJson(res);
    expect(Object.keys(body)).toEqual(ERROR_KEYS);
    expect(body).toMatchObject({ message: 'relation "nope" does not exist', code: '42P01', severity: 'ERROR', position: '15', file: 'parse_relation.c', routine: 'parserOpenTable' });
    expect(body.line).toMatch(/^\d+$/);
    res = await post({ query: 'SELECT $1::int' });
    expect(res.status).toBe(400);
    expect((await readJson(res)).message).toContain('bind message supplies 0 parameters');
    res = await post({ query: 'SELECT $1::int', params: ['1', '2'] });
    expect((await readJson(res)).message).toContain('bind message supplies 2 parameters');
    res = await post({ query: 'SELECT 1; SELECT 2' });
    expect(res.status).toBe(400);
    expect((await readJson(res)).message).toBe('cannot insert multiple commands into a prepared statement');
    await direct.query('CREATE TABLE IF NOT EXISTS cons_t (id int CONSTRAINT cons_t_pk PRIMARY KEY)');
    await direct.query('INSERT INTO cons_t VALUES (1) ON CONFLICT DO NOTHING');
    body = await readJson(await post({ query: 'INSERT INTO cons_t VALUES (1)' }));
    expect(body).toMatchObject({ code: '23505', schema: 'public', table: 'cons_t', constraint: 'cons_t_pk', detail: 'Key (id)=(1) already exists.' });
  });

  it('bad bodies are 400 with Neon\'s prefix', async () => {
    for (const b of ['not json', '{"queries": 3}', '{"query": 1}', '[]', '{"query":"SELECT 1","params":{}}']) {
      const res = await post(b);
      expect(res.status).toBe(400);
      const body = await readJson(res);
      expect(body.message).toMatch(/^could not parse the HTTP request body: /);
      expect(Object.keys(body)).toEqual(ERROR_KEYS);
    }
  });

  it('items 23, 24: a body over 10 MiB is a 413 with a JSON body', async () => {
    const big = JSON.stringify({ query: 'SELECT $1::text IS NOT NULL', params: ['x'.repeat(10 * 1024 * 1024)] });
    const res = await post(big);
    expect(res.status).toBe(413);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect((await readJson(res)).message).toBe('request is too large (max is 10485760 bytes)');
    const sql = neon(stack.connString());
    await expect(sql.query('SELECT $1::text IS NOT NULL', ['x'.repeat(10 * 1024 * 1024)])).rejects.toThrow(
      'Server error (HTTP status 413): {"message":"request is too large (max is 10485760 bytes)"',
    );
  });

  it('item 25: a result over 10 MiB is a 507, and the next request works', async () => {
    const res = await post({ query: "SELECT repeat('x', 1048576) FROM generate_series(1, 11)" });
    expect(res.status).toBe(507);
    expect((await readJson(res)).message).toBe('response is too large (max is 10485760 bytes)');
    const again = await post({ query: "SELECT length(repeat('x', 1048576)) FROM generate_series(1, 9)" });
    expect(again.status).toBe(200);
    expect((await readJson(again)).rows).toHaveLength(9);
  });

  it('item 27: session state never leaks to the next request on the same pooled connection', async () => {
    const pid = async () => (await readJson(await post({ query: 'SELECT pg_backend_pid() AS p' }))).rows[0][0];
    const settle = () => new Promise((r) => setTimeout(r, 100));
    const first = await pid();
    await settle();
    for (const q of [
      "SET IntervalStyle = 'iso_8601'",
      'BEGIN',
      'CREATE TEMP TABLE leak_t (x int)',
      'PREPARE leak_p AS SELECT 1',
      'SELECT pg_advisory_lock(42)',
      'LISTEN leak_channel',
      "SET SESSION AUTHORIZATION DEFAULT",
    ]) {
      expect((await post({ query: q })).status).toBe(200);
      await settle();
    }
    expect(await pid()).toBe(first); // same backend all along: the reset, not a new connection, cleaned up
    const state = await readJson(
      await post({
        query: `SELECT current_setting('IntervalStyle') AS style, pg_current_xact_id_if_assigned() IS NULL AS fresh_tx,
          (SELECT count(*) FROM pg_prepared_statements) AS prepared, to_regclass('pg_temp.leak_t') IS NULL AS no_temp,
          (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks,
          (SELECT count(*) FROM pg_listening_channels()) AS listens`,
      }),
    );
    expect(state.rows).toEqual([['postgres', 't', '0', 't', '0', '0']]);
    // the lone BEGIN did not leave a transaction block open: SAVEPOINT outside one is an error
    const sp = await readJson(await post({ query: 'SAVEPOINT s1' }));
    expect(sp.code).toBe('25P01');
  });

  it('Lakebase-Statement-Timeout cancels long queries and does not leak', async () => {
    let res = await post({ query: 'SELECT pg_sleep(1)' }, { 'Lakebase-Statement-Timeout': '100' });
    expect(res.status).toBe(400);
    expect((await readJson(res)).code).toBe('57014');
    res = await post({ query: "SELECT current_setting('statement_timeout')" });
    expect((await readJson(res)).rows).toEqual([['0']]);
    res = await post({ query: 'SELECT 1' }, { 'Lakebase-Statement-Timeout': 'soon' });
    expect(res.status).toBe(400);
  });

  it('issue 9 item 11: 65,535 parameters bind; more, deep nesting and 1e999 are 400s in serde_json words', async () => {
    const n = 65535;
    const query = `SELECT cardinality(ARRAY[${Array.from({ length: n }, (_, i) => `$${i + 1}`).join(',')}]::int[]) AS s`;
    let res = await post({ query, params: Array.from({ length: n }, () => 1) });
    expect(res.status).toBe(200);
    expect((await readJson(res)).rows).toEqual([[String(n)]]);
    res = await post({ query: 'SELECT 1', params: Array.from({ length: n + 1 }, () => 1) });
    expect(res.status).toBe(400);
    let body = await readJson(res);
    expect(Object.keys(body)).toEqual(ERROR_KEYS);
    expect(body.message).toBe('number of parameters must be between 0 and 65535');

    const deep = '['.repeat(10_000) + ']'.repeat(10_000);
    res = await post(`{"query":"SELECT $1","params":[${deep}]}`);
    expect(res.status).toBe(400);
    body = await readJson(res);
    expect(body.message).toBe('could not parse the HTTP request body: recursion limit exceeded at line 1 column 157');
    // 126 levels of array parameter (127 with the params array) are still fine, as with serde_json
    const ok = '['.repeat(125) + '1' + ']'.repeat(125);
    res = await post(`{"query":"SELECT $1::text","params":[${ok}]}`);
    expect(res.status).toBe(200);

    res = await post('{"query":"SELECT $1::text","params":[1e999]}');
    expect(res.status).toBe(400);
    expect((await readJson(res)).message).toBe('could not parse the HTTP request body: number out of range at line 1 column 42');
    res = await post('{"query":"SELECT $1::text","params":[{"a":[-1E+400]}]}');
    expect(res.status).toBe(400);
    // the digits inside a string are text, not a number
    res = await post('{"query":"SELECT $1::text AS t","params":["1e999 [[[["]}');
    expect((await readJson(res)).rows).toEqual([['1e999 [[[[']]);
  });

  it('a password change takes effect at once, even with pooled connections', async () => {
    await stack.directory.setRole(ENDPOINT, USER, 'new-password');
    try {
      expect((await post({ query: 'SELECT 1' })).status).toBe(400);
      expect((await post({ query: 'SELECT 1' }, {}, stack.connString({ password: 'new-password' }))).status).toBe(200);
    } finally {
      await stack.directory.setRole(ENDPOINT, USER, PASSWORD);
    }
  });
});

describe('the driver over HTTP equals node-postgres over TCP', () => {
  const TYPES_SQL = `SELECT 1::int2 AS i2, 2::int4 AS i4, 9007199254740993::int8 AS i8, 123.456::numeric AS num,
    1.25::float4 AS f4, 2.5::float8 AS f8, 'Infinity'::float8 AS inf, true AS b, false AS bf, 'txt ünï'::text AS t,
    '\\x0102ff'::bytea AS by, '{"a":[1,2]}'::json AS j, '{"b":null}'::jsonb AS jb, ARRAY[1,2,NULL]::int[] AS arr,
    ARRAY['a','b c',NULL]::text[] AS tarr, '2024-01-02 03:04:05.123+00'::timestamptz AS ts,
    '2024-01-02 03:04:05'::timestamp AS tsl, '2024-01-02'::date AS d, '1 day 02:03:04'::interval AS iv,
    NULL AS n, NULL::int AS ni, 'f3c1b7b6-1f0e-4d1a-9c1e-1a2b3c4d5e6f'::uuid AS u, ARRAY[1.5,2]::float8[] AS farr`;

  it('every common type parses to the same values', async () => {
    const sql = neon(stack.connString());
    const viaHttp = await sql.query(TYPES_SQL);
    const viaPg = await direct.query(TYPES_SQL);
    expect(viaHttp).toEqual(viaPg.rows);
    const tagged = await sql`SELECT ${1}::int AS a, ${'x'} AS b, ${null} AS c, ${[1, 2]}::int[] AS d, ${new Date('2020-01-01T00:00:00Z')}::timestamptz AS e,
      ${Buffer.from([1, 2, 255])}::bytea AS f, ${{ k: 'v' }}::jsonb AS g, ${true} AS h, ${10n}::int8 AS i`;
    expect(tagged).toEqual([{ a: 1, b: 'x', c: null, d: [1, 2], e: new Date('2020-01-01T00:00:00Z'), f: Buffer.from([1, 2, 255]), g: { k: 'v' }, h: 'true', i: '10' }]);
  });

  it('fullResults objects match node-postgres Result objects', async () => {
    const sql = neon(stack.connString(), { fullResults: true });
    // The same statements on twin tables, one through the proxy and one straight to PostgreSQL.
    await direct.query('CREATE TABLE full_h (id serial PRIMARY KEY, v text); CREATE TABLE full_p (id serial PRIMARY KEY, v text)');
    for (const [q, params] of [
      [TYPES_SQL, []],
      ['INSERT INTO {t} (v) VALUES ($1), ($2) RETURNING id, v', ['a', 'b']],
      ['UPDATE {t} SET v = v WHERE id > $1', [0]],
      ['SELECT * FROM {t} WHERE false', []],
      ['SELECT * FROM {t} ORDER BY id', []],
      ['DELETE FROM {t}', []],
      ['CREATE INDEX ON {t} (v)', []],
    ] as [string, unknown[]][]) {
      const h = await sql.query(q.replace('{t}', 'full_h'), params);
      const p = await direct.query(q.replace('{t}', 'full_p'), params);
      const pick = (r: { command: string; rowCount: number | null; fields: { tableID: number }[]; rowAsArray?: boolean; rows: unknown[] }) => ({
        command: r.command,
        rowCount: r.rowCount,
        fields: r.fields.map((f) => ({ ...f, tableID: f.tableID === 0 ? 0 : 'table' })),
        rowAsArray: r.rowAsArray,
        rows: r.rows,
      });
      expect(pick(h)).toEqual(pick(p));
    }
    const arr = await neon(stack.connString(), { fullResults: true, arrayMode: true }).query('SELECT 1 AS a, 2 AS b');
    const parr = await direct.query({ text: 'SELECT 1 AS a, 2 AS b', rowMode: 'array' });
    expect({ rows: arr.rows, rowAsArray: arr.rowAsArray, fields: arr.fields }).toEqual({ rows: parr.rows, rowAsArray: true, fields: parr.fields });
  });

  it('errors equal node-postgres errors field by field', async () => {
    const sql = neon(stack.connString());
    for (const q of ['SELECT 123 WHERE x', 'SELECT 1/0', "SELECT 'x'::int", 'SELEC 1']) {
      const h = await sql.query(q).catch((e: unknown) => e);
      const p = await direct.query(q).catch((e: unknown) => e);
      expect(h).toBeInstanceOf(NeonDbError);
      expect(p).toBeInstanceOf(pg.DatabaseError);
      for (const k of ['message', 'code', 'severity', 'detail', 'hint', 'position', 'internalPosition', 'internalQuery', 'where', 'schema', 'table', 'column', 'dataType', 'constraint', 'file', 'line', 'routine'] as const) {
        expect((h as NeonDbError)[k], k).toEqual((p as pg.DatabaseError)[k]);
      }
    }
  });

  it('transaction() with every isolation level, readOnly and deferrable', async () => {
    const sql = neon(stack.connString());
    const levels = { ReadUncommitted: 'read uncommitted', ReadCommitted: 'read committed', RepeatableRead: 'repeatable read', Serializable: 'serializable' } as const;
    for (const [level, shown] of Object.entries(levels)) {
      const [r] = await sql.transaction([sql`SHOW transaction_isolation`], { isolationLevel: level as keyof typeof levels });
      expect(r).toEqual([{ transaction_isolation: shown }]);
    }
    const [ro, def] = await sql.transaction([sql`SHOW transaction_read_only`, sql`SHOW transaction_deferrable`], { isolationLevel: 'Serializable', readOnly: true, deferrable: true });
    expect(ro).toEqual([{ transaction_read_only: 'on' }]);
    expect(def).toEqual([{ transaction_deferrable: 'on' }]);
    await sql`CREATE TABLE IF NOT EXISTS tx_t (v int)`;
    const err = await sql.transaction([sql`INSERT INTO tx_t VALUES (1)`], { readOnly: true }).catch((e: NeonDbError) => e);
    expect((err as NeonDbError).code).toBe('25006');
    expect(await sql.transaction([])).toEqual([]);
  });

  it('item 19: a failing batch commits nothing and reports the failing query', async () => {
    const sql = neon(stack.connString());
    await sql`CREATE TABLE IF NOT EXISTS batch_t (v int)`;
    const err = await sql.transaction([sql`INSERT INTO batch_t VALUES (1)`, sql`INSERT INTO batch_t VALUES (1/0)`]).catch((e: NeonDbError) => e);
    expect((err as NeonDbError).code).toBe('22012');
    expect(await sql`SELECT count(*)::int AS n FROM batch_t`).toEqual([{ n: 0 }]);
    const [a, b] = await sql.transaction((tx) => [tx`INSERT INTO batch_t VALUES (2) RETURNING v`, tx`SELECT count(*)::int AS n FROM batch_t`]);
    expect(a).toEqual([{ v: 2 }]);
    expect(b).toEqual([{ n: 1 }]);
  });

  it('item 26: aborting via fetchOptions.signal cancels the query and commits nothing', async () => {
    const sql = neon(stack.connString());
    await sql`CREATE TABLE IF NOT EXISTS abort_t (v int)`;
    const ctl = new AbortController();
    const started = Date.now();
    setTimeout(() => ctl.abort(), 250);
    const err = await sql.query('INSERT INTO abort_t SELECT 1 FROM pg_sleep(2)', [], { fetchOptions: { signal: ctl.signal } }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(Date.now() - started).toBeLessThan(1500);
    // The backend stops within ~100 ms: no pg_sleep left running, and no row, well before the 2 s are up.
    await expect.poll(async () => (await direct.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'INSERT INTO abort_t%'")).rows[0].n, { timeout: 1000, interval: 50 }).toBe(0);
    expect(Date.now() - started).toBeLessThan(1900);
    expect((await direct.query('SELECT count(*)::int AS n FROM abort_t')).rows[0].n).toBe(0);
  });

  it('Pool.query via fetch (poolQueryViaFetch) works too', async () => {
    const { Pool } = await import('@neondatabase/serverless');
    neonConfig.poolQueryViaFetch = true;
    try {
      const pool = new Pool({ connectionString: stack.connString() });
      const r = await pool.query('SELECT $1::int + 1 AS n', [1]);
      expect(r.rows).toEqual([{ n: 2 }]);
      expect((r as unknown as { viaNeonFetch: boolean }).viaNeonFetch).toBe(true);
      await pool.end();
    } finally {
      neonConfig.poolQueryViaFetch = false;
    }
  });
});
