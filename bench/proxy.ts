// Proxy benchmarks on the whole lakebase (`lakebase start`): HTTP /sql latency and throughput, WebSocket
// connect + first query, TCP connect, and end-to-end cold start from a suspended endpoint; against native
// PostgreSQL over pg (TCP) and PGlite in-process, in the same run.
// Run: npm run bench -- proxy
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { neon, neonConfig, Pool } from '@neondatabase/serverless';
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

export async function runProxyBenchmarks(): Promise<string[]> {
  const tables: string[] = [];
  progress('starting the lakebase (lakebase start) and a native PostgreSQL');
  const stack = await startLakebaseStack();
  const native = await startNativePostgres();
  const pgliteDir = await mkdtemp(join(tmpdir(), 'lakebase-bench-pglite-'));
  const pglite = await PGlite.create({ dataDir: pgliteDir });
  try {
    neonConfig.fetchEndpoint = () => stack.sqlUrl;
    neonConfig.wsProxy = () => stack.wsProxy;
    neonConfig.useSecureWebSocket = false;
    neonConfig.webSocketConstructor = ws;
    const sql = neon(stack.project.connectionString);
    const setup = 'CREATE TABLE IF NOT EXISTS kv (k int PRIMARY KEY, v text); INSERT INTO kv SELECT g, md5(g::text) FROM generate_series(1, 10000) g ON CONFLICT DO NOTHING';
    for (const s of setup.split('; ')) await sql.query(s);
    const nat = new pg.Client({ connectionString: native.url() });
    await nat.connect();
    for (const s of setup.split('; ')) await nat.query(s);
    for (const s of setup.split('; ')) await pglite.query(s);
    const tcpLake = new pg.Client({ connectionString: stack.project.connectionString });
    await tcpLake.connect();

    progress('latency');
    const key = () => 1 + Math.floor(Math.random() * 10000);
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
      const t = await timeEach(N, fn);
      rows.push([name, fmtMs(percentile(t, 50)), fmtMs(percentile(t, 99))]);
    }
    tables.push(printTable(`Query latency, one at a time (${N} queries)`, ['path', 'p50', 'p99'], rows));

    progress('throughput');
    const trows: string[][] = [];
    for (const c of [1, 8, 32]) {
      trows.push([
        String(c),
        fmtNum(await throughput(c, 3, () => sql`SELECT 1`)),
        fmtNum(await throughput(c, 3, () => sql`SELECT v FROM kv WHERE k = ${key()}`)),
        fmtNum(await throughput(c, 3, () => nat.query('SELECT v FROM kv WHERE k = $1', [key()]))),
      ]);
    }
    tables.push(printTable('Throughput, queries/s (3 s per cell; clients, proxy, compute and storage share the 2 cores)', ['concurrent clients', 'lakebase HTTP SELECT 1', 'lakebase HTTP point lookup', 'native PG (one pg connection) point lookup'], trows));

    progress('connect');
    const wsConnect = await timeEach(50, async () => {
      const pool = new Pool({ connectionString: stack.project.connectionString });
      await pool.query('SELECT 1');
      await pool.end();
    });
    const tcpConnect = await timeEach(50, async () => {
      const c = new pg.Client({ connectionString: stack.project.connectionString });
      await c.connect();
      await c.end();
    });
    const natConnect = await timeEach(50, async () => {
      const c = new pg.Client({ connectionString: native.url() });
      await c.connect();
      await c.end();
    });
    tables.push(printTable('Connection setup', ['what', 'p50', 'p99'], [
      ['lakebase: WebSocket (Pool) connect + first query', fmtMs(percentile(wsConnect, 50)), fmtMs(percentile(wsConnect, 99))],
      ['lakebase: TCP connect (SCRAM) via the proxy', fmtMs(percentile(tcpConnect, 50)), fmtMs(percentile(tcpConnect, 99))],
      ['native PostgreSQL 15: TCP connect (SCRAM)', fmtMs(percentile(natConnect, 50)), fmtMs(percentile(natConnect, 99))],
    ]));

    // Suspending the endpoint terminates this session (57P01, an 'error' event that would crash the run): end it first.
    await tcpLake.end();
    progress('cold start: suspend, then the first neon() query');
    const cold: number[] = [];
    for (let i = 0; i < 15; i++) {
      await stack.suspend();
      const t0 = nowMs();
      await sql`SELECT v FROM kv WHERE k = 1`;
      cold.push(nowMs() - t0);
    }
    tables.push(printTable('End-to-end cold start: first neon() query to a suspended endpoint (15 runs)', ['p50', 'p99', 'min'], [
      [fmtMs(percentile(cold, 50)), fmtMs(percentile(cold, 99)), fmtMs(Math.min(...cold))],
    ]));
    await nat.end();
  } finally {
    await pglite.close();
    await rm(pgliteDir, { recursive: true, force: true });
    await native.stop();
    await stack.stop();
  }
  return tables;
}
