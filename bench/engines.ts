// The two compute engines side by side in one run (issue 11): pgbench TPC-B and select-only on a postgres-engine
// and a pglite-engine project through the proxy's TCP port against native PostgreSQL 15 (local disk, fsync on);
// cold start from a suspended endpoint; RSS per idle active compute and what a start reads from the storage node;
// neon() point lookups against pg on native PostgreSQL. Each number is printed next to its target.
// Run: npm run bench -- engines
// Knobs: LAKEBASE_BENCH_SECONDS (pgbench -T and throughput seconds, 15), LAKEBASE_BENCH_SCALE (pgbench scale, 8),
// LAKEBASE_BENCH_ROUNDS (cold starts per engine, 5), LAKEBASE_BENCH_LOOKUPS (sequential lookups for the p50, 1000).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { neon, neonConfig, type NeonQueryFunction } from '@neondatabase/serverless';
import pg from 'pg';
import ws from 'ws';
import type { ComputeInfo } from '../compute/host/api-types.ts';
import type { LakebaseStack } from '../test/support/lakebase-stack.ts';
import type { NativePostgres } from '../test/support/native-postgres.ts';
import { computeHostApi, computeInfo } from '../test/support/postgres-engine.ts';
import { knob, met, ratio, sleep, throughput as runThroughput, withNativeAndLakebase } from './support/engines-harness.ts';
import { fmtMs, fmtNum, nowMs, percentile, printTable, progress, timeEach } from './support/stats.ts';

const SECONDS = knob('LAKEBASE_BENCH_SECONDS', 15);
const SCALE = knob('LAKEBASE_BENCH_SCALE', 8);
const ROUNDS = knob('LAKEBASE_BENCH_ROUNDS', 5);
const LOOKUPS = knob('LAKEBASE_BENCH_LOOKUPS', 1000);
const PG_BIN = '/usr/lib/postgresql/15/bin';
const MiB = 1024 * 1024;
const exec = promisify(execFile);

type Sql = NeonQueryFunction<false, false>;
type EngineName = 'postgres' | 'pglite';
type HostApi = Awaited<ReturnType<typeof computeHostApi>>;

/** Where pgbench and pg connect: host and port are the proxy's TCP port for a lakebase project. */
interface Target {
  label: string;
  url: string;
  host: string;
  port: number;
}

interface Engine extends Target {
  name: EngineName;
  projectId: string;
  endpointId: string;
  sql: Sql;
}

interface Ctx {
  stack: LakebaseStack;
  hostApi: HostApi;
  native: NativePostgres;
  nat: Target;
  engines: Engine[];
}

const aid = (): number => 1 + Math.floor(Math.random() * SCALE * 100_000);
const LOOKUP_SQL = 'SELECT abalance FROM pgbench_accounts WHERE aid = $1';

/** pgbench's connection arguments and environment (password, and the endpoint in PGOPTIONS as the proxy wants). */
function pgbenchConn(t: Target): { args: string[]; env: NodeJS.ProcessEnv } {
  const u = new URL(t.url);
  const env: NodeJS.ProcessEnv = { ...process.env, PGPASSWORD: decodeURIComponent(u.password) };
  const opts = new URLSearchParams(u.search).get('options');
  if (opts) env.PGOPTIONS = opts;
  const args = ['-h', t.host, '-p', String(t.port), '-U', decodeURIComponent(u.username), decodeURIComponent(u.pathname.slice(1))];
  return { args, env };
}

async function pgbench(t: Target, flags: string[]): Promise<string> {
  const { args, env } = pgbenchConn(t);
  const { stdout } = await exec(`${PG_BIN}/pgbench`, [...flags, ...args], { env, maxBuffer: 64 * MiB });
  return stdout;
}

async function pgbenchTps(t: Target, flags: string[]): Promise<number> {
  progress(`pgbench ${flags.join(' ')} on ${t.label}`);
  const out = await pgbench(t, ['-n', '-T', String(SECONDS), ...flags]);
  const m = /tps = ([\d.]+) \(without initial connection time\)/.exec(out);
  if (!m) throw new Error(`no tps in pgbench output on ${t.label}:\n${out}`);
  return Number(m[1]);
}

/** The pglite project (pg_version 18) next to the stack's own postgres-engine project. */
async function engines(stack: LakebaseStack): Promise<Engine[]> {
  const tcp = stack.tcp;
  const p = stack.project;
  const other = await stack.api<{ project: { id: string }; endpoints: { id: string }[]; connection_uris: { connection_uri: string }[] }>(
    'POST', '/projects', { project: { name: 'bench-pglite', pg_version: 18 } });
  const pgliteUrl = other.connection_uris[0].connection_uri;
  return [
    { name: 'postgres', label: 'postgres engine', url: p.connectionString, host: tcp.host, port: tcp.port, projectId: p.id, endpointId: p.endpointId, sql: neon(p.connectionString) },
    { name: 'pglite', label: 'pglite engine', url: pgliteUrl, host: tcp.host, port: tcp.port, projectId: other.project.id, endpointId: other.endpoints[0].id, sql: neon(pgliteUrl) },
  ];
}

