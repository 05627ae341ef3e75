// Issue 12's targets for the HTTP path (SQL over HTTP through the proxy to a compute), on a postgres-engine and a
// pglite-engine project, each against native PostgreSQL 15 in the same run: neon() point lookup p50 against pg
// through the proxy's TCP port and pg on native; queries/s with 32 concurrent neon() clients; cold start from a
// suspended endpoint; the first query of a never-started branch; the first queries after a wake; and the
// Server-Timing header of the first response after a wake. Each number is printed next to its target.
// Run: npm run bench -- http
// Knobs: LAKEBASE_BENCH_SECONDS (throughput seconds, 10), LAKEBASE_BENCH_ROUNDS (cold starts and branches per
// engine, 5), LAKEBASE_BENCH_LOOKUPS (sequential lookups for the p50, 1000).
import { existsSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { neon, neonConfig, type NeonQueryFunction } from '@neondatabase/serverless';
import pg from 'pg';
import ws from 'ws';
import type { LakebaseStack } from '../test/support/lakebase-stack.ts';
import type { NativePostgres } from '../test/support/native-postgres.ts';
import { knob, met, pgCtl, ratio, sleep, throughput as runThroughput, withNativeAndLakebase } from './support/engines-harness.ts';
import { fmtMs, fmtNum, mean, nowMs, percentile, printTable, progress, timeEach } from './support/stats.ts';

const SECONDS = knob('LAKEBASE_BENCH_SECONDS', 10);
const ROUNDS = knob('LAKEBASE_BENCH_ROUNDS', 5);
const LOOKUPS = knob('LAKEBASE_BENCH_LOOKUPS', 1000);
const CLIENTS = 32;
const ROWS = 10_000;
const AFTER_WAKE = 10;
/** Rest after a suspend before the wake is timed (see suspend). */
const SETTLE_MS = 3000;
const LOOKUP_SQL = 'SELECT v FROM kv WHERE k = $1';
const COLD_TARGET_MS: Record<EngineName, number> = { pglite: 150, postgres: 250 };

type Sql = NeonQueryFunction<false, false>;
type EngineName = 'postgres' | 'pglite';

interface Engine {
  name: EngineName;
  label: string;
  url: string;
  projectId: string;
  endpointId: string;
  sql: Sql;
}

interface Ctx {
  stack: LakebaseStack;
  native: NativePostgres;
  engines: Engine[];
}

/** What one engine measured; `warm` is the neon() p50 of sequential lookups on a running compute. */
interface EngineResult {
  warm: number;
  tcp: number;
  qps: number;
  /** CPU the bench process (the 32 neon() clients: the driver and fetch) spent per query of that run, ms. */
  clientCpuMs: number;
  /** The same lookups from a lean HTTP client (node:http keep-alive, the driver's request): what the server side serves. */
  rawQps: number;
  cold: number[];
  afterWake: number[][];
  raw: { ms: number; serverTiming: string | null }[];
  branch: number[];
}

interface NativeResult {
  p50: number;
  qps: number;
  /** Start from stopped + connect + first lookup; null when the cluster's data directory was not found. */
  cold: number[] | null;
}

const key = (): number => 1 + Math.floor(Math.random() * ROWS);
const lookup = (sql: Sql) => sql.query(LOOKUP_SQL, [key()]);

/** The stack's own postgres-engine project (LAKEBASE_ENGINE=postgres, pg_version 15) and a pglite project (18). */
async function engines(stack: LakebaseStack): Promise<Engine[]> {
  const p = stack.project;
  const other = await stack.api<{ project: { id: string }; endpoints: { id: string }[]; connection_uris: { connection_uri: string }[] }>(
    'POST', '/projects', { project: { name: 'bench-http-pglite', pg_version: 18 } });
  const pgliteUrl = other.connection_uris[0].connection_uri;
  return [
    { name: 'postgres', label: 'postgres engine', url: p.connectionString, projectId: p.id, endpointId: p.endpointId, sql: neon(p.connectionString) },
    { name: 'pglite', label: 'pglite engine', url: pgliteUrl, projectId: other.project.id, endpointId: other.endpoints[0].id, sql: neon(pgliteUrl) },
  ];
}

const KV_DDL = ['CREATE TABLE kv (k int primary key, v text)', `INSERT INTO kv SELECT g, md5(g::text) FROM generate_series(1, ${ROWS}) g`, 'ANALYZE kv'];

async function setUp(stack: LakebaseStack, native: NativePostgres): Promise<Ctx> {
  neonConfig.fetchEndpoint = () => stack.sqlUrl;
  neonConfig.wsProxy = () => stack.wsProxy;
  neonConfig.useSecureWebSocket = false;
  neonConfig.webSocketConstructor = ws;
  const ctx: Ctx = { stack, native, engines: await engines(stack) };
  progress(`creating kv (${ROWS} rows) on native PostgreSQL and on both engines`);
  await withClients(native.url(), 1, async ([c]) => {
    for (const q of KV_DDL) await c.query(q);
  });
  for (const e of ctx.engines) for (const q of KV_DDL) await e.sql.query(q);
  return ctx;
}

/** n connected pg clients for the duration of fn. */
async function withClients<T>(url: string, n: number, fn: (clients: pg.Client[]) => Promise<T>): Promise<T> {
  const clients = Array.from({ length: n }, () => new pg.Client({ connectionString: url }));
  try {
    await Promise.all(clients.map((c) => c.connect()));
    return await fn(clients);
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}

const throughput = (workers: number, fn: (w: number) => Promise<unknown>): Promise<number> => runThroughput(SECONDS, workers, fn);

/** p50 of LOOKUPS sequential calls after 50 to warm up. */
async function p50Of(fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 50; i++) await fn();
  return percentile(await timeEach(LOOKUPS, fn), 50);
}

async function nativeWarm(native: NativePostgres): Promise<{ p50: number; qps: number }> {
  progress(`native PostgreSQL: ${LOOKUPS} sequential lookups over pg, then ${CLIENTS} pg clients for ${SECONDS} s`);
  return withClients(native.url(), CLIENTS, async (cs) => ({
    p50: await p50Of(() => cs[0].query(LOOKUP_SQL, [key()])),
    qps: await throughput(CLIENTS, (w) => cs[w].query(LOOKUP_SQL, [key()])),
  }));
}

async function engineWarm(ctx: Ctx, e: Engine): Promise<Pick<EngineResult, 'warm' | 'tcp' | 'qps' | 'clientCpuMs' | 'rawQps'>> {
  progress(`${e.label}: ${LOOKUPS} sequential lookups with pg through the proxy's TCP port, then with neon()`);
  const tcp = await withClients(e.url, 1, ([c]) => p50Of(() => c.query(LOOKUP_SQL, [key()])));
  const warm = await p50Of(() => lookup(e.sql));
  progress(`${e.label}: ${CLIENTS} concurrent neon() clients for ${SECONDS} s, then ${CLIENTS} lean HTTP clients`);
  const sqls = Array.from({ length: CLIENTS }, () => neon(e.url));
  const cpu0 = process.cpuUsage();
  const qps = await throughput(CLIENTS, (w) => lookup(sqls[w]));
  const cpu = process.cpuUsage(cpu0);
  const clientCpuMs = (cpu.user + cpu.system) / 1000 / (qps * SECONDS);
  return { warm, tcp, qps, clientCpuMs, rawQps: await leanThroughput(ctx.stack.sqlUrl, e.url) };
}

/** Throughput of the driver's HTTP request sent by node:http over kept-alive connections (no fetch, no driver). */
async function leanThroughput(sqlUrl: string, connString: string): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const u = new URL(sqlUrl);
  const post = (): Promise<void> => new Promise((resolve, reject) => {
    const body = JSON.stringify({ query: LOOKUP_SQL, params: [key()] });
    const req = http.request({
      host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent,
      headers: { 'Neon-Connection-String': connString, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
  try {
    return await throughput(CLIENTS, post);
  } finally {
    agent.destroy();
  }
}

/**
 * Suspends the endpoint; the API answers once the compute stopped, and the endpoint then reads idle. Then it rests
 * (SETTLE_MS): a database wakes after a while at rest, when the host has refilled its pool of pre-started workers,
 * not while the previous round's refill still runs on the same 2 cores.
 */
async function suspend(ctx: Ctx, e: Engine): Promise<void> {
  const path = `/projects/${e.projectId}/endpoints/${e.endpointId}`;
  await ctx.stack.api('POST', `${path}/suspend`);
  for (let i = 0; i < 100; i++) {
    const r = await ctx.stack.api<{ endpoint: { current_state: string } }>('GET', path);
    if (r.endpoint.current_state === 'idle') {
      await sleep(SETTLE_MS);
      return;
    }
    await sleep(50);
  }
  throw new Error(`endpoint ${e.endpointId} did not go idle after suspend`);
}

/** Per round: suspend, time the first neon() lookup, then the next AFTER_WAKE lookups one by one. */
async function coldStarts(ctx: Ctx, e: Engine): Promise<Pick<EngineResult, 'cold' | 'afterWake'>> {
  const cold: number[] = [];
  const afterWake: number[][] = [];
  for (let i = 0; i < ROUNDS; i++) {
    progress(`${e.label}: cold start ${i + 1}/${ROUNDS} (neon())`);
    await suspend(ctx, e);
    const t0 = nowMs();
    await lookup(e.sql);
    cold.push(nowMs() - t0);
    afterWake.push(await timeEach(AFTER_WAKE, () => lookup(e.sql)));
  }
  return { cold, afterWake };
}

/** One lookup as the driver sends it, by hand, to see the response's headers (neon() hides them). */
async function rawLookup(sqlUrl: string, connString: string): Promise<{ ms: number; serverTiming: string | null }> {
  const t0 = nowMs();
  const res = await fetch(sqlUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Neon-Connection-String': connString, 'Neon-Raw-Text-Output': 'true', 'Neon-Array-Mode': 'true' },
    body: JSON.stringify({ query: LOOKUP_SQL, params: [String(key())] }),
  });
  const text = await res.text();
  const ms = nowMs() - t0;
  if (!res.ok) throw new Error(`POST /sql -> ${res.status}: ${text}`);
  return { ms, serverTiming: res.headers.get('server-timing') };
}

/** Per round: suspend, then the first lookup after the wake as a raw fetch, for its Server-Timing header. */
async function rawColdStarts(ctx: Ctx, e: Engine): Promise<EngineResult['raw']> {
  const out: EngineResult['raw'] = [];
  for (let i = 0; i < ROUNDS; i++) {
    progress(`${e.label}: cold start ${i + 1}/${ROUNDS} (raw fetch, for Server-Timing)`);
    await suspend(ctx, e);
    out.push(await rawLookup(ctx.stack.sqlUrl, e.url));
  }
  return out;
}

interface CreatedBranch {
  branch: { id: string };
  connection_uris: { connection_uri: string }[];
}

/** Per round: a new branch with a read-write endpoint (not started), its first neon() lookup timed, then deleted. */
async function branchStarts(ctx: Ctx, e: Engine): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    progress(`${e.label}: never-started branch ${i + 1}/${ROUNDS}`);
    const b = await ctx.stack.api<CreatedBranch>('POST', `/projects/${e.projectId}/branches`,
      { branch: { name: `bench-http-${i}` }, endpoints: [{ type: 'read_write' }] });
    const sql = neon(b.connection_uris[0].connection_uri);
    try {
      await sleep(SETTLE_MS); // as after a suspend: the host at rest, its pool refilled
      const t0 = nowMs();
      await lookup(sql);
      out.push(nowMs() - t0);
    } finally {
      await ctx.stack.api('DELETE', `/projects/${e.projectId}/branches/${b.branch.id}`);
    }
  }
  return out;
}

/** Connects and runs the lookup, retrying while the server is still starting. */
async function firstLookup(url: string): Promise<void> {
  const deadline = nowMs() + 30_000;
  for (;;) {
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      await c.query(LOOKUP_SQL, [key()]);
      return;
    } catch (err) {
      if (nowMs() > deadline) throw err;
      await sleep(5);
    } finally {
      await c.end().catch(() => undefined);
    }
  }
}

/**
 * Native cold start for reference: fast stop (untimed), then `pg_ctl restart -W` (which starts a stopped cluster
 * with the options it last ran with) and connect + first lookup, retried until it answers. The data directory is
 * where test/support/native-postgres.ts puts it (<socketDir>/data); if it is not there, null. runuser's own
 * start-up is in the time (a few ms).
 */
async function nativeColdStarts(native: NativePostgres): Promise<number[] | null> {
  const dataDir = join(native.socketDir, 'data');
  if (!existsSync(join(dataDir, 'postmaster.opts'))) {
    progress(`native cold start skipped: no postmaster.opts in ${dataDir}`);
    return null;
  }
  const out: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    progress(`native PostgreSQL: cold start ${i + 1}/${ROUNDS}`);
    await pgCtl(native, ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
    const t0 = nowMs();
    await pgCtl(native, ['-D', dataDir, '-l', join(native.socketDir, 'log'), '-W', 'restart']);
    await firstLookup(native.url());
    out.push(nowMs() - t0);
  }
  return out;
}

function lookupTable(ctx: Ctx, nat: NativeResult, rs: EngineResult[]): string {
  const rows = [['native PostgreSQL 15, pg over TCP', fmtMs(nat.p50), '-', '-', '1.00x', '-']];
  ctx.engines.forEach((e, i) => {
    const r = rs[i];
    rows.push([`${e.label}, pg through the proxy's TCP port`, fmtMs(r.tcp), '1.00x', '-', ratio(r.tcp, nat.p50), '-']);
    rows.push([`${e.label}, neon() over HTTP`, fmtMs(r.warm), ratio(r.warm, r.tcp), met(r.warm <= 1.5 * r.tcp), ratio(r.warm, nat.p50), met(r.warm <= 3 * nat.p50)]);
  });
  return printTable(`Point lookup \`${LOOKUP_SQL}\` (${ROWS} rows), p50 of ${LOOKUPS} sequential; targets: neon() <= 1.5x proxy TCP, <= 3x native`,
    ['path', 'p50', 'vs proxy TCP', 'met (<= 1.5x)', 'vs native', 'met (<= 3x)'], rows);
}

function throughputTable(ctx: Ctx, nat: NativeResult, rs: EngineResult[]): string {
  const rows = [['native PostgreSQL 15, pg over TCP', fmtNum(nat.qps), '1.00x', '-', '-', '-', '-']];
  ctx.engines.forEach((e, i) => {
    const q = rs[i].qps;
    const [target, ok] = e.name === 'pglite' ? ['>= 3,000 q/s', q >= 3000] : ['>= 0.5x native', q >= 0.5 * nat.qps];
    rows.push([`${e.label}, neon() over HTTP`, fmtNum(q), ratio(q, nat.qps), target, met(ok), `${rs[i].clientCpuMs.toFixed(2)} ms`, fmtNum(rs[i].rawQps)]);
  });
  return printTable(`Point lookups with ${CLIENTS} concurrent clients for ${SECONDS} s (queries/s)`,
    ['path', 'queries/s', 'vs native', 'target', 'met', 'client CPU per query (driver + fetch)', 'queries/s, lean HTTP client'], rows);
}

const spread = (xs: number[]): string[] => [fmtMs(percentile(xs, 50)), fmtMs(Math.min(...xs)), fmtMs(Math.max(...xs))];

function coldTable(ctx: Ctx, nat: NativeResult, rs: EngineResult[]): string {
  const rows = [nat.cold
    ? ['native PostgreSQL 15: pg_ctl start + connect + first lookup (reference)', ...spread(nat.cold), '-', '-']
    : ['native PostgreSQL 15 (skipped: data directory not found)', '-', '-', '-', '-', '-']];
  ctx.engines.forEach((e, i) => {
    const c = rs[i].cold;
    const t = COLD_TARGET_MS[e.name];
    rows.push([`${e.label}: suspend, first neon() lookup`, ...spread(c), `<= ${t} ms`, met(percentile(c, 50) <= t)]);
  });
  return printTable(`Cold start (${ROUNDS} rounds)`, ['path', 'p50', 'min', 'max', 'target', 'met'], rows);
}

function branchTable(ctx: Ctx, rs: EngineResult[]): string {
  return printTable(`Never-started branch: create a branch with an endpoint, then its first neon() lookup (${ROUNDS} rounds)`,
    ['engine', 'p50', 'min', 'max', 'suspended cold start p50', 'ratio', 'target', 'met'], ctx.engines.map((e, i) => {
      const b = percentile(rs[i].branch, 50);
      const c = percentile(rs[i].cold, 50);
      return [e.label, ...spread(rs[i].branch), fmtMs(c), ratio(b, c), '<= 1.2x cold start', met(b <= 1.2 * c)];
    }));
}

function afterWakeTable(ctx: Ctx, rs: EngineResult[]): string {
  return printTable(`The ${AFTER_WAKE} neon() lookups after each cold start's first (${ROUNDS} rounds, all together), against the warm p50`,
    ['engine', 'warm p50', 'p50', 'mean', 'max', 'mean vs warm', 'max vs warm', 'target', 'met (mean)'], ctx.engines.map((e, i) => {
      const xs = rs[i].afterWake.flat();
      const w = rs[i].warm;
      const m = mean(xs);
      const mx = Math.max(...xs);
      return [e.label, fmtMs(w), fmtMs(percentile(xs, 50)), fmtMs(m), fmtMs(mx), ratio(m, w), ratio(mx, w), '<= 2x warm p50', met(m <= 2 * w)];
    }));
}

function serverTimingTable(ctx: Ctx, rs: EngineResult[]): string {
  const rows = ctx.engines.flatMap((e, i) => rs[i].raw.map((r, round) => [e.label, String(round + 1), fmtMs(r.ms), r.serverTiming ?? '-']));
  return printTable('First response after a wake, raw fetch POST /sql (to read its headers): time and Server-Timing',
    ['engine', 'round', 'first lookup', 'Server-Timing'], rows);
}

async function measureEngine(ctx: Ctx, e: Engine): Promise<EngineResult> {
  const warm = await engineWarm(ctx, e);
  const cold = await coldStarts(ctx, e);
  const raw = await rawColdStarts(ctx, e);
  return { ...warm, ...cold, raw, branch: await branchStarts(ctx, e) };
}

async function runAll(ctx: Ctx): Promise<string[]> {
  const warm = await nativeWarm(ctx.native);
  const rs: EngineResult[] = [];
  for (const e of ctx.engines) rs.push(await measureEngine(ctx, e));
  // last: it restarts the native cluster
  const cold = await nativeColdStarts(ctx.native).catch((err: Error) => {
    progress(`native cold start failed, left out: ${err.message}`);
    return null;
  });
  const nat: NativeResult = { ...warm, cold };
  return [lookupTable(ctx, nat, rs), throughputTable(ctx, nat, rs), coldTable(ctx, nat, rs), branchTable(ctx, rs),
    afterWakeTable(ctx, rs), serverTimingTable(ctx, rs)];
}

export async function runHttpPathBenchmarks(): Promise<string[]> {
  progress(`http: seconds=${SECONDS} rounds=${ROUNDS} lookups=${LOOKUPS} clients=${CLIENTS}`);
  return withNativeAndLakebase(async (stack, native) => runAll(await setUp(stack, native)));
}
