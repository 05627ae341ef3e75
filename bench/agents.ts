// Issue 13's measures of "thousands of databases per machine", on a whole lakebase (`lakebase start`, default pglite
// engine) against native PostgreSQL 15 in the same run: projects and branches created per second; branch creation
// p50 for the first and the last 100 of many (target: within 1.2x); list latency at that many branches; the
// control plane's memory and the bucket's bytes per project; an agent's "new database" latency (create_project to
// the first query's answer) against CREATE DATABASE plus the first query on native PostgreSQL; and the time until
// all of 50 endpoints woken at once answer.
// Run: npm run bench -- agents
// Knobs: LAKEBASE_BENCH_BRANCHES (10000), LAKEBASE_BENCH_PROJECTS (200), LAKEBASE_BENCH_ROUNDS (10), LAKEBASE_BENCH_WAKES (50).
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import type { LakebaseStack } from '../test/support/lakebase-stack.ts';
import { startLakebaseStack } from '../test/support/lakebase-stack.ts';
import { startNativePostgres } from '../test/support/native-postgres.ts';
import type { NativePostgres } from '../test/support/native-postgres.ts';
import { knob, met, ratio, sleep } from './support/engines-harness.ts';
import { fmtMs, fmtNum, nowMs, percentile, printTable, progress, timeEach } from './support/stats.ts';

const BRANCHES = knob('LAKEBASE_BENCH_BRANCHES', 10_000);
const PROJECTS = knob('LAKEBASE_BENCH_PROJECTS', 200);
const ROUNDS = knob('LAKEBASE_BENCH_ROUNDS', 10);
const WAKES = knob('LAKEBASE_BENCH_WAKES', 50);

type J = Record<string, unknown> & { project: { id: string }; branch: { id: string }; connection_uris: { connection_uri: string }[]; endpoints: { id: string }[] };

/** Resident memory of the control plane process, bytes. */
async function controlPlaneRss(stack: LakebaseStack): Promise<number> {
  const pids = JSON.parse(await readFile(join(stack.dir, 'services.json'), 'utf8')) as Record<string, number>;
  const pid = pids['control-plane'];
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024;
}

/** Bytes under a folder of the local object store. */
async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

async function firstQuery(uri: string): Promise<void> {
  const c = new pg.Client({ connectionString: uri });
  await c.connect();
  try {
    await c.query('SELECT 1');
  } finally {
    await c.end();
  }
}

async function projectsAndMemory(stack: LakebaseStack): Promise<string[][]> {
  progress(`creating ${PROJECTS} projects`);
  const objects = join(stack.dir, 'objects');
  const [rss0, bytes0] = [await controlPlaneRss(stack), await folderBytes(objects)];
  const t0 = nowMs();
  for (let i = 0; i < PROJECTS; i++) await stack.api<J>('POST', '/projects', { project: { name: `bench-${i}` } });
  const seconds = (nowMs() - t0) / 1000;
  global.gc?.();
  await sleep(2000);
  const [rss1, bytes1, cpBytes] = [await controlPlaneRss(stack), await folderBytes(objects), await folderBytes(join(objects, 'control-plane'))];
  return [
    ['projects created per second', `${(PROJECTS / seconds).toFixed(1)} /s`, `${PROJECTS} in ${seconds.toFixed(1)} s, one at a time`],
    ['control-plane RSS per project', `${fmtNum((rss1 - rss0) / PROJECTS)} B`, `${fmtNum(rss0 / 2 ** 20)} -> ${fmtNum(rss1 / 2 ** 20)} MiB`],
    ['bucket bytes per project', `${fmtNum((bytes1 - bytes0) / PROJECTS)} B`, `all objects; the control plane's state is ${fmtNum(cpBytes)} B in all`],
  ];
}

