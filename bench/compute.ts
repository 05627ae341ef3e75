// Compute benchmarks: cold start to the first query's result (compute host with and without its pool of
// pre-started workers, PGlite opening a local data directory, native PostgreSQL `pg_ctl start`), what a start
// reads from the storage node, query latency and commits/s over the wire against PGlite in-process on local
// files (and native PostgreSQL), and RSS per active compute.
// Run: npm run bench -- compute   (BENCH_LARGE=0 skips the ~100 MB database; BENCH_STARTS=N sets start samples)
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { StorageClient } from '../storage-node/client.ts';
import { createTemplateTimeline, initLocalDataDir } from '../compute/template.ts';
import { getPgliteWasmModule } from '../compute/wasm.ts';
import { startStorageProcess } from '../test/support/storage-process.ts';
import type { StorageProcess } from '../test/support/storage-process.ts';
import { connectPg, startHostProcess } from '../test/support/compute-host.ts';
import type { HostProcess, StartedCompute } from '../test/support/compute-host.ts';
import { freePort } from '../test/support/native-postgres.ts';
import { fmtMs, fmtNum, mean, nowMs, percentile, printTable, progress, timeEach } from './support/stats.ts';
import { SESSION_RESET_SQL, STATELESS_PARAM } from '../lib/compute-startup.ts';
import { BackendConnection } from '../proxy/compute/connection.ts';
import { runSimple } from '../proxy/http/sql-executor.ts';

