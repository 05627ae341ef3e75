// Issue 14's measures of lake tables, on a whole lakebase (`lakebase start`) per engine, each against a reference in
// the same run: freshness (commit acknowledged -> covered by the lake table's last_synced_lsn) under a steady write
// load, at a sync interval of LAKEBASE_BENCH_LAKE_INTERVAL_S; the first copy's rows/s against `COPY ... TO STDOUT` of
// the same table on the same compute; and the writer's commit latency on a synced table against the same table
// unsynced (the cost of the capture trigger).
// Run: npm run bench -- lake
// Knobs: LAKEBASE_BENCH_LAKE_ROWS (200000), LAKEBASE_BENCH_LAKE_SECONDS (30), LAKEBASE_BENCH_LAKE_INTERVAL_S (1),
// LAKEBASE_BENCH_ROUNDS (2000 commits per latency sample).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { parseLsn } from '../control-plane/lsn.ts';
import type { LakebaseStack } from '../test/support/lakebase-stack.ts';
import { startLakebaseStack } from '../test/support/lakebase-stack.ts';
import { knob, ratio, sleep } from './support/engines-harness.ts';
import { fmtMs, fmtNum, nowMs, percentile, printTable, progress } from './support/stats.ts';

const ROWS = knob('LAKEBASE_BENCH_LAKE_ROWS', 200_000);
const SECONDS = knob('LAKEBASE_BENCH_LAKE_SECONDS', 30);
const INTERVAL_S = knob('LAKEBASE_BENCH_LAKE_INTERVAL_S', 1);
const COMMITS = knob('LAKEBASE_BENCH_ROUNDS', 2000);

interface J {
  project: { id: string };
  branch: { id: string };
  connection_uris: { connection_uri: string }[];
}

interface LakeTableAnswer {
  lake_table: { id: string; last_synced_lsn: string | null };
}

const run = promisify(execFile);

async function connect(uri: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: uri });
  await c.connect();
  return c;
}

