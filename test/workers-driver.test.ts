// The unmodified driver inside workerd (a probe Worker) against a running lakebase, over both paths:
// `neon()` (SQL over HTTP) and a `Pool` session (WebSocket), each checked value for value and type for type
// against the same query through node-postgres over TCP to the proxy.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, tcpClient, type WorkersBackend } from './support/workers-backend.ts';
import { startWorkers, type WorkersHarness } from './support/workers-miniflare.ts';
import type { ProbeResponse, ProbeResult, ProbeStatement } from './support/workers-probe-worker.ts';
import { encodeRows } from './support/workers-values.ts';

// workerd runs in UTC; so must node-postgres here for `timestamp` (without time zone) to parse alike.
process.env.TZ = 'UTC';

let backend: WorkersBackend;
let workers: WorkersHarness;
let tcp: pg.Client;

beforeAll(async () => {
  backend = await startBackend();
  workers = await startWorkers({ proxyOrigin: backend.proxyOrigin, databaseUrl: backend.connectionString });
  tcp = await tcpClient(backend);
}, 180_000);

afterAll(async () => {
  await tcp?.end();
  await workers?.dispose();
  await backend?.close();
});

/** Every common type, as literals (the text parsers) and as parameters (the driver's value encoding). */
const TYPES_SQL = `SELECT
  1::int2 AS i2, 2147483647::int4 AS i4, 9007199254740993::int8 AS i8, 123.456::numeric(10,3) AS num,
  1.5::float4 AS f4, 2.25::float8 AS f8, 'NaN'::float8 AS nan, true AS t, false AS f,
  'héllo ✓ 🐘'::text AS txt, 'abc'::varchar(5) AS vc, 'ab'::char(4) AS ch, ''::text AS empty,
  '\\x00ff10'::bytea AS by, '{"a":[1,2,{"b":null}],"c":"ü"}'::json AS js, '{"k": [1, 2.5, "x"]}'::jsonb AS jb,
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS id, '2024-02-29'::date AS d, '13:14:15.5'::time AS tm,
  '2024-01-02 03:04:05.678'::timestamp AS ts, '2024-01-02 03:04:05.678+02'::timestamptz AS tstz,
  '1 year 2 mons 3 days 04:05:06.7'::interval AS iv, ARRAY[1, NULL, 3]::int4[] AS ia,
  ARRAY['a', 'b c', NULL, '"q"']::text[] AS ta, ARRAY[true, false]::bool[] AS ba,
  '{{1,2},{3,4}}'::int8[] AS i8a, '192.168.1.0/24'::cidr AS net, '10.0.0.1'::inet AS ip, 42::oid AS o,
  'x'::name AS nm, NULL::int AS nul, NULL AS untyped`;

const PARAMS_SQL = `SELECT $1::int AS i, $2::text AS t, $3::bool AS b, $4::float8 AS f, $5::jsonb AS j,
  $6::int[] AS a, $7::timestamptz AS ts, $8::bytea AS by, $9::text AS n, $10::numeric AS num, $11::date AS d`;
const PARAMS = [7, 'it\'s "quoted"', true, -0.5, JSON.stringify({ x: [1, 'two'] }), [1, 2, 3], '2024-05-06T07:08:09.123Z', '\\x0102', null, '1e-20', '2020-01-01'];

async function viaTcp(statement: ProbeStatement): Promise<ProbeResult> {
  const r = await tcp.query(statement.text, statement.params as unknown[]);
  return {
    command: r.command,
    rowCount: r.rowCount,
    fields: r.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
    rows: encodeRows(r.rows),
  };
}

function results(res: ProbeResponse): ProbeResult[] {
  if (!res.ok) throw new Error(`probe failed: ${res.error.message} (${res.error.code})`);
  return res.results;
}