async function manyBranches(stack: LakebaseStack): Promise<string[][]> {
  const p = await stack.api<J>('POST', '/projects', { project: { name: 'many-branches' } });
  const base = `/projects/${p.project.id}/branches`;
  progress(`creating ${BRANCHES} branches of one project (no compute each: metadata and a timeline)`);
  const t0 = nowMs();
  const times = await timeEach(BRANCHES, async (i) => {
    await stack.api('POST', base, { branch: { name: `b-${i}` } });
    if (i % 1000 === 999) progress(`${i + 1} branches`);
  });
  const seconds = (nowMs() - t0) / 1000;
  const first = percentile(times.slice(0, 100), 50);
  const last = percentile(times.slice(-100), 50);
  const listAll = await timeEach(5, () => stack.api('GET', base));
  const listPage = await timeEach(20, () => stack.api('GET', `${base}?limit=100&sort_by=name&sort_order=asc`));
  return [
    ['branches created per second', `${(BRANCHES / seconds).toFixed(1)} /s`, `${BRANCHES} in ${seconds.toFixed(0)} s, one at a time`],
    ['branch create p50, first 100', fmtMs(first), ''],
    [`branch create p50, last 100 of ${BRANCHES}`, fmtMs(last), `${ratio(last, first)} of the first (target 1.2x: ${met(last <= first * 1.2)})`],
    [`list all ${BRANCHES + 1} branches, p50`, fmtMs(percentile(listAll, 50)), 'one unpaged GET'],
    ['list a page of 100 by name, p50', fmtMs(percentile(listPage, 50)), `of ${BRANCHES + 1}`],
  ];
}

async function newDatabaseLatency(stack: LakebaseStack, native: NativePostgres): Promise<string[][]> {
  progress(`an agent's new database: ${ROUNDS} rounds each`);
  const ours = await timeEach(ROUNDS, async (i) => {
    const made = await stack.api<J>('POST', '/projects', { project: { name: `agent-${i}` } });
    await firstQuery(made.connection_uris[0].connection_uri);
  });
  const admin = new pg.Client({ connectionString: native.url() });
  await admin.connect();
  const theirs = await timeEach(ROUNDS, async (i) => {
    await admin.query(`CREATE DATABASE agent_${i}`);
    await firstQuery(native.url(undefined, undefined, `agent_${i}`));
  });
  await admin.end();
  const [a, b] = [percentile(ours, 50), percentile(theirs, 50)];
  return [['create_project -> first answer, p50', fmtMs(a), `native CREATE DATABASE + first query ${fmtMs(b)} (${ratio(a, b)})`]];
}

async function wakeStorm(stack: LakebaseStack): Promise<string[][]> {
  progress(`${WAKES} endpoints woken at once`);
  const made: J[] = [];
  for (let i = 0; i < WAKES; i++) made.push(await stack.api<J>('POST', '/projects', { project: { name: `storm-${i}` } }));
  for (const m of made) await firstQuery(m.connection_uris[0].connection_uri); // started once, so that each is suspended from a running state
  for (const m of made) await stack.api('POST', `/projects/${m.project.id}/endpoints/${m.endpoints[0].id}/suspend`);
  await sleep(3000);
  const t0 = nowMs();
  const results = await Promise.allSettled(made.map(async (m) => {
    await firstQuery(m.connection_uris[0].connection_uri);
    return nowMs() - t0;
  }));
  const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason?.message ?? r));
  return [[`${WAKES} endpoints woken at once: all answered after`, fmtMs(Math.max(...ok)), `${ok.length} of ${WAKES} answered; median ${fmtMs(percentile(ok, 50))}${failed.length ? `; first failure: ${failed[0]}` : ''}`]];
}

export async function runAgentsBenchmarks(): Promise<string[]> {
  progress('starting native PostgreSQL 15 (fsync on) and a lakebase (default engine: pglite)');
  const native = await startNativePostgres({ settings: { fsync: 'on' } });
  let stack: LakebaseStack | null = null;
  try {
    stack = await startLakebaseStack();
    const rows = [
      ...(await newDatabaseLatency(stack, native)),
      ...(await projectsAndMemory(stack)),
      ...(await wakeStorm(stack)),
      ...(await manyBranches(stack)),
    ];
    return [printTable('Many databases and branches (issue 13)', ['measure', 'lakebase', 'note'], rows)];
  } finally {
    progress('stopping the lakebase and native PostgreSQL');
    await stack?.stop().catch((e: Error) => progress(`stopping the lakebase: ${e.message}`));
    await native.stop();
  }
}
