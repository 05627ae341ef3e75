// Two compute hosts behind one control plane (`lakebase start --compute-hosts 2`), six projects on both engines
// spread over them. One host is frozen (SIGSTOP of it and every process under it: a hung machine) while writers
// keep writing: every project answers again from the other host with every acknowledged row, and an open
// transaction left on the frozen host can never commit there once the host resumes (the storage node's writer
// generation fences it). The resumed host rejoins and stops what it lost; a suspended endpoint costs no process and
// no memory on any host.
import { readFileSync } from 'node:fs';
import { neon, neonConfig } from '@neondatabase/serverless';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLakebaseStack } from './support/lakebase-stack.ts';
import type { LakebaseStack } from './support/lakebase-stack.ts';
import * as so from './support/scale-out.ts';
import type { Project } from './support/scale-out.ts';

let stack: LakebaseStack;

beforeAll(async () => {
  stack = await startLakebaseStack({ env: { LAKEBASE_COMPUTE_HOSTS: '2' } });
  neonConfig.fetchEndpoint = () => stack.sqlUrl;
}, 120_000);

afterAll(async () => {
  for (const pid of [...frozen]) so.signalTree(pid, 'SIGCONT', frozen);
  await stack?.stop();
});

const frozen = new Set<number>();

describe('two compute hosts, one frozen', () => {
  it('every project answers again from the other host with every acknowledged row; the frozen host is fenced, rejoins and stops what it lost; suspended endpoints cost nothing', async () => {
    // what each host holds with no compute (its pool of ready workers): a suspended endpoint adds nothing to it
    await stack.suspend();
    const idle = new Map((await so.until('both hosts idle', 15_000, async () => {
      const hs = await so.hosts(stack);
      return hs.every((h) => h.computes === 0) ? hs : undefined;
    })).map((h) => [h.name, h.memory_used_bytes]));
    const projects: Project[] = [{ id: stack.project.id, endpointId: stack.project.endpointId, uri: stack.project.connectionString, engine: 'pglite' }];
    for (const [i, engine] of (['pglite', 'pglite', 'pglite', 'postgres', 'postgres'] as const).entries()) projects.push(await so.makeProject(stack, `spread-${i}`, engine));
    for (const p of projects) await so.createTable(p);
    const placed = await so.hosts(stack);
    expect(placed.map((h) => h.state)).toEqual(['live', 'live']);
    for (const h of placed) expect(h.endpoints.length, JSON.stringify(placed)).toBeGreaterThan(0);
    expect(placed.flatMap((h) => h.endpoints).sort()).toEqual(projects.map((p) => p.endpointId).sort());

    // the host to freeze, and on it a PGlite project whose open transaction will try to commit after the takeover
    const victim = placed.reduce((a, b) => (b.endpoints.length > a.endpoints.length ? b : a));
    const ghostProject = projects.find((p) => p.engine === 'pglite' && victim.endpoints.includes(p.endpointId));
    expect(ghostProject, 'a PGlite project on the frozen host').toBeDefined();
    const ghost = new pg.Client({ connectionString: ghostProject!.uri });
    ghost.on('error', () => {});
    await ghost.connect();
    await ghost.query('BEGIN');
    await ghost.query('INSERT INTO t (id) VALUES (-1)');

    const writers = projects.filter((p) => p !== ghostProject).map((p) => so.writer(p));
    await so.sleep(1500);
    const victimPid = so.servicePid(stack, victim.name);
    so.signalTree(victimPid, 'SIGSTOP', frozen);
    const frozenAt = Date.now();
    const commit = ghost.query('COMMIT').then(() => 'committed', (e: Error) => `refused: ${e.message}`);

    // within 30 s every project answers again: each writer had a row acknowledged after the freeze, and the
    // ghost's project answers a read over HTTP
    await so.until('every project answering again', 30_000, async () => (writers.every((w) => w.acked.some((a) => a.at > frozenAt + 500)) ? true : undefined));
    const sql = neon(ghostProject!.uri);
    await so.until("the frozen host's PGlite project answering over HTTP", 30_000, async () => {
      const rows = await sql`SELECT count(*)::int AS n FROM t WHERE id = -1`;
      return rows[0].n === 0 ? true : undefined;
    });
    const moved = await so.hosts(stack);
    expect(moved.find((h) => h.name === victim.name)?.state).toBe('dead');
    expect(moved.find((h) => h.name !== victim.name)?.endpoints.sort()).toEqual(projects.map((p) => p.endpointId).sort());

    // the frozen host resumes while the control plane cannot tell it to stop what it lost (frozen in turn): its
    // open transaction's COMMIT reaches the timeline it lost, and the storage node refuses it
    const cpPid = so.servicePid(stack, 'control-plane');
    so.signalTree(cpPid, 'SIGSTOP', frozen);
    so.signalTree(victimPid, 'SIGCONT', frozen);
    expect(await commit).toMatch(/^refused: .*taken over by a newer compute \(writer generation \d+; this batch's is \d+\)/);
    so.signalTree(cpPid, 'SIGCONT', frozen);
    await ghost.end().catch(() => {});
    await so.until(`${victim.name} rejoining without the computes it lost`, 30_000, async () => {
      const v = (await so.hosts(stack)).find((h) => h.name === victim.name);
      return v?.state === 'live' && v.computes === 0 ? true : undefined;
    });

    for (const w of writers) await w.stop();
    for (const w of writers) {
      expect(await so.missingRows(w), `${w.p.engine} project ${w.p.id}: acknowledged rows missing`).toEqual([]);
      expect(w.acked.length).toBeGreaterThan(10);
    }
    // a fresh compute reads the timeline itself: the ghost row is not in it
    await stack.api('POST', `/projects/${ghostProject!.id}/endpoints/${ghostProject!.endpointId}/suspend`);
    expect((await sql`SELECT count(*)::int AS n FROM t WHERE id = -1`)[0].n).toBe(0);

    // suspended endpoints cost no process and no memory on any host
    for (const p of projects) await stack.api('POST', `/projects/${p.id}/endpoints/${p.endpointId}/suspend`);
    const after = await so.until('both hosts back to their idle memory', 30_000, async () => {
      const hs = await so.hosts(stack);
      return hs.every((h) => h.computes === 0 && h.memory_used_bytes === idle.get(h.name)) ? hs : undefined;
    });
    for (const h of after) expect(h.endpoints).toEqual([]);
    const leftovers = so.tree(stack.pid).filter((pid) => {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        return projects.some((p) => cmd.includes(p.endpointId)) || /postgres: /.test(cmd);
      } catch {
        return false;
      }
    });
    expect(leftovers).toEqual([]);
  }, 240_000);
});

describe('the hosts door and the admin view', () => {
  const heartbeat = (token: string, body: unknown) =>
    fetch(`${stack.controlPlaneUrl}/hosts/v1/heartbeat`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const good = { name: 'intruder', url: 'http://127.0.0.1:1', engines: ['pglite'], memoryBudgetBytes: 1 << 30, memoryUsedBytes: 0, computes: [] };

  it('refuses a heartbeat without the compute hosts\' token, or a malformed one, and registers nothing', async () => {
    const token = (JSON.parse(readFileSync(`${stack.dir}/secrets.json`, 'utf8')) as { computeApiToken: string }).computeApiToken;
    expect((await heartbeat('wrong', good)).status).toBe(401);
    expect((await heartbeat(stack.apiKey, good)).status).toBe(401); // the public API key is not a host's credential
    const bad = await heartbeat(token, { ...good, name: 'Not A Name!' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/name must be 1-63 characters/);
    expect((await heartbeat(token, { ...good, engines: ['oracle'] })).status).toBe(400);
    expect((await heartbeat(token, { ...good, computes: [{ id: 'x', host: '127.0.0.1', port: 70000, engine: 'pglite' }] })).status).toBe(400);
    expect((await so.hosts(stack)).map((h) => h.name).sort()).toEqual(['compute-host-1', 'compute-host-2']);
  });

  it('shows the machines only with the API key', async () => {
    expect((await fetch(`${stack.controlPlaneUrl}/admin/v1/compute_hosts`)).status).toBe(401);
    expect((await fetch(`${stack.controlPlaneUrl}/admin/v1/storage_nodes`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    const nodes = await fetch(`${stack.controlPlaneUrl}/admin/v1/storage_nodes`, { headers: { authorization: `Bearer ${stack.apiKey}` } });
    expect(((await nodes.json()) as { storage_nodes: { name: string; state: string }[] }).storage_nodes).toEqual([expect.objectContaining({ name: 'storage-node-1', state: 'live' })]);
    // tenants' API says nothing of hosts
    const seen = JSON.stringify([
      await stack.api('GET', `/projects/${stack.project.id}`),
      await stack.api('GET', `/projects/${stack.project.id}/endpoints`),
    ]);
    for (const h of await so.hosts(stack)) expect(seen).not.toContain(h.name);
    for (const url of Object.values(stack.computeHosts)) expect(seen).not.toContain(new URL(url).host);
  });
});
