// Issue 15's measures, on one `lakebase start --compute-hosts 2 --storage-nodes 2` (object-store durability: the mode
// in which a dead storage node's projects are taken over): endpoints woken per second with one compute host live
// and with two; the time until every endpoint of a frozen compute host answers again from the other; the time until
// every project of a frozen storage node answers again; and the time to move (drain) a project holding a table of
// about 100 MB to the other storage node, against copying a file of that size on the same disk.
// References in the same run: native PostgreSQL 15's `pg_ctl start` plus a first query (what one wake replaces),
// and `cp` of a 100 MB file.
// Run: npm run bench -- scale-out
// Knobs: LAKEBASE_BENCH_WAKES (24), LAKEBASE_BENCH_MOVE_MB (100).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { LakebaseStack } from '../test/support/lakebase-stack.ts';
import { startLakebaseStack } from '../test/support/lakebase-stack.ts';
import { startNativePostgres } from '../test/support/native-postgres.ts';
import * as so from '../test/support/scale-out.ts';
import type { Project } from '../test/support/scale-out.ts';
import { knob, pgCtl, ratio, sleep } from './support/engines-harness.ts';
import type { NativePostgres } from '../test/support/native-postgres.ts';
import { fmtMs, nowMs, percentile, printTable, progress } from './support/stats.ts';

const WAKES = knob('LAKEBASE_BENCH_WAKES', 24);
const MOVE_MB = knob('LAKEBASE_BENCH_MOVE_MB', 100);

/** Runs `sql` on a new connection, retrying (a frozen machine answers nothing: the client gives up after 4 s). */
async function firstQuery(uri: string, sql = 'SELECT 1'): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const c = so.client(uri);
    try {
      await c.connect();
      await c.query(sql);
      return;
    } catch (e) {
      if (attempt >= 60) throw e;
      await sleep(250);
    } finally {
      await c.end().catch(() => {});
    }
  }
}

async function suspendAll(stack: LakebaseStack, projects: Project[]): Promise<void> {
  for (const p of projects) await stack.api('POST', `/projects/${p.id}/endpoints/${p.endpointId}/suspend`);
}

/** Wakes every project at once; answers endpoints per second (all answered / the time until the last). */
async function wakeAll(projects: Project[]): Promise<{ perSecond: number; lastMs: number }> {
  const t0 = nowMs();
  await Promise.all(projects.map((p) => firstQuery(p.uri)));
  const lastMs = nowMs() - t0;
  return { perSecond: projects.length / (lastMs / 1000), lastMs };
}

async function waitFor(what: string, ok: () => Promise<boolean>): Promise<void> {
  await so.until(what, 60_000, async () => ((await ok()) ? true : undefined));
}

async function wakeThroughput(stack: LakebaseStack, projects: Project[]): Promise<string[][]> {
  progress(`${WAKES} endpoints woken at once, one compute host live (compute-host-2 frozen)`);
  const frozen = so.servicePid(stack, 'compute-host-2');
  await suspendAll(stack, projects);
  so.signalTree(frozen, 'SIGSTOP');
  await waitFor('compute-host-2 out', async () => (await so.hosts(stack)).find((h) => h.name === 'compute-host-2')?.state === 'dead');
  await sleep(3000);
  const one = await wakeAll(projects);
  await suspendAll(stack, projects);
  so.signalTree(frozen, 'SIGCONT');
  await waitFor('compute-host-2 back', async () => (await so.hosts(stack)).every((h) => h.state === 'live'));
  await sleep(3000);
  progress(`${WAKES} endpoints woken at once, two compute hosts live`);
  const two = await wakeAll(projects);
  const spread = (await so.hosts(stack)).map((h) => `${h.name} ${h.endpoints.length}`).join(', ');
  return [
    ['wake throughput, 1 compute host', `${one.perSecond.toFixed(1)} endpoints/s`, `${WAKES} at once, the last answered after ${fmtMs(one.lastMs)}`],
    ['wake throughput, 2 compute hosts', `${two.perSecond.toFixed(1)} endpoints/s`, `${ratio(two.perSecond, one.perSecond)} of one host; last after ${fmtMs(two.lastMs)}; placed ${spread} (both hosts share this machine's 2 cores)`],
  ];
}

/** Freezes the compute host running most endpoints; the time until each answers again from the other host. */
async function hostTakeover(stack: LakebaseStack, projects: Project[]): Promise<string[][]> {
  const placed = await so.hosts(stack);
  const victim = placed.reduce((a, b) => (b.endpoints.length > a.endpoints.length ? b : a));
  const mine = projects.filter((p) => victim.endpoints.includes(p.endpointId));
  progress(`freezing ${victim.name} with ${mine.length} running endpoints`);
  const pid = so.servicePid(stack, victim.name);
  const t0 = nowMs();
  so.signalTree(pid, 'SIGSTOP');
  const times = await Promise.all(mine.map(async (p) => {
    await firstQuery(p.uri);
    return nowMs() - t0;
  }));
  so.signalTree(pid, 'SIGCONT');
  await waitFor(`${victim.name} back`, async () => (await so.hosts(stack)).every((h) => h.state === 'live'));
  return [[`frozen compute host: its endpoints answer again (${mine.length})`, `p50 ${fmtMs(percentile(times, 50))}, last ${fmtMs(Math.max(...times))}`, 'heartbeat timeout 5 s (--host-heartbeat-timeout-s), then a wake on the other host']];
}

