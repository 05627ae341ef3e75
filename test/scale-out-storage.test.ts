// Two storage nodes over one bucket behind one control plane (`lakebase start --storage-nodes 2 --compute-hosts 2`,
// object-store durability), six projects on both engines spread over them. One node is frozen (SIGSTOP: a hung
// machine) while writers keep writing: its projects are taken over by the other node from the bucket and every
// project answers again with every acknowledged row. Then a node is drained on purpose while the writers write: its
// projects move, and no acknowledged row is lost. With local durability a frozen node's projects are not taken
// over (its recent writes are on its disk only): they wait for it, saying why, and answer again when it resumes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLakebaseStack } from './support/lakebase-stack.ts';
import type { LakebaseStack } from './support/lakebase-stack.ts';
import * as so from './support/scale-out.ts';
import type { Project } from './support/scale-out.ts';

const frozen = new Set<number>();
afterAll(() => {
  for (const pid of [...frozen]) so.signalTree(pid, 'SIGCONT', frozen);
});

/** Every writer had a row acknowledged after `since`. */
const allAnswered = (writers: so.Writer[], since: number) => async () => (writers.every((w) => w.acked.some((a) => a.at > since)) ? true : undefined);

describe('two storage nodes, object-store durability', () => {
  let stack: LakebaseStack;
  beforeAll(async () => {
    stack = await startLakebaseStack({ env: { LAKEBASE_COMPUTE_HOSTS: '2', LAKEBASE_STORAGE_NODES: '2', LAKEBASE_DURABILITY: 'object-store' } });
  }, 120_000);
  afterAll(async () => {
    for (const pid of [...frozen]) so.signalTree(pid, 'SIGCONT', frozen);
    await stack?.stop();
  });

  it('a frozen node is taken over from the bucket, and a drained node hands its projects over, with every acknowledged row', async () => {
    const projects: Project[] = [{ id: stack.project.id, endpointId: stack.project.endpointId, uri: stack.project.connectionString, engine: 'pglite' }];
    for (const [i, engine] of (['pglite', 'pglite', 'pglite', 'postgres', 'postgres'] as const).entries()) projects.push(await so.makeProject(stack, `spread-${i}`, engine));
    for (const p of projects) await so.createTable(p);
    const spread = await so.nodes(stack);
    expect(spread.map((n) => [n.name, n.state, n.durability])).toEqual([['storage-node-1', 'live', 'object-store'], ['storage-node-2', 'live', 'object-store']]);
    for (const n of spread) expect(n.projects.length, JSON.stringify(spread)).toBeGreaterThan(0);
    expect(spread.flatMap((n) => n.projects).sort()).toEqual(projects.map((p) => p.id).sort());
    const onHosts = await so.hosts(stack);
    for (const h of onHosts) expect(h.endpoints.length, JSON.stringify(onHosts)).toBeGreaterThan(0);

    const writers = projects.map((p) => so.writer(p));
    await so.sleep(1500);
    // freeze the second node: its projects move to the first, from the bucket
    const pid = so.servicePid(stack, 'storage-node-2');
    so.signalTree(pid, 'SIGSTOP', frozen);
    const frozenAt = Date.now();
    await so.until('every project answering again', 30_000, allAnswered(writers, frozenAt + 500)).catch((e: Error) => {
      const late = writers.filter((w) => !w.acked.some((x) => x.at > frozenAt + 500)).map((w) => `${w.p.engine} ${w.p.id}`);
      const lines = stack.log().split('\n').filter((l) => /"level":(40|50)/.test(l) && !/heartbeat/.test(l)).slice(-60).join('\n');
      throw new Error(`${e.message}; not answering: ${late.join(', ')}\n${lines}`);
    });
    const after = await so.nodes(stack);
    expect(after.find((n) => n.name === 'storage-node-2')?.state).toBe('dead');
    expect(after.find((n) => n.name === 'storage-node-1')?.projects.sort()).toEqual(projects.map((p) => p.id).sort());

    // the frozen node resumes and is live again; it serves nothing it lost
    so.signalTree(pid, 'SIGCONT', frozen);
    await so.until('storage-node-2 live again', 15_000, async () => ((await so.nodes(stack)).find((n) => n.name === 'storage-node-2')?.state === 'live' ? true : undefined));

    // drain the first node while the writers write: every project moves to the second
    const drainedAt = Date.now();
    const moved = await so.drain(stack, 'storage-node-1');
    expect(moved.map((m) => m.project_id).sort()).toEqual(projects.map((p) => p.id).sort());
    expect(new Set(moved.map((m) => m.to))).toEqual(new Set(['storage-node-2']));
    await so.until('every project answering after the drain', 30_000, allAnswered(writers, Date.now()));
    expect(Date.now()).toBeGreaterThan(drainedAt);
    for (const w of writers) await w.stop();
    for (const w of writers) {
      expect(await so.missingRows(w), `${w.p.engine} project ${w.p.id}: acknowledged rows missing`).toEqual([]);
      expect(w.acked.length).toBeGreaterThan(10);
    }
    const last = await so.nodes(stack);
    expect(last.find((n) => n.name === 'storage-node-2')?.projects.sort()).toEqual(projects.map((p) => p.id).sort());
  }, 300_000);

  it('a drain names its refusals: an unknown node, a bad target', async () => {
    const res = await fetch(`${stack.controlPlaneUrl}/admin/v1/storage_nodes/storage-node-9/drain`, { method: 'POST', headers: { authorization: `Bearer ${stack.apiKey}` } });
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/storage node storage-node-9 is not configured/);
    const bad = await fetch(`${stack.controlPlaneUrl}/admin/v1/storage_nodes/storage-node-1/drain`, {
      method: 'POST', headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ to: 'elsewhere' }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/to must name a storage node/);
  });
});

