// Proxy benchmarks on the whole lakebase (`lakebase start`): HTTP /sql latency and throughput, WebSocket
// connect + first query, TCP connect, and end-to-end cold start from a suspended endpoint; against native
// PostgreSQL over pg (TCP) and PGlite in-process, in the same run.
// Run: npm run bench -- proxy
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { neon, neonConfig, type NeonQueryFunction, Pool } from '@neondatabase/serverless';
import pg from 'pg';
import ws from 'ws';
import { startLakebaseStack } from '../test/support/lakebase-stack.ts';
import { startNativePostgres } from '../test/support/native-postgres.ts';
import { fmtMs, fmtNum, nowMs, percentile, printTable, progress, timeEach } from './support/stats.ts';

const N = 1000;

async function throughput(concurrency: number, seconds: number, fn: () => Promise<unknown>): Promise<number> {
  let n = 0;
  const end = nowMs() + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (nowMs() < end) {
      await fn();
      n++;
    }
  }));
  return n / seconds;
}

type LakebaseStack = Awaited<ReturnType<typeof startLakebaseStack>>;
type Sql = NeonQueryFunction<false, false>;

/** What every table queries: the lakebase over HTTP and TCP, native PostgreSQL, PGlite in-process. */
interface Targets {
  stack: LakebaseStack;
  sql: Sql;
  tcpLake: pg.Client;
  nat: pg.Client;
  natUrl: string;
  pglite: PGlite;
}

const key = (): number => 1 + Math.floor(Math.random() * 10000);

async function latencyTable(t: Targets): Promise<string> {
  progress('latency');
  const { sql, tcpLake, nat, pglite } = t;
  const cases: [string, () => Promise<unknown>][] = [
    ['lakebase: neon() over HTTP, SELECT 1', () => sql`SELECT 1`],
    ['lakebase: neon() over HTTP, point lookup', () => sql`SELECT v FROM kv WHERE k = ${key()}`],
    ['lakebase: pg over TCP via the proxy, point lookup', () => tcpLake.query('SELECT v FROM kv WHERE k = $1', [key()])],
    ['native PostgreSQL 15: pg over TCP, SELECT 1', () => nat.query('SELECT 1')],
    ['native PostgreSQL 15: pg over TCP, point lookup', () => nat.query('SELECT v FROM kv WHERE k = $1', [key()])],
    ['PGlite in-process, point lookup', () => pglite.query('SELECT v FROM kv WHERE k = $1', [key()])],
  ];
  const rows: string[][] = [];
  for (const [name, fn] of cases) {
    for (let i = 0; i < 100; i++) await fn();
    const times = await timeEach(N, fn);
    rows.push([name, fmtMs(percentile(times, 50)), fmtMs(percentile(times, 99))]);
  }
  return printTable(`Query latency, one at a time (${N} queries)`, ['path', 'p50', 'p99'], rows);
}

async function throughputTable(t: Targets): Promise<string> {
  progress('throughput');
  const { sql, nat } = t;
  const rows: string[][] = [];
  for (const c of [1, 8, 32]) {
    rows.push([
      String(c),
      fmtNum(await throughput(c, 3, () => sql`SELECT 1`)),
      fmtNum(await throughput(c, 3, () => sql`SELECT v FROM kv WHERE k = ${key()}`)),
      fmtNum(await throughput(c, 3, () => nat.query('SELECT v FROM kv WHERE k = $1', [key()]))),
    ]);
  }
  return printTable('Throughput, queries/s (3 s per cell; clients, proxy, compute and storage share the 2 cores)', ['concurrent clients', 'lakebase HTTP SELECT 1', 'lakebase HTTP point lookup', 'native PG (one pg connection) point lookup'], rows);
}

async function connectTable(t: Targets): Promise<string> {
  progress('connect');
  const lakeUrl = t.stack.project.connectionString;
  const wsConnect = await timeEach(50, async () => {
    const pool = new Pool({ connectionString: lakeUrl });
    await pool.query('SELECT 1');
    await pool.end();
  });
  const tcpConnect = (url: string) => timeEach(50, async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.end();
  });
  const lakeTcp = await tcpConnect(lakeUrl);
  const natTcp = await tcpConnect(t.natUrl);
  const row = (what: string, times: number[]) => [what, fmtMs(percentile(times, 50)), fmtMs(percentile(times, 99))];
  return printTable('Connection setup', ['what', 'p50', 'p99'], [
    row('lakebase: WebSocket (Pool) connect + first query', wsConnect),
    row('lakebase: TCP connect (SCRAM) via the proxy', lakeTcp),
    row('native PostgreSQL 15: TCP connect (SCRAM)', natTcp),
  ]);
}

async function coldStartTable(t: Targets): Promise<string> {
  progress('cold start: suspend, then the first neon() query');
  const cold: number[] = [];
  for (let i = 0; i < 15; i++) {
    await t.stack.suspend();
    const t0 = nowMs();
    await t.sql`SELECT v FROM kv WHERE k = 1`;
    cold.push(nowMs() - t0);
  }
  return printTable('End-to-end cold start: first neon() query to a suspended endpoint (15 runs)', ['p50', 'p99', 'min'], [
    [fmtMs(percentile(cold, 50)), fmtMs(percentile(cold, 99)), fmtMs(Math.min(...cold))],
  ]);
}

const SETUP = ['CREATE TABLE IF NOT EXISTS kv (k int PRIMARY KEY, v text)', 'INSERT INTO kv SELECT g, md5(g::text) FROM generate_series(1, 10000) g ON CONFLICT DO NOTHING'];

/** The same table in all three databases, and the clients the tables use. */
async function connectTargets(stack: LakebaseStack, natUrl: string, pglite: PGlite): Promise<Targets> {
  neonConfig.fetchEndpoint = () => stack.sqlUrl;
  neonConfig.wsProxy = () => stack.wsProxy;
  neonConfig.useSecureWebSocket = false;
  neonConfig.webSocketConstructor = ws;
  const sql = neon(stack.project.connectionString);
  const nat = new pg.Client({ connectionString: natUrl });
  await nat.connect();
  for (const s of SETUP) {
    await sql.query(s);
    await nat.query(s);
    await pglite.query(s);
  }
  const tcpLake = new pg.Client({ connectionString: stack.project.connectionString });
  await tcpLake.connect();
  return { stack, sql, tcpLake, nat, natUrl, pglite };
}

export async function runProxyBenchmarks(): Promise<string[]> {
  progress('starting the lakebase (lakebase start) and a native PostgreSQL');
  const stack = await startLakebaseStack();
  const native = await startNativePostgres();
  const pgliteDir = await mkdtemp(join(tmpdir(), 'lakebase-bench-pglite-'));
  const pglite = await PGlite.create({ dataDir: pgliteDir });
  try {
    const t = await connectTargets(stack, native.url(), pglite);
    const tables = [await latencyTable(t), await throughputTable(t), await connectTable(t)];
    // Suspending the endpoint terminates this session (57P01, an 'error' event that would crash the run): end it first.
    await t.tcpLake.end();
    tables.push(await coldStartTable(t));
    await t.nat.end();
    return tables;
  } finally {
    await pglite.close();
    await rm(pgliteDir, { recursive: true, force: true });
    await native.stop();
    await stack.stop();
  }
}