async function setUp(stack: LakebaseStack, native: NativePostgres): Promise<Ctx> {
  neonConfig.fetchEndpoint = () => stack.sqlUrl;
  neonConfig.wsProxy = () => stack.wsProxy;
  neonConfig.useSecureWebSocket = false;
  neonConfig.webSocketConstructor = ws;
  const nat: Target = { label: 'native PostgreSQL 15', url: native.url(), host: native.host, port: native.port };
  const ctx: Ctx = { stack, hostApi: await computeHostApi(stack), native, nat, engines: await engines(stack) };
  for (const t of [nat, ...ctx.engines]) {
    progress(`pgbench -i -s ${SCALE} on ${t.label}`);
    const t0 = nowMs();
    await pgbench(t, ['-i', '-q', '-s', String(SCALE)]);
    progress(`  done in ${((nowMs() - t0) / 1000).toFixed(1)} s`);
  }
  return ctx;
}

const WORKLOADS: { label: string; flags: string[]; target: number | null }[] = [
  { label: 'TPC-B, -c 1', flags: ['-c', '1'], target: null },
  { label: 'TPC-B, -c 8 -j 2', flags: ['-c', '8', '-j', '2'], target: 0.5 },
  { label: 'select-only (-S), -c 8 -j 2', flags: ['-S', '-c', '8', '-j', '2'], target: 0.7 },
];

async function pgbenchTable(ctx: Ctx): Promise<string> {
  const rows: string[][] = [];
  for (const w of WORKLOADS) {
    const nat = await pgbenchTps(ctx.nat, w.flags);
    const cells = [w.label, fmtNum(nat)];
    const verdicts: string[] = [];
    for (const e of ctx.engines) {
      const tps = await pgbenchTps(e, w.flags);
      cells.push(`${fmtNum(tps)} (${ratio(tps, nat)})`);
      verdicts.push(w.target === null ? '-' : met(tps / nat >= w.target));
    }
    rows.push([...cells, w.target === null ? '-' : `>= ${w.target}x native`, ...verdicts]);
  }
  return printTable(`pgbench, tps (scale ${SCALE}, -T ${SECONDS}; lakebase through the proxy's TCP port; native on local disk, fsync on)`,
    ['workload', 'native PG 15', 'postgres engine (x native)', 'pglite engine (x native)', 'target', 'postgres', 'pglite'], rows);
}

const throughput = (workers: number, fn: (w: number) => Promise<unknown>): Promise<number> => runThroughput(SECONDS, workers, fn);

/** p50 of sequential lookups and queries/s with 16 clients. */
async function lookups(fn: (w: number) => Promise<unknown>): Promise<{ p50: number; qps: number }> {
  for (let i = 0; i < 50; i++) await fn(0);
  const times = await timeEach(LOOKUPS, () => fn(0));
  return { p50: percentile(times, 50), qps: await throughput(16, fn) };
}