const TOKEN = 'bench-token';
const MiB = 1024 * 1024;
const STARTS = Number(process.env.BENCH_STARTS ?? 15);
const LATENCY_N = 2000;
const PG_BIN = '/usr/lib/postgresql/15/bin';

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function waitPoolFull(h: HostProcess, size: number): Promise<void> {
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    const s = await h.api.request<{ pool: { idle: number } }>('GET', '/healthz');
    if (s.pool.idle >= size) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** POST /v1/computes, connect, SELECT 1 -> result; then stop. Returns the times and the start answers. */
async function hostStarts(h: HostProcess, tl: string, n: number, poolSize: number): Promise<{ ms: number[]; answers: StartedCompute[] }> {
  const ms: number[] = [];
  const answers: StartedCompute[] = [];
  for (let i = 0; i < n; i++) {
    if (poolSize > 0) await waitPoolFull(h, poolSize);
    else await new Promise((r) => setTimeout(r, 100));
    const t0 = nowMs();
    const c = await h.api.start({ computeId: 'ep-bench-start', timelineId: tl });
    const client = await connectPg(c, TOKEN);
    await client.query('SELECT 1');
    ms.push(nowMs() - t0);
    answers.push(c);
    await client.end();
    await h.api.stop('ep-bench-start');
  }
  return { ms, answers };
}

async function pgliteLocalStarts(dir: string, n: number): Promise<number[]> {
  const pgliteWasmModule = await getPgliteWasmModule();
  return timeEach(n, async () => {
    const db = await PGlite.create({ dataDir: dir, database: 'neondb', pgliteWasmModule });
    await db.query('SELECT 1');
    await db.close();
  });
}

interface NativeCluster {
  dir: string;
  port: number;
  run(args: string[]): void;
  cleanup(): void;
}

function nativeCluster(port: number): NativeCluster {
  const root = mkdtempSync(join(tmpdir(), 'lakebase-bench-pg-'));
  chownSync(root, uidOf('postgres'), gidOf('postgres'));
  const dir = join(root, 'data');
  const run = (args: string[]): void => {
    execFileSync('runuser', ['-u', 'postgres', '--', ...args], { stdio: 'ignore' });
  };
  run([`${PG_BIN}/initdb`, '-D', dir, '-U', 'postgres', '--auth=trust', '-N']);
  return { dir, port, run, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

function uidOf(user: string): number {
  return Number(execFileSync('id', ['-u', user]).toString().trim());
}
function gidOf(user: string): number {
  return Number(execFileSync('id', ['-g', user]).toString().trim());
}

async function nativeStarts(cl: NativeCluster, n: number): Promise<number[]> {
  const start = (): void => cl.run([`${PG_BIN}/pg_ctl`, '-D', cl.dir, '-o', `-p ${cl.port} -k ${cl.dir} -c listen_addresses=127.0.0.1 -c shared_buffers=16MB`, '-w', '-l', `${cl.dir}/log`, 'start']);
  const stop = (): void => cl.run([`${PG_BIN}/pg_ctl`, '-D', cl.dir, '-m', 'fast', '-w', 'stop']);
  return timeEach(n, async () => {
    start();
    const client = new pg.Client({ host: '127.0.0.1', port: cl.port, user: 'postgres', database: 'postgres' });
    await client.connect();
    await client.query('SELECT 1');
    await client.end();
    stop();
  });
}

async function latency(query: (sql: string, params?: unknown[]) => Promise<unknown>): Promise<{ one: number[]; lookup: number[] }> {
  for (let i = 0; i < 300; i++) await query('SELECT 1');
  const one = await timeEach(LATENCY_N, () => query('SELECT 1'));
  for (let i = 0; i < 300; i++) await query('SELECT pad FROM items WHERE id = $1', [1 + (i % 10_000)]);
  const lookup = await timeEach(LATENCY_N, (i) => query('SELECT pad FROM items WHERE id = $1', [1 + ((i * 7919) % 10_000)]));
  return { one, lookup };
}

/**
 * What a hand-off costs (saving one session's state, restoring another's): one session alone, two wire sessions
 * taking turns, and two stateless sessions (the proxy's HTTP pool) taking turns, each statement followed by the
 * proxy's session reset, as the proxy sends it.
 */
async function handOffRows(c: StartedCompute, one: (sql: string) => Promise<unknown>): Promise<string[][]> {
  progress('session hand-off: one session, two taking turns, two stateless (HTTP pool) taking turns');
  const other = await connectPg(c, TOKEN);
  const open = (): Promise<BackendConnection> => BackendConnection.connect(
    { host: c.host, port: c.port, password: TOKEN, engine: 'pglite' as const },
    { user: 'postgres', database: 'neondb', extra: { client_encoding: 'UTF8', [STATELESS_PARAM]: 'on' } },
  );
  const http = [await open(), await open()];
  const alone = await timeEach(LATENCY_N, () => one('SELECT 1'));
  const turns = await timeEach(LATENCY_N, (i) => (i % 2 === 0 ? one('SELECT 1') : other.query('SELECT 1')));
  const aloneReset = await timeEach(LATENCY_N, () => runSimple(http[0], 'SELECT 1').then(() => runSimple(http[0], SESSION_RESET_SQL)));
  const statelessTurns = await timeEach(LATENCY_N, (i) => runSimple(http[i % 2], 'SELECT 1').then(() => runSimple(http[i % 2], SESSION_RESET_SQL)));
  await other.end();
  for (const h of http) h.destroy();
  const row = (label: string, xs: number[], base: number[]): string[] => [label, fmtMs(percentile(xs, 50)), fmtMs(percentile(xs, 99)), base === xs ? '-' : fmtMs(percentile(xs, 50) - percentile(base, 50))];
  return [
    row('one wire session', alone, alone),
    row('two wire sessions taking turns (every statement a hand-off)', turns, alone),
    row('one stateless session, statement + session reset', aloneReset, aloneReset),
    row('two stateless sessions of one role taking turns, statement + reset', statelessTurns, aloneReset),
  ];
}

async function commitsPerSecond(clients: ((sql: string, params?: unknown[]) => Promise<unknown>)[], seconds: number, base: number): Promise<number> {
  let n = 0;
  const end = nowMs() + seconds * 1000;
  await Promise.all(clients.map(async (q, w) => {
    for (let i = 0; nowMs() < end; i++) {
      await q('INSERT INTO commits VALUES ($1, $2)', [base + w * 10_000_000 + i, 'x']);
      n++;
    }
  }));
  return n / seconds;
}

const SETUP_SQL = [
  "CREATE TABLE items (id int PRIMARY KEY, pad text); INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 10000) g",
  'CREATE TABLE commits (id bigint PRIMARY KEY, note text)',
];

/** What every table uses: the storage node, a project timeline with the 10k-row table, the pooled host. */
interface Bench {
  root: string;
  /** Every process started, killed at the end whatever happened. */
  procs: { kill9(): Promise<void> }[];
  storage: StorageProcess;
  sc: StorageClient;
  templateId: string;
  project: string;
  pooledHost: HostProcess;
  /** PGlite's local data directory (the in-process reference), made by the cold start table. */
  localDir: string;
  /** Native PostgreSQL, when this machine has it (made by the cold start table). */
  native: NativeCluster | null;
}

const hostArgs = (b: Pick<Bench, 'storage'>, args: string[]) => ({ storageUrl: b.storage.url, storageToken: b.storage.token, token: TOKEN, args });

async function setUp(root: string, procs: Bench['procs']): Promise<Bench> {
  progress('compute: storage node process, template timeline, a project with a 10k-row table');
  const storage: StorageProcess = await startStorageProcess(['--data-dir', join(root, 'storage')], { LAKEBASE_OBJECT_STORE_DIR: join(root, 'objects') });
  procs.push(storage);
  const sc = new StorageClient(storage.url, storage.token);
  const template = await createTemplateTimeline({ storageUrl: storage.url, storageToken: storage.token });
  const project = (await sc.createTimeline({ ancestorTimelineId: template.timelineId })).timelineId;
  const pooledHost = await startHostProcess(hostArgs({ storage }, ['--pool-size', '1']));
  procs.push(pooledHost);
  const c = await pooledHost.api.start({ computeId: 'ep-setup', timelineId: project });
  const db = await connectPg(c, TOKEN);
  for (const sql of SETUP_SQL) await db.query(sql);
  await db.end();
  await pooledHost.api.stop('ep-setup');
  return { root, procs, storage, sc, templateId: template.timelineId, project, pooledHost, localDir: join(root, 'pglite-local'), native: null };
}

async function coldStartTable(b: Bench): Promise<string> {
  progress(`cold start: ${STARTS} starts with the pool`);
  const withPool = await hostStarts(b.pooledHost, b.project, STARTS, 1);
  progress(`cold start: ${STARTS} starts without the pool`);
  const coldHost = await startHostProcess(hostArgs(b, ['--pool-size', '0']));
  b.procs.push(coldHost);
  const noPool = await hostStarts(coldHost, b.project, STARTS, 0);
  await coldHost.stop();

  progress('cold start: PGlite on a local data directory (NodeFS), in-process');
  await initLocalDataDir(b.localDir, { setupSql: SETUP_SQL });
  const pgliteLocal = await pgliteLocalStarts(b.localDir, STARTS);

  let nativeStart: number[] = [];
  try {
    progress('cold start: native PostgreSQL 15 (pg_ctl start -w, connect, SELECT 1)');
    b.native = nativeCluster(await freePort());
    nativeStart = await nativeStarts(b.native, Math.min(STARTS, 10));
  } catch (e) {
    progress(`native PostgreSQL unavailable: ${(e as Error).message}`);
  }
  const row = (label: string, s: number[]): string[] => [label, fmtMs(percentile(s, 50)), fmtMs(percentile(s, 99)), fmtMs(mean(s)), String(s.length)];
  return printTable('Cold start: start request to the first query\'s result (`SELECT 1`, new connection)', ['what', 'p50', 'p99', 'mean', 'n'], [
    row('compute host, pooled worker (POST /v1/computes + pg connect + query)', withPool.ms),
    row('compute host, no pool (worker spawned per start)', noPool.ms),
    ['  of which the start answer (`startMs`, pooled / no pool)', fmtMs(percentile(withPool.answers.map((a) => a.startMs), 50)), fmtMs(percentile(noPool.answers.map((a) => a.startMs), 50)), '', ''],
    row('PGlite in-process on a local directory (PGlite.create + query)', pgliteLocal),
    ...(nativeStart.length > 0 ? [row('native PostgreSQL 15 (`pg_ctl start -w` + connect + query)', nativeStart)] : []),
  ]);
}

/** A timeline with a ~100 MB table, checkpointed. */
async function largeTimeline(b: Bench): Promise<string> {
  progress('pages at start: filling a ~100 MB table');
  const large = (await b.sc.createTimeline({ ancestorTimelineId: b.templateId })).timelineId;
  const c = await b.pooledHost.api.start({ computeId: 'ep-bench-large', timelineId: large });
  const db = await connectPg(c, TOKEN);
  await db.query('CREATE TABLE big (id int PRIMARY KEY, pad text)');
  for (let i = 0; i < 4; i++) await db.query(`INSERT INTO big SELECT g, repeat(md5(g::text), 30) FROM generate_series(${i * 25_000 + 1}, ${(i + 1) * 25_000}) g`);
  await db.query('CHECKPOINT');
  await db.end();
  await b.pooledHost.api.stop('ep-bench-large');
  return large;
}

async function pagesFetchedTable(b: Bench): Promise<string> {
  const fetchRows: string[][] = [];
  const measureFetch = async (label: string, tl: string): Promise<void> => {
    const c = await b.pooledHost.api.start({ computeId: 'ep-bench-fetch', timelineId: tl });
    const info = await b.pooledHost.api.request<{ pagesFetched: number; dataDirBytes: number }>('GET', '/v1/computes/ep-bench-fetch');
    const bytes = c.pagesFetched * 8192;
    fetchRows.push([label, fmtNum(c.pagesFetched), `${(bytes / MiB).toFixed(2)} MiB`, `${(info.dataDirBytes / MiB).toFixed(1)} MiB`, `${((100 * bytes) / info.dataDirBytes).toFixed(2)} %`]);
    await b.pooledHost.api.stop('ep-bench-fetch');
  };
  await measureFetch('project (template + 10k rows)', b.project);
  if (process.env.BENCH_LARGE !== '0') await measureFetch('~100 MB table, after CHECKPOINT', await largeTimeline(b));
  return printTable('What a start reads from the storage node (prefetch + misses, until it accepts connections)', ['database', 'pages', 'bytes', 'data directory', 'fraction'], fetchRows);
}

type Query = (sql: string, params?: unknown[]) => Promise<unknown>;

/** The query paths the latency, hand-off and commit tables measure, opened by the latency table. */
interface QueryPaths {
  c: StartedCompute;
  wireClient: pg.Client;
  viaWire: Query;
  local: PGlite;
  viaLocal: Query;
  nativeClient: pg.Client | null;
}

async function latencyTable(b: Bench): Promise<{ table: string; paths: QueryPaths }> {
  progress(`query latency: ${LATENCY_N} sequential queries each, over the wire and in-process`);
  const c = await b.pooledHost.api.start({ computeId: 'ep-bench-q', timelineId: b.project });
  const wireClient = await connectPg(c, TOKEN);
  const viaWire: Query = (sql, params) => wireClient.query(sql, params);
  const wireLat = await latency(viaWire);
  const local = await PGlite.create({ dataDir: b.localDir, database: 'neondb', pgliteWasmModule: await getPgliteWasmModule() });
  const viaLocal: Query = (sql, params) => local.query(sql, params);
  const localLat = await latency(viaLocal);
  let nativeLat: { one: number[]; lookup: number[] } | null = null;
  let nativeClient: pg.Client | null = null;
  if (b.native) {
    const { dir, port } = b.native;
    b.native.run([`${PG_BIN}/pg_ctl`, '-D', dir, '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, '-w', '-l', `${dir}/log`, 'start']);
    const nc = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    nativeClient = nc;
    await nc.connect();
    for (const sql of SETUP_SQL) await nc.query(sql);
    nativeLat = await latency((sql, params) => nc.query(sql, params));
  }
  const latRow = (label: string, s: number[], ref: number[]): string[] => [label, fmtMs(percentile(s, 50)), fmtMs(percentile(s, 99)), `${(percentile(s, 50) / percentile(ref, 50)).toFixed(2)}x`];
  const table = printTable('Query latency, one client, sequential (ratio: p50 against PGlite in-process on local files)', ['query and path', 'p50', 'p99', 'vs PGlite local'], [
    latRow('`SELECT 1`: compute over the wire (`pg`, TCP loopback)', wireLat.one, localLat.one),
    latRow('`SELECT 1`: PGlite in-process, local files', localLat.one, localLat.one),
    ...(nativeLat ? [latRow('`SELECT 1`: native PostgreSQL 15 over `pg`', nativeLat.one, localLat.one)] : []),
    latRow('point lookup by primary key: compute over the wire', wireLat.lookup, localLat.lookup),
    latRow('point lookup: PGlite in-process, local files', localLat.lookup, localLat.lookup),
    ...(nativeLat ? [latRow('point lookup: native PostgreSQL 15 over `pg`', nativeLat.lookup, localLat.lookup)] : []),
  ]);
  return { table, paths: { c, wireClient, viaWire, local, viaLocal, nativeClient } };
}

async function handOffTable(q: QueryPaths): Promise<string> {
  return printTable('Session hand-off on the one PGlite backend (`SELECT 1`, p50 per statement)', ['sessions', 'p50', 'p99', 'cost per hand-off'],
    await handOffRows(q.c, (sql) => q.wireClient.query(sql)));
}

/** Commits per second over each path; stops native PostgreSQL when done with it. */
async function commitsTable(b: Bench, q: QueryPaths): Promise<string> {
  progress('commits per second (autocommit INSERT), 5 s each');
  const extra = await Promise.all([1, 2, 3].map(() => connectPg(q.c, TOKEN)));
  const wire1 = await commitsPerSecond([q.viaWire], 5, 0);
  const wire4 = await commitsPerSecond([q.viaWire, ...extra.map((x) => (sql: string, p?: unknown[]) => x.query(sql, p))], 5, 100_000_000);
  const local1 = await commitsPerSecond([q.viaLocal], 5, 0);
  const commitRows = [
    ['compute over the wire, 1 client (each commit acknowledged by the storage node)', fmtNum(wire1)],
    ['compute over the wire, 4 clients (one backend; the commits of waiting sessions share a write batch)', fmtNum(wire4)],
    ['PGlite in-process, local files (no fsync: PGlite runs with fsync off)', fmtNum(local1)],
  ];
  if (q.nativeClient && b.native) {
    const nc = q.nativeClient;
    commitRows.push(['native PostgreSQL 15, 1 client (fsync on)', fmtNum(await commitsPerSecond([(sql, p) => nc.query(sql, p)], 5, 0))]);
    await nc.end();
    b.native.run([`${PG_BIN}/pg_ctl`, '-D', b.native.dir, '-m', 'fast', '-w', 'stop']);
  }
  const table = printTable('Commits per second', ['path', 'commits/s'], commitRows);
  for (const x of extra) await x.end();
  return table;
}

/** Closes the query paths and the pooled host (the memory table starts its own hosts). */
async function closeQueryPaths(b: Bench, q: QueryPaths): Promise<void> {
  await q.wireClient.end();
  await q.local.close();
  await b.pooledHost.api.stop('ep-bench-q');
  await b.pooledHost.stop();
}

/** RSS of a host process with no compute, after a pause for it to settle. */
async function settledRss(b: Bench, args: string[], ready?: (h: HostProcess) => Promise<void>): Promise<number> {
  const h = await startHostProcess(hostArgs(b, args));
  b.procs.push(h);
  if (ready) await ready(h);
  await new Promise((r) => setTimeout(r, 500));
  const rss = rssOf(h.proc.pid!);
  await h.stop();
  return rss;
}

async function memoryTable(b: Bench): Promise<string> {
  progress('RSS per active compute');
  const memHost = await startHostProcess(hostArgs(b, ['--pool-size', '0', '--memory-budget-mb', '8192']));
  b.procs.push(memHost);
  const pid = memHost.proc.pid!;
  await new Promise((r) => setTimeout(r, 500));
  const base = rssOf(pid);
  const N = 8;
  const memClients: pg.Client[] = [];
  for (let i = 0; i < N; i++) {
    const tl = (await b.sc.createTimeline({ ancestorTimelineId: b.project })).timelineId;
    const mc = await memHost.api.start({ computeId: `ep-mem-${i}`, timelineId: tl });
    const db = await connectPg(mc, TOKEN);
    await db.query('SELECT count(*) FROM items');
    await db.query('SELECT pad FROM items WHERE id = 42');
    memClients.push(db);
  }
  await new Promise((r) => setTimeout(r, 500));
  const after = rssOf(pid);
  const listed = await memHost.api.list();
  const estimated = mean(listed.map((x) => (x.memory as { estimatedBytes: number }).estimatedBytes));
  for (const db of memClients) await db.end();
  await memHost.stop();
  const pooledRss = await settledRss(b, ['--pool-size', '4'], (h) => waitPoolFull(h, 4));
  const emptyRss = await settledRss(b, ['--pool-size', '0']);
  return printTable('Memory (host process RSS, shared_buffers = 16MB, page cache bound 32 MiB)', ['what', 'value'], [
    ['host process with no compute', `${(base / MiB).toFixed(0)} MiB`],
    [`host with ${N} active computes (each queried)`, `${(after / MiB).toFixed(0)} MiB`],
    ['RSS per active compute ((with - without) / N)', `${((after - base) / N / MiB).toFixed(1)} MiB`],
    ['per-compute estimate reported by GET /v1/computes (wasm heap + page cache)', `${(estimated / MiB).toFixed(1)} MiB`],
    ['RSS per idle pooled worker ((pool of 4 - pool of 0) / 4)', `${((pooledRss - emptyRss) / 4 / MiB).toFixed(1)} MiB`],
  ]);
}

export async function runComputeBenchmarks(): Promise<string[]> {
  const tables: string[] = [];
  const root = await mkdtemp(join(tmpdir(), 'lakebase-bench-compute-'));
  const procs: Bench['procs'] = [];
  let b: Bench | null = null;
  try {
    b = await setUp(root, procs);
    tables.push(await coldStartTable(b));
    tables.push(await pagesFetchedTable(b));
    const { table, paths } = await latencyTable(b);
    tables.push(table);
    tables.push(await handOffTable(paths));
    tables.push(await commitsTable(b, paths));
    await closeQueryPaths(b, paths);
    tables.push(await memoryTable(b));
  } finally {
    for (const p of procs) await p.kill9().catch(() => {});
    b?.native?.cleanup();
    await rm(root, { recursive: true, force: true });
  }
  return tables;
}