describe('two storage nodes, local durability', () => {
  let stack: LakebaseStack;
  beforeAll(async () => {
    stack = await startLakebaseStack({ env: { LAKEBASE_STORAGE_NODES: '2', LAKEBASE_DURABILITY: 'local' } });
  }, 120_000);
  afterAll(async () => {
    for (const pid of [...frozen]) so.signalTree(pid, 'SIGCONT', frozen);
    await stack?.stop();
  });

  it("a frozen node's projects wait for it (nothing acknowledged is risked) and answer again when it resumes", async () => {
    const projects = [await so.makeProject(stack, 'a', 'pglite'), await so.makeProject(stack, 'b', 'pglite')];
    const onNode2 = (await so.nodes(stack)).find((n) => n.name === 'storage-node-2')!.projects;
    const p = projects.find((x) => onNode2.includes(x.id))!;
    expect(p, 'a project on storage-node-2').toBeDefined();
    await so.createTable(p);
    const w = so.writer(p);
    await so.until('rows acknowledged', 15_000, async () => (w.acked.length > 5 ? true : undefined));
    await w.stop();
    await stack.api('POST', `/projects/${p.id}/endpoints/${p.endpointId}/suspend`);
    const pid = so.servicePid(stack, 'storage-node-2');
    so.signalTree(pid, 'SIGSTOP', frozen);
    await so.until('storage-node-2 dead', 15_000, async () => ((await so.nodes(stack)).find((n) => n.name === 'storage-node-2')?.state === 'dead' ? true : undefined));
    // the project stays on its node, and a start says why it cannot
    const start = await fetch(`${stack.apiUrl}/projects/${p.id}/endpoints/${p.endpointId}/start`, { method: 'POST', headers: { authorization: `Bearer ${stack.apiKey}` } });
    expect(start.status).toBe(503);
    expect(await start.text()).toMatch(/storage node storage-node-2.*local durability/);
    expect((await so.nodes(stack)).find((n) => n.name === 'storage-node-2')?.projects).toContain(p.id);
    so.signalTree(pid, 'SIGCONT', frozen);
    const again = so.writer(p, 1_000_000);
    await so.until('the project answering again', 30_000, async () => (again.acked.length > 0 ? true : undefined));
    await again.stop();
    expect(await so.missingRows(w)).toEqual([]);
    expect(await so.missingRows(again)).toEqual([]);
  }, 180_000);
});