async function lsnNow(c: pg.Client): Promise<number> {
  return parseLsn((await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l)!;
}

/** psql's COPY ... TO STDOUT of the table through the proxy, output discarded: the reference for the first copy. */
async function copyOut(uri: string, table: string): Promise<number> {
  const t0 = nowMs();
  await run('psql', [uri, '-X', '-q', '-c', `COPY ${table} TO STDOUT`], { maxBuffer: 1024 * 1024 * 1024 });
  return nowMs() - t0;
}

async function firstCopy(stack: LakebaseStack, p: J, c: pg.Client): Promise<string[][]> {
  progress(`${ROWS} rows: COPY TO against a lake table's first copy`);
  await c.query(`CREATE TABLE big (id bigint PRIMARY KEY, name text, amount numeric(12,2), at timestamptz)`);
  await c.query(`INSERT INTO big SELECT g, 'name ' || g, g * 1.5, now() - g * interval '1 second' FROM generate_series(1, ${ROWS}) g`);
  const copyMs = await copyOut(p.connection_uris[0].connection_uri, 'big');
  const t0 = nowMs();
  await stack.api('POST', `/projects/${p.project.id}/branches/${p.branch.id}/lake_tables`, { lake_table: { source_table: 'big' } });
  const lakeMs = nowMs() - t0;
  const [ours, theirs] = [ROWS / (lakeMs / 1000), ROWS / (copyMs / 1000)];
  return [[`first copy of ${fmtNum(ROWS)} rows, rows/s`, fmtNum(ours), `COPY TO STDOUT ${fmtNum(theirs)} rows/s (${ratio(ours, theirs)})`]];
}

/** Single-row commits alternating between the two tables, so that neither gets the warmer compute. */
async function commitLatency(c: pg.Client, tables: [string, string]): Promise<[number[], number[]]> {
  const samples: [number[], number[]] = [[], []];
  for (let i = 0; i < COMMITS; i++) {
    for (const k of [0, 1] as const) {
      const t0 = nowMs();
      await c.query(`INSERT INTO ${tables[k]} (id, v) VALUES ($1, $2)`, [i, i]);
      samples[k].push(nowMs() - t0);
    }
  }
  return samples;
}

async function writerCost(stack: LakebaseStack, p: J, c: pg.Client): Promise<string[][]> {
  progress(`${COMMITS} single-row commits on a synced table and on the same table unsynced, alternating`);
  await c.query('CREATE TABLE plain (id bigint PRIMARY KEY, v int)');
  await c.query('CREATE TABLE synced (id bigint PRIMARY KEY, v int)');
  await stack.api('POST', `/projects/${p.project.id}/branches/${p.branch.id}/lake_tables`, { lake_table: { source_table: 'synced' } });
  const [synced, plain] = await commitLatency(c, ['synced', 'plain']);
  const [a, b] = [percentile(synced, 50), percentile(plain, 50)];
  return [
    ['INSERT commit p50, synced table', fmtMs(a), `unsynced ${fmtMs(b)} (${ratio(a, b)})`],
    ['INSERT commit p99, synced table', fmtMs(percentile(synced, 99)), `unsynced ${fmtMs(percentile(plain, 99))}`],
  ];
}

async function freshness(stack: LakebaseStack, p: J, c: pg.Client): Promise<string[][]> {
  progress(`freshness for ${SECONDS} s of steady writes (a commit every 20 ms, sync every ${INTERVAL_S} s)`);
  await c.query('CREATE TABLE fresh (id bigint PRIMARY KEY, v int)');
  const lt = (await stack.api<LakeTableAnswer>('POST', `/projects/${p.project.id}/branches/${p.branch.id}/lake_tables`, { lake_table: { source_table: 'fresh' } })).lake_table;
  const pending: { lsn: number; at: number }[] = [];
  const lags: number[] = [];
  let writing = true;
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      await c.query('INSERT INTO fresh VALUES ($1, $2)', [i, i]);
      pending.push({ lsn: await lsnNow(c), at: nowMs() });
      await sleep(20);
    }
  })();
  const end = nowMs() + SECONDS * 1000;
  while (nowMs() < end || (pending.length > 0 && nowMs() < end + 60_000)) {
    if (nowMs() >= end) writing = false;
    const t = (await stack.api<LakeTableAnswer>('GET', `/projects/${p.project.id}/branches/${p.branch.id}/lake_tables/${lt.id}`)).lake_table;
    const synced = t.last_synced_lsn ? parseLsn(t.last_synced_lsn)! : 0;
    while (pending.length > 0 && pending[0].lsn <= synced) lags.push(nowMs() - pending.shift()!.at);
    await sleep(25);
  }
  writing = false;
  await writer;
  return [[
    `freshness (commit -> in the lake), p50 / p99, sync every ${INTERVAL_S} s`, `${fmtMs(percentile(lags, 50))} / ${fmtMs(percentile(lags, 99))}`,
    `${lags.length} commits; the bound is the interval plus one round`,
  ]];
}

export async function runLakeBenchmarks(): Promise<string[]> {
  const tables: string[] = [];
  for (const [engine, pgVersion] of [['pglite', 18], ['postgres', 15]] as const) {
    progress(`starting a lakebase for the ${engine} engine`);
    const stack = await startLakebaseStack({ env: { LAKEBASE_CONTROL_PLANE_LAKE_SYNC_INTERVAL_S: String(INTERVAL_S) }, verbose: false });
    try {
      const p = await stack.api<J>('POST', '/projects', { project: { name: `lake-${engine}`, pg_version: pgVersion } });
      const c = await connect(p.connection_uris[0].connection_uri);
      try {
        const rows = [...(await writerCost(stack, p, c)), ...(await freshness(stack, p, c)), ...(await firstCopy(stack, p, c))];
        tables.push(printTable(`Lake tables, ${engine} engine (issue 14)`, ['measure', 'lakebase', 'reference'], rows));
      } finally {
        await c.end();
      }
    } finally {
      await stack.stop().catch((e: Error) => progress(`stopping the lakebase: ${e.message}`));
    }
  }
  return tables;
}