describe.each(['http', 'ws'] as const)('driver in workerd over %s', (via) => {
  it('every common type, as literals, equals pg over TCP', async () => {
    const statement = { text: TYPES_SQL };
    const [inWorker] = results(await workers.probe({ via, statements: [statement] }));
    const reference = await viaTcp(statement);
    expect(inWorker).toEqual(reference);
    // The values really are typed on both sides, not strings that happen to agree.
    expect(inWorker.rows[0]).toMatchObject({ i4: 2147483647, t: true, ia: [1, null, 3], jb: { $object: { k: [1, 2.5, 'x'] } } });
    expect(inWorker.rows[0].tstz).toEqual({ $date: '2024-01-02T01:04:05.678Z' });
    expect(inWorker.rows[0].by).toEqual({ $bytes: '00ff10' });
  });

  it('parameters of every common type equal pg over TCP', async () => {
    const statement = { text: PARAMS_SQL, params: PARAMS };
    const [inWorker] = results(await workers.probe({ via, statements: [statement] }));
    expect(inWorker).toEqual(await viaTcp(statement));
    expect(inWorker.rows[0]).toMatchObject({ i: 7, t: PARAMS[1], n: null, a: [1, 2, 3], by: { $bytes: '0102' } });
  });

  it('errors carry the same SQLSTATE as over TCP', async () => {
    const res = await workers.probe({ via, statements: [{ text: 'SELECT * FROM no_such_table' }] });
    const tcpError = (await tcp.query('SELECT * FROM no_such_table').catch((e: Error) => e)) as Error & { code: string };
    expect(res).toEqual({ ok: false, error: { message: tcpError.message, code: tcpError.code } });
  });
});

describe('Pool session in workerd (WebSocket)', () => {
  it('BEGIN ... COMMIT: rows written in the session are visible over TCP, results equal pg over TCP', async () => {
    await tcp.query('CREATE TABLE IF NOT EXISTS probe_ledger (id serial PRIMARY KEY, who text NOT NULL, amount numeric NOT NULL, at timestamptz NOT NULL DEFAULT now())');
    const statements: ProbeStatement[] = [
      { text: 'BEGIN' },
      { text: "INSERT INTO probe_ledger (who, amount) VALUES ($1, $2), ($1, $3) RETURNING who, amount", params: ['ws-session', '10.50', '-2.25'] },
      { text: "SELECT current_setting('transaction_isolation') AS iso, txid_current() = txid_current() AS same_txn" },
      { text: 'SELECT who, sum(amount) AS total, count(*)::int AS n FROM probe_ledger WHERE who = $1 GROUP BY who', params: ['ws-session'] },
      { text: 'COMMIT' },
    ];
    const inWorker = results(await workers.probe({ via: 'ws', statements }));
    expect(inWorker.map((r) => r.command)).toEqual(['BEGIN', 'INSERT', 'SELECT', 'SELECT', 'COMMIT']);
    expect(inWorker[1].rows).toEqual([
      { who: 'ws-session', amount: '10.50' },
      { who: 'ws-session', amount: '-2.25' },
    ]);
    // Committed: pg over TCP reads the same rows, and the same query gives the same result, field for field.
    expect(inWorker[3]).toEqual(await viaTcp(statements[3]));
    expect(inWorker[3].rows).toEqual([{ who: 'ws-session', total: '8.25', n: 2 }]);
    expect(inWorker[2]).toEqual(await viaTcp(statements[2]));
  });

  it('BEGIN ... ROLLBACK leaves nothing behind', async () => {
    const inWorker = results(
      await workers.probe({
        via: 'ws',
        statements: [
          { text: 'BEGIN' },
          { text: 'INSERT INTO probe_ledger (who, amount) VALUES ($1, 1)', params: ['rolled-back'] },
          { text: 'SELECT count(*)::int AS n FROM probe_ledger WHERE who = $1', params: ['rolled-back'] },
          { text: 'ROLLBACK' },
        ],
      }),
    );
    expect(inWorker[2].rows).toEqual([{ n: 1 }]);
    expect((await tcp.query('SELECT count(*)::int AS n FROM probe_ledger WHERE who = $1', ['rolled-back'])).rows).toEqual([{ n: 0 }]);
  });
});