async function lookupTable(ctx: Ctx): Promise<string> {
  progress(`point lookups: ${LOOKUPS} sequential, then 16 clients for ${SECONDS} s, on native PostgreSQL over pg`);
  const clients = Array.from({ length: 16 }, () => new pg.Client({ connectionString: ctx.nat.url }));
  await Promise.all(clients.map((c) => c.connect()));
  let nat: { p50: number; qps: number };
  try {
    nat = await lookups((w) => clients[w].query(LOOKUP_SQL, [aid()]));
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
  const rows = [['native PostgreSQL 15, pg over TCP (16 pg clients)', fmtMs(nat.p50), '1.00x', '-', '-', fmtNum(nat.qps), '1.00x', '-', '-']];
  for (const e of ctx.engines) {
    progress(`point lookups through neon() on the ${e.label}`);
    const r = await lookups(() => e.sql.query(LOOKUP_SQL, [aid()]));
    rows.push([`${e.label}, neon() over HTTP`, fmtMs(r.p50), ratio(r.p50, nat.p50), '<= 3x', met(r.p50 <= 3 * nat.p50),
      fmtNum(r.qps), ratio(r.qps, nat.qps), '>= 0.5x', met(r.qps >= 0.5 * nat.qps)]);
  }
  return printTable(`Point lookup \`${LOOKUP_SQL}\` (p50 of ${LOOKUPS} sequential; throughput with 16 concurrent clients, ${SECONDS} s)`,
    ['path', 'p50', 'vs native', 'target', 'met', 'queries/s (16 clients)', 'vs native', 'target', 'met'], rows);
}

async function suspend(ctx: Ctx, e: Engine): Promise<void> {
  await ctx.stack.api('POST', `/projects/${e.projectId}/endpoints/${e.endpointId}/suspend`);
}

/** The compute's info once idle, with its RSS read (the postgres engine samples it in the background). */
async function idleInfo(ctx: Ctx, e: Engine): Promise<ComputeInfo> {
  await sleep(1000);
  for (let i = 0; i < 50; i++) {
    const info = await computeInfo(ctx.hostApi, e.endpointId);
    if (e.name === 'pglite' || info.rssBytes !== null) return info;
    await sleep(200);
  }
  return computeInfo(ctx.hostApi, e.endpointId);
}

const idleBytes = (e: Engine, info: ComputeInfo): number => (e.name === 'postgres' ? (info.rssBytes ?? NaN) : info.memory.estimatedBytes);

interface StartFacts {
  cold: number[];
  info: ComputeInfo;
  dbBytes: number;
  rssAfterWorkload: number;
}

/** Suspends, times the first neon() query, ROUNDS times; then the last start's compute info and the database size. */
async function coldStarts(ctx: Ctx, e: Engine): Promise<StartFacts> {
  const rssAfterWorkload = idleBytes(e, await idleInfo(ctx, e));
  const cold: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    progress(`cold start ${i + 1}/${ROUNDS} on the ${e.label}`);
    await suspend(ctx, e);
    const t0 = nowMs();
    await e.sql`SELECT abalance FROM pgbench_accounts WHERE aid = 1`;
    cold.push(nowMs() - t0);
  }
  const info = await idleInfo(ctx, e);
  const dbBytes = e.name === 'pglite'
    ? info.dataDirBytes
    : Number((await e.sql`SELECT pg_database_size(current_database())::bigint AS b`)[0].b);
  return { cold, info, dbBytes, rssAfterWorkload };
}

function coldTable(ctx: Ctx, facts: StartFacts[]): string {
  return printTable(`Cold start: suspend the endpoint, then the first neon() point lookup (${ROUNDS} rounds)`,
    ['engine', 'p50', 'min', 'max', 'target', 'met'], ctx.engines.map((e, i) => {
      const c = facts[i].cold;
      const p50 = percentile(c, 50);
      return [e.label, fmtMs(p50), fmtMs(Math.min(...c)), fmtMs(Math.max(...c)), e.name === 'postgres' ? '< 300 ms' : '-', e.name === 'postgres' ? met(p50 < 300) : '-'];
    }));
}

function memoryTable(ctx: Ctx, facts: StartFacts[]): string {
  const mib = (b: number): string => `${(b / MiB).toFixed(1)} MiB`;
  return printTable('RSS per idle active compute (postgres: rssBytes of postmaster, backends and FUSE server; pglite: memory.estimatedBytes)',
    ['engine', 'after a cold start + 1 query', 'after the pgbench and lookup runs', 'target', 'met'], ctx.engines.map((e, i) => {
      const f = facts[i];
      const fresh = idleBytes(e, f.info);
      return [e.label, mib(fresh), mib(f.rssAfterWorkload), '< 48 MiB', met(fresh < 48 * MiB)];
    }));
}

function startReadsTable(ctx: Ctx, facts: StartFacts[]): string {
  return printTable(`What a start reads from the storage node (pagesFetched * 8192; pgbench scale ${SCALE} database)`,
    ['engine', 'pages', 'bytes', 'database size', 'fraction', 'target', 'met'], ctx.engines.map((e, i) => {
      const { info, dbBytes } = facts[i];
      const bytes = info.pagesFetched * 8192;
      const frac = (100 * bytes) / dbBytes;
      return [e.label, fmtNum(info.pagesFetched), `${(bytes / MiB).toFixed(2)} MiB`, `${(dbBytes / MiB).toFixed(1)} MiB${e.name === 'pglite' ? ' (data dir)' : ''}`,
        `${frac.toFixed(2)} %`, '< 5 %', met(frac < 5)];
    }));
}

async function runAll(ctx: Ctx): Promise<string[]> {
  const tables = [await pgbenchTable(ctx), await lookupTable(ctx)];
  const facts: StartFacts[] = [];
  for (const e of ctx.engines) facts.push(await coldStarts(ctx, e));
  tables.push(coldTable(ctx, facts), memoryTable(ctx, facts), startReadsTable(ctx, facts));
  return tables;
}

export async function runEnginesBenchmarks(): Promise<string[]> {
  progress(`engines: seconds=${SECONDS} scale=${SCALE} rounds=${ROUNDS} lookups=${LOOKUPS}`);
  return withNativeAndLakebase(async (stack, native) => runAll(await setUp(stack, native)));
}
