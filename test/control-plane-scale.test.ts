// Many branches and projects through the public API (real storage node, real control plane, no compute host):
// Neon's cursor pagination walks 1,000 branches without a duplicate or a gap, also while branches are created and
// deleted during the walk; projects page the same way; and the state survives a control-plane restart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlaneStack } from './support/control-plane-stack.ts';
import type { ControlPlaneStack } from './support/control-plane-stack.ts';

type J = Record<string, any>; // JSON answers under test

let stack: ControlPlaneStack;
beforeAll(async () => {
  stack = await startControlPlaneStack();
});
afterAll(async () => {
  await stack?.close();
});

async function ok(method: string, path: string, body?: unknown): Promise<J> {
  const r = await stack.call<J>(method, path, body);
  expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
  return r.body;
}

/** Runs `n` calls of `f`, `parallel` at a time. */
async function times(n: number, parallel: number, f: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < n) await f(next++);
  }));
}

/** Every page of the branch list: the ids in order, and what happened between pages. */
async function walk(projectId: string, query: string, between: (page: number) => Promise<void> = async () => {}): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 1000; page++) {
    const r = await ok('GET', `/projects/${projectId}/branches?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    ids.push(...r.branches.map((b: J) => b.id));
    cursor = r.pagination.next;
    if (!cursor) return ids;
    await between(page);
  }
  throw new Error('the walk did not end');
}

describe('a project with 1,000 branches', () => {
  it('pages through every branch once, in order, also while branches come and go during the walk', async () => {
    const p = await ok('POST', '/projects', { project: { name: 'many' } });
    const id = p.project.id as string;
    await times(1000, 8, (i) => ok('POST', `/projects/${id}/branches`, { branch: { name: `b-${String(i).padStart(4, '0')}` } }));
    const all = (await ok('GET', `/projects/${id}/branches`)).branches.map((b: J) => b.id as string);
    expect(all).toHaveLength(1001);

    const byAge = await walk(id, 'limit=64');
    expect(byAge).toEqual(all); // oldest first, the unpaged order
    expect(new Set(byAge).size).toBe(1001);

    // by name, newest name first, while 30 branches are deleted and 30 made between pages
    const doomed = all.slice(500, 530);
    const stable = all.filter((b: string) => !doomed.includes(b));
    const made: string[] = [];
    const byName = await walk(id, 'limit=50&sort_by=name&sort_order=desc', async (page) => {
      if (page >= 10) return;
      for (const b of doomed.slice(page * 3, page * 3 + 3)) await ok('DELETE', `/projects/${id}/branches/${b}`);
      for (let k = 0; k < 3; k++) made.push((await ok('POST', `/projects/${id}/branches`, { branch: { name: `late-${page}-${k}` } })).branch.id);
    });
    expect(new Set(byName).size).toBe(byName.length); // no duplicate
    for (const b of stable) expect(byName).toContain(b); // no gap among the branches that were there all along
    const names = (await ok('GET', `/projects/${id}/branches`)).branches as J[];
    const nameOf = new Map(names.map((b) => [b.id as string, b.name as string]));
    const seen = byName.filter((b) => nameOf.has(b)).map((b) => nameOf.get(b)!);
    expect(seen).toEqual([...seen].sort().reverse());

    const bad = await stack.call<J>('GET', `/projects/${id}/branches?cursor=not-a-cursor`);
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/cursor/);
  }, 300_000);

  it('pages projects by cursor, and keeps every record across a control-plane restart', async () => {
    await times(25, 5, (i) => ok('POST', '/projects', { project: { name: `page-${i}` } }));
    const seen: string[] = [];
    let cursor = '';
    for (let i = 0; i < 100; i++) {
      const r = await ok('GET', `/projects?limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      if (r.projects.length === 0) break;
      seen.push(...r.projects.map((p: J) => p.id));
      cursor = r.pagination.cursor;
    }
    const everything = (await ok('GET', '/projects?limit=400')).projects.map((p: J) => p.id);
    expect(seen).toEqual(everything);
    expect(new Set(seen).size).toBe(seen.length);

    const before = (await ok('GET', '/projects?limit=400')).projects;
    await stack.restartControlPlane();
    expect((await ok('GET', '/projects?limit=400')).projects).toEqual(before);
  }, 120_000);
});
