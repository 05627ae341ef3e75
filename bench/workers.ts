// Workers benchmarks: latency of a `neon()` point lookup made from inside workerd (Miniflare, the real
// driver in the probe Worker) to the lakebase, directly through the proxy and through the edge gateway,
// with and without its result cache. Backend: test/support/workers-backend.ts (`startBackend`).
// Run: npm run bench -- workers
import pg from 'pg';
import { startBackend } from '../test/support/workers-backend.ts';
import { startWorkers } from '../test/support/workers-miniflare.ts';
import type { ProbeRequest, ProbeResponse } from '../test/support/workers-probe-worker.ts';
import { fmtMs, nowMs, percentile, printTable, progress } from './support/stats.ts';

const ROWS = 10_000;
const N = 500;

function ok(res: ProbeResponse): { ms: number[] } {
  if (!res.ok) throw new Error(`probe failed: ${res.error.message}`);
  return res;
}

export async function runWorkersBenchmarks(): Promise<string[]> {
  const tables: string[] = [];
  progress('starting the backend and Miniflare (workerd)');
  const backend = await startBackend();
  const workers = await startWorkers({ proxyOrigin: backend.proxyOrigin, databaseUrl: backend.connectionString });
  try {
    const tcp = new pg.Client(backend.tcpConfig());
    await tcp.connect();
    await tcp.query('CREATE TABLE IF NOT EXISTS bench_kv (k int PRIMARY KEY, v text NOT NULL)');
    await tcp.query(`INSERT INTO bench_kv SELECT g, md5(g::text) FROM generate_series(1, ${ROWS}) g ON CONFLICT DO NOTHING`);
    await tcp.end();

    const lookup = (k: number) => ({ text: 'SELECT v FROM bench_kv WHERE k = $1', params: [k] });
    const randomKey = () => 1 + Math.floor(Math.random() * ROWS);
    const cases: Array<[string, (i: number) => ProbeRequest]> = [
      ['proxy (direct)', () => ({ via: 'http', statements: [lookup(randomKey())] })],
      ['gateway, no cache header', () => ({ via: 'http', proxy: workers.gatewayOrigin, statements: [lookup(randomKey())] })],
      // Distinct keys: every request is a miss (a one-query READ ONLY batch at the proxy, then a cache put).
      ['gateway, cache miss (TTL 60)', (i) => ({ via: 'http', proxy: workers.gatewayOrigin, cacheTtl: 60, statements: [lookup(((i * 7919) % ROWS) + 1)] })],
      ['gateway, cache hit (TTL 60)', () => ({ via: 'http', proxy: workers.gatewayOrigin, cacheTtl: 60, statements: [lookup(42)] })],
    ];

    progress('in-Worker latency (one Worker request running N lookups; workerd clock, 1 ms resolution)');
    const inWorker: string[][] = [];
    for (const [name, make] of cases) {
      // Warm up: connections, the isolate, and (for the hit case) the cache entry.
      for (let i = 0; i < 20; i++) ok(await workers.probe(make(N + i)));
      const statements = Array.from({ length: N }, (_, i) => make(i).statements[0]);
      const { ms } = ok(await workers.probe({ ...make(0), statements }));
      inWorker.push([name, `${percentile(ms, 50)} ms`, `${percentile(ms, 99)} ms`, `${(ms.reduce((a, b) => a + b, 0) / ms.length).toFixed(2)} ms`]);
    }
    tables.push(
      printTable(`neon() point lookup from inside workerd (${N} sequential queries, timed in the Worker)`, ['path', 'p50', 'p99', 'mean'], inWorker),
    );

    progress('end-to-end latency (Node -> workerd -> lookup -> Node, one query per Worker request)');
    const endToEnd: string[][] = [];
    const baseline: ProbeRequest = { via: 'http', statements: [] };
    const all: Array<[string, (i: number) => ProbeRequest]> = [['no query (harness only)', () => baseline], ...cases];
    for (const [name, make] of all) {
      const t: number[] = [];
      for (let i = 0; i < N; i++) {
        const req = make(2 * N + i);
        const t0 = nowMs();
        ok(await workers.probe(req));
        t.push(nowMs() - t0);
      }
      endToEnd.push([name, fmtMs(percentile(t, 50)), fmtMs(percentile(t, 99))]);
    }
    tables.push(
      printTable(`Worker request with one neon() point lookup, timed from Node (${N} requests; backend: ${backend.name})`, ['path', 'p50', 'p99'], endToEnd),
    );
  } finally {
    await workers.dispose();
    await backend.close();
  }
  return tables;
}