async function nodeTakeover(stack: LakebaseStack, projects: Project[]): Promise<string[][]> {
  const placed = await so.nodes(stack);
  const victim = placed.find((n) => n.projects.length > 0 && n.name !== 'storage-node-1') ?? placed[1];
  const mine = projects.filter((p) => victim.projects.includes(p.id));
  for (const p of mine) await firstQuery(p.uri, 'CREATE TABLE IF NOT EXISTS t (id int)');
  progress(`freezing ${victim.name} with ${mine.length} projects`);
  const pid = so.servicePid(stack, victim.name);
  const t0 = nowMs();
  so.signalTree(pid, 'SIGSTOP');
  // a write: it needs the storage node (a SELECT 1 would be answered by the running compute alone)
  const times = await Promise.all(mine.map(async (p) => {
    await firstQuery(p.uri, 'INSERT INTO t VALUES (1)');
    return nowMs() - t0;
  }));
  so.signalTree(pid, 'SIGCONT');
  await waitFor(`${victim.name} back`, async () => (await so.nodes(stack)).every((n) => n.state === 'live'));
  return [[`frozen storage node: its projects commit again (${mine.length})`, `p50 ${fmtMs(percentile(times, 50))}, last ${fmtMs(Math.max(...times))}`, 'probe timeout 5 s (--storage-node-timeout-s), then takeover from the bucket and a wake']];
}

/** A project with a table of about MOVE_MB, drained from its node to the other, against `cp` of a file that size. */
async function moveTimeline(stack: LakebaseStack): Promise<string[][]> {
  const p = await so.makeProject(stack, 'move-100mb', 'pglite');
  progress(`filling a table of ${MOVE_MB} MB`);
  const c = new pg.Client({ connectionString: p.uri });
  await c.connect();
  await c.query('CREATE TABLE big (id int PRIMARY KEY, pad text)');
  const rows = Math.round((MOVE_MB * 1024 * 1024) / 1100);
  for (let i = 0; i < rows; i += 20_000) await c.query(`INSERT INTO big SELECT g, repeat(md5(g::text), 32) FROM generate_series(${i}, ${Math.min(rows, i + 20_000) - 1}) g`);
  const size = Number((await c.query<{ n: string }>("SELECT pg_database_size('neondb')::text AS n")).rows[0].n);
  await c.end();
  const from = (await so.nodes(stack)).find((n) => n.projects.includes(p.id))!.name;
  const to = from === 'storage-node-1' ? 'storage-node-2' : 'storage-node-1';
  // a drain moves every project of the node one at a time; the row is this project's own move
  progress(`draining ${from} (the ${MOVE_MB} MB project and any other) to ${to}`);
  const moved = await so.drain(stack, from, to);
  const mine = moved.find((m) => m.project_id === p.id)!;
  const file = join(stack.dir, 'copy-source.bin');
  writeFileSync(file, Buffer.alloc(size, 7));
  const t0 = nowMs();
  execFileSync('cp', [file, `${file}.copy`]);
  execFileSync('sync');
  const cpMs = nowMs() - t0;
  const t1 = nowMs();
  await firstQuery(p.uri);
  const wakeMs = nowMs() - t1;
  return [[`move a project of ${(size / 1048576).toFixed(0)} MB to another storage node`, fmtMs(mine.ms), `cp + sync of a file that size ${fmtMs(cpMs)} (${ratio(mine.ms, cpMs)}); its first query afterwards ${fmtMs(wakeMs)}`]];
}

/** Native PostgreSQL stopped (untimed), then `pg_ctl restart -W` and a first query, retried until it answers. */
async function nativeColdStart(native: NativePostgres): Promise<number> {
  const dataDir = join(native.socketDir, 'data');
  await pgCtl(native, ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
  const t0 = nowMs();
  await pgCtl(native, ['-D', dataDir, '-l', join(native.socketDir, 'log'), '-W', 'restart']);
  for (;;) {
    const c = new pg.Client({ connectionString: native.url() });
    try {
      await c.connect();
      await c.query('SELECT 1');
      return nowMs() - t0;
    } catch {
      await sleep(5);
    } finally {
      await c.end().catch(() => undefined);
    }
  }
}

export async function runScaleOutBenchmarks(): Promise<string[]> {
  progress('starting native PostgreSQL 15 and a lakebase with 2 compute hosts and 2 storage nodes (object-store durability)');
  const native = await startNativePostgres({ settings: { fsync: 'on' } });
  let stack: LakebaseStack | null = null;
  try {
    const nativeStart = await nativeColdStart(native);
    stack = await startLakebaseStack({ env: { LAKEBASE_COMPUTE_HOSTS: '2', LAKEBASE_STORAGE_NODES: '2', LAKEBASE_DURABILITY: 'object-store' }, verbose: false });
    const projects: Project[] = [];
    progress(`creating ${WAKES} projects`);
    for (let i = 0; i < WAKES; i++) projects.push(await so.makeProject(stack, `wake-${i}`, 'pglite'));
    for (const p of projects) await firstQuery(p.uri);
    const rows = [
      ...(await wakeThroughput(stack, projects)),
      ...(await hostTakeover(stack, projects)),
      ...(await nodeTakeover(stack, projects)),
      ...(await moveTimeline(stack)),
    ];
    rows.push(['native PostgreSQL 15: pg_ctl start + first query (reference)', fmtMs(nativeStart), 'what one wake replaces']);
    return [printTable('Scale out (issue 15)', ['measure', 'lakebase', 'note'], rows)];
  } finally {
    progress('stopping the lakebase and native PostgreSQL');
    await stack?.stop().catch((e: Error) => progress(`stopping the lakebase: ${e.message}`));
    await native.stop();
  }
}
