// The public API (/api/v2) end to end over HTTP, against a real storage node and a real control plane (no compute
// host here: computes can't start, roles and databases are records only; test/control-plane-stack.test.ts runs
// the SQL side on the whole stack). Every route, bad input, unknown ids, another project's ids, a wrong key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageClient } from '../storage-node/client.ts';
import { formatLsn, parseLsn } from '../control-plane/lsn.ts';
import { startControlPlaneStack } from './support/control-plane-stack.ts';
import type { ControlPlaneStack } from './support/control-plane-stack.ts';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers under test

let stack: ControlPlaneStack;
beforeAll(async () => {
  stack = await startControlPlaneStack();
});
afterAll(async () => {
  await stack?.close();
});

const call = (method: string, path: string, body?: unknown, opts?: { key?: string | null; raw?: string }) => stack.call<J>(method, path, body, opts);

async function newProject(name = 'p'): Promise<J> {
  const r = await call('POST', '/projects', { project: { name } });
  expect(r.status).toBe(201);
  return r.body;
}

describe('LSN form', () => {
  it('formats integers as Postgres LSNs and parses both forms', () => {
    expect(formatLsn(0)).toBe('0/0');
    expect(formatLsn(1000)).toBe('0/3E8');
    expect(formatLsn(2 ** 32 + 1)).toBe('1/1');
    expect(parseLsn('0/3E8')).toBe(1000);
    expect(parseLsn('1/1')).toBe(2 ** 32 + 1);
    expect(parseLsn('1000')).toBe(1000);
    expect(parseLsn('x/1')).toBeNull();
    expect(parseLsn('-1')).toBeNull();
  });
});

describe('auth and errors', () => {
  it('refuses a missing or wrong API key with 401 and Neon error JSON', async () => {
    for (const key of [null, 'wrong', '']) {
      const r = await call('GET', '/projects', undefined, { key });
      expect(r.status).toBe(401);
      expect(r.body).toMatchObject({ code: expect.any(String), message: expect.stringContaining('Bearer') });
    }
    const r = await call('POST', '/projects', { project: {} }, { key: 'wrong' });
    expect(r.status).toBe(401);
    expect((await call('GET', '/projects')).body.projects.length).toBe(0);
  });
  it('answers 404 JSON for unknown routes and unknown projects', async () => {
    expect((await call('GET', '/nothing-here')).status).toBe(404);
    const r = await call('GET', '/projects/no-such-project-12345678');
    expect(r.status).toBe(404);
    expect(r.body.code).toBe('PROJECT_NOT_FOUND');
  });
  it('refuses malformed bodies', async () => {
    for (const raw of ['{', '[]', '"x"', '42']) expect((await call('POST', '/projects', undefined, { raw })).status).toBe(400);
    for (const project of [{ name: 5 }, { name: '' }, { region_id: 'aws-us-east-2' }, { pg_version: 12 }, { pg_version: 'x' },
      { default_endpoint_settings: { suspend_timeout_seconds: -5 } }, { default_endpoint_settings: 'x' }, { branch: { role_name: 'alice' } }, 'x']) {
      const r = await call('POST', '/projects', { project });
      expect(r.status, JSON.stringify(project)).toBe(400);
      expect(r.body.message).toEqual(expect.any(String));
    }
    expect((await call('GET', '/projects')).body.projects.length).toBe(0); // nothing was created
  });
});

describe('projects', () => {
  it('creates a project with branch, endpoint, role with password, database, connection URIs and operations', async () => {
    const p = await newProject('first');
    expect(p.project).toMatchObject({ name: 'first', region_id: 'local', pg_version: expect.any(Number) });
    expect(p.branch).toMatchObject({ name: 'main', default: true, current_state: 'ready', project_id: p.project.id });
    expect(p.endpoints[0]).toMatchObject({ type: 'read_write', current_state: 'idle', branch_id: p.branch.id, host: `${p.endpoints[0].id}.lakebase.localhost:5433` });
    expect(p.roles[0]).toMatchObject({ name: 'neondb_owner', password: expect.stringMatching(/^npg_/) });
    expect(p.databases[0]).toMatchObject({ name: 'neondb', owner_name: 'neondb_owner', id: expect.any(Number) });
    expect(p.connection_uris[0].connection_uri).toContain(encodeURIComponent(p.roles[0].password));
    expect(p.operations.map((o: J) => o.action)).toEqual(['create_timeline', 'start_compute']);
    expect(p.operations.every((o: J) => o.status === 'finished')).toBe(true);
    const got = await call('GET', `/projects/${p.project.id}`);
    expect(got.body.project.id).toBe(p.project.id);
    const ops = await call('GET', `/projects/${p.project.id}/operations`);
    expect(ops.body.operations.map((o: J) => o.id).sort()).toEqual(p.operations.map((o: J) => o.id).sort());
    const op = await call('GET', `/projects/${p.project.id}/operations/${p.operations[0].id}`);
    expect(op.body.operation).toMatchObject({ id: p.operations[0].id, status: 'finished' });
    expect((await call('GET', `/projects/${p.project.id}/operations/00000000-0000-0000-0000-000000000000`)).status).toBe(404);
  });

  it('lists with pagination, updates name and default suspend timeout, deletes (timelines too)', async () => {
    const a = await newProject('a');
    const b = await newProject('b');
    const all = await call('GET', '/projects?limit=400');
    expect(all.body.projects.map((x: J) => x.id)).toEqual(expect.arrayContaining([a.project.id, b.project.id]));
    const page1 = await call('GET', '/projects?limit=1');
    expect(page1.body.projects.length).toBe(1);
    const page2 = await call('GET', `/projects?limit=1&cursor=${page1.body.pagination.cursor}`);
    expect(page2.body.projects[0].id).not.toBe(page1.body.projects[0].id);
    expect((await call('GET', '/projects?limit=0')).status).toBe(400);

    const up = await call('PATCH', `/projects/${a.project.id}`, { project: { name: 'renamed', default_endpoint_settings: { suspend_timeout_seconds: 60 } } });
    expect(up.status).toBe(200);
    expect(up.body.project).toMatchObject({ name: 'renamed', default_endpoint_settings: { suspend_timeout_seconds: 60 } });
    expect((await call('GET', `/projects/${a.project.id}/endpoints/${a.endpoints[0].id}`)).body.endpoint.suspend_timeout_seconds).toBe(60);
    expect((await call('PATCH', `/projects/${a.project.id}`, { project: { name: 7 } })).status).toBe(400);
    expect((await call('PATCH', `/projects/${a.project.id}`, {})).status).toBe(400);

    const storage = new StorageClient(stack.storage.url, stack.storage.token);
    const timeline = (await storage.listTimelines()).length;
    const del = await call('DELETE', `/projects/${b.project.id}`);
    expect(del.status).toBe(200);
    expect(del.body.project.id).toBe(b.project.id);
    expect((await call('GET', `/projects/${b.project.id}`)).status).toBe(404);
    expect((await storage.listTimelines()).length).toBe(timeline - 1);
    expect((await call('DELETE', `/projects/${b.project.id}`)).status).toBe(404);
  });

  it('connection_uri: by branch, database and role; pooled; validated', async () => {
    const p = await newProject();
    const id = p.project.id;
    const r = await call('GET', `/projects/${id}/connection_uri?database_name=neondb&role_name=neondb_owner`);
    expect(r.status).toBe(200);
    expect(r.body.uri).toBe(p.connection_uris[0].connection_uri);
    const pooled = await call('GET', `/projects/${id}/connection_uri?database_name=neondb&role_name=neondb_owner&pooled=true&branch_id=${p.branch.id}`);
    expect(pooled.body.uri).toContain('-pooler.');
    expect((await call('GET', `/projects/${id}/connection_uri?role_name=neondb_owner`)).status).toBe(400);
    expect((await call('GET', `/projects/${id}/connection_uri?database_name=neondb&role_name=nobody`)).status).toBe(404);
    expect((await call('GET', `/projects/${id}/connection_uri?database_name=nodb&role_name=neondb_owner`)).status).toBe(404);
    expect((await call('GET', `/projects/${id}/connection_uri?database_name=neondb&role_name=neondb_owner&pooled=maybe`)).status).toBe(400);
    expect((await call('GET', `/projects/${id}/connection_uri?database_name=neondb&role_name=neondb_owner&branch_id=br-no-such-12345678`)).status).toBe(404);
  });
});

describe('branches', () => {
  it('creates at head, at an LSN and at a timestamp, with and without endpoints; lists, gets, renames', async () => {
    const p = await newProject();
    const id = p.project.id;
    const main = p.branch;
    const storage = new StorageClient(stack.storage.url, stack.storage.token);
    const head = (await storage.getTimeline((stack.cp.projects as unknown as { state: { current: J } }).state.current.branches[main.id].timeline_id));
    const a = await call('POST', `/projects/${id}/branches`, { branch: { name: 'dev' }, endpoints: [{ type: 'read_write' }] });
    expect(a.status).toBe(201);
    expect(a.body.branch).toMatchObject({ name: 'dev', parent_id: main.id, parent_lsn: formatLsn(head.lastWalLsn!), default: false });
    expect(a.body.endpoints[0]).toMatchObject({ type: 'read_write', branch_id: a.body.branch.id });
    expect(a.body.roles.map((r: J) => r.name)).toEqual(['neondb_owner']);
    expect(a.body.connection_uris[0].connection_uri).toContain(a.body.endpoints[0].id);
    expect(a.body.operations.map((o: J) => o.action)).toEqual(['create_branch', 'start_compute']);

    const b = await call('POST', `/projects/${id}/branches`, { branch: { parent_id: main.id, parent_lsn: formatLsn(head.lastWalLsn!) } });
    expect(b.status).toBe(201);
    expect(b.body.branch.name).toBe(b.body.branch.id);
    expect(b.body.endpoints).toEqual([]);
    const ts = await call('POST', `/projects/${id}/branches`, { branch: { name: 'then', parent_timestamp: new Date().toISOString() } });
    expect(ts.status).toBe(201);
    expect(ts.body.branch.parent_timestamp).toEqual(expect.any(String));

    const list = await call('GET', `/projects/${id}/branches`);
    expect(list.body.branches.map((x: J) => x.name).sort()).toEqual(['dev', 'main', 'then', b.body.branch.id].sort());
    expect(list.body.annotations).toEqual({});
    expect((await call('GET', `/projects/${id}/branches/${a.body.branch.id}`)).body.branch.name).toBe('dev');
    const ren = await call('PATCH', `/projects/${id}/branches/${a.body.branch.id}`, { branch: { name: 'dev2' } });
    expect(ren.body.branch.name).toBe('dev2');
    expect((await call('PATCH', `/projects/${id}/branches/${a.body.branch.id}`, { branch: { name: 'main' } })).status).toBe(409);
    expect((await call('GET', `/projects/${id}/branches/${a.body.branch.id}/endpoints`)).body.endpoints.length).toBe(1);
  });

  it('refuses bad branch input and changes nothing', async () => {
    const p = await newProject();
    const id = p.project.id;
    const bad: J[] = [
      { branch: { name: 5 } }, { branch: { parent_lsn: 'zz' } }, { branch: { parent_timestamp: 'yesterday' } },
      { branch: { parent_lsn: '0/1', parent_timestamp: new Date().toISOString() } }, { branch: { parent_timestamp: '2999-01-01T00:00:00Z' } },
      { branch: { parent_lsn: 'FFFF/0' } }, { branch: { parent_timestamp: '2000-01-01T00:00:00Z' } },
      { endpoints: [{ type: 'read_write' }, { type: 'read_write' }] }, { endpoints: [{ type: 'big' }] }, { endpoints: 'x' },
      { branch: { name: 'main' } }, { branch: { init_source: 'schema-only' } },
    ];
    for (const body of bad) {
      const r = await call('POST', `/projects/${id}/branches`, body);
      expect([400, 409], JSON.stringify(body) + JSON.stringify(r.body)).toContain(r.status);
      expect(r.body.message).toEqual(expect.any(String));
    }
    const r = await call('POST', `/projects/${id}/branches`, { branch: { parent_id: 'br-no-such-branch-12345678' } });
    expect(r.status).toBe(404);
    expect((await call('GET', `/projects/${id}/branches`)).body.branches.length).toBe(1);
  });

  it('delete: refused for the default branch and while the branch has children (Neon), then allowed', async () => {
    const p = await newProject();
    const id = p.project.id;
    const parent = (await call('POST', `/projects/${id}/branches`, { branch: { name: 'parent' }, endpoints: [{ type: 'read_write' }] })).body;
    const child = (await call('POST', `/projects/${id}/branches`, { branch: { name: 'child', parent_id: parent.branch.id } })).body;
    const d0 = await call('DELETE', `/projects/${id}/branches/${p.branch.id}`);
    expect(d0.status).toBe(422);
    const d1 = await call('DELETE', `/projects/${id}/branches/${parent.branch.id}`);
    expect(d1.status).toBe(422);
    expect(d1.body.code).toBe('BRANCH_HAS_CHILDREN');
    expect((await call('DELETE', `/projects/${id}/branches/${child.branch.id}`)).status).toBe(200);
    const d2 = await call('DELETE', `/projects/${id}/branches/${parent.branch.id}`);
    expect(d2.status).toBe(200);
    expect(d2.body.operations.map((o: J) => o.action)).toEqual(['suspend_compute', 'delete_timeline']);
    expect((await call('GET', `/projects/${id}/endpoints/${parent.endpoints[0].id}`)).status).toBe(404);
    expect((await call('GET', `/projects/${id}/branches/${parent.branch.id}`)).status).toBe(404);
  });

  it('restore: to the parent head, with preserve_under_name, from its own history, validated', async () => {
    const p = await newProject();
    const id = p.project.id;
    const dev = (await call('POST', `/projects/${id}/branches`, { branch: { name: 'dev' } })).body.branch;
    const reset = await call('POST', `/projects/${id}/branches/${dev.id}/restore`, { source_branch_id: p.branch.id });
    expect(reset.status).toBe(200);
    expect(reset.body.branch).toMatchObject({ id: dev.id, parent_id: p.branch.id, last_reset_at: expect.any(String) });
    const kept = await call('POST', `/projects/${id}/branches/${dev.id}/restore`, { source_branch_id: p.branch.id, preserve_under_name: 'dev-old' });
    expect(kept.status).toBe(200);
    const names = (await call('GET', `/projects/${id}/branches`)).body.branches.map((b: J) => b.name);
    expect(names).toContain('dev-old');
    // Own history needs a point and a name for the current state (Neon).
    expect((await call('POST', `/projects/${id}/branches/${dev.id}/restore`, { source_branch_id: dev.id })).status).toBe(400);
    expect((await call('POST', `/projects/${id}/branches/${dev.id}/restore`, { source_branch_id: dev.id, source_lsn: kept.body.branch.parent_lsn })).status).toBe(400);
    const self = await call('POST', `/projects/${id}/branches/${dev.id}/restore`, { source_branch_id: dev.id, source_lsn: kept.body.branch.parent_lsn, preserve_under_name: 'dev-before' });
    expect(self.status).toBe(200);
    const before = (await call('GET', `/projects/${id}/branches`)).body.branches.find((b: J) => b.name === 'dev-before');
    expect(self.body.branch.parent_id).toBe(before.id);
    for (const body of [{}, { source_branch_id: 5 }, { source_branch_id: p.branch.id, source_lsn: 'nope' }, { source_branch_id: p.branch.id, source_timestamp: 'x' }, { source_branch_id: p.branch.id, preserve_under_name: 'main' }]) {
      const r = await call('POST', `/projects/${id}/branches/${dev.id}/restore`, body);
      expect([400, 409], JSON.stringify(body)).toContain(r.status);
    }
    expect((await call('POST', `/projects/${id}/branches/${dev.id}/restore`, { source_branch_id: 'br-no-such-branch-12345678' })).status).toBe(404);
  });
});

describe('endpoints', () => {
  it('create (one read_write per branch), list, get, update, suspend, delete; start says why it cannot', async () => {
    const p = await newProject();
    const id = p.project.id;
    const dup = await call('POST', `/projects/${id}/endpoints`, { endpoint: { branch_id: p.branch.id, type: 'read_write' } });
    expect(dup.status).toBe(409);
    const ro = await call('POST', `/projects/${id}/endpoints`, { endpoint: { branch_id: p.branch.id, type: 'read_only', suspend_timeout_seconds: 120 } });
    expect(ro.status).toBe(201);
    expect(ro.body.endpoint).toMatchObject({ type: 'read_only', suspend_timeout_seconds: 120, current_state: 'idle' });
    for (const endpoint of [{ branch_id: p.branch.id }, { type: 'read_only' }, { branch_id: p.branch.id, type: 'x' }, { branch_id: p.branch.id, type: 'read_only', suspend_timeout_seconds: 10 ** 9 }]) {
      expect((await call('POST', `/projects/${id}/endpoints`, { endpoint })).status, JSON.stringify(endpoint)).toBe(400);
    }
    expect((await call('POST', `/projects/${id}/endpoints`, { endpoint: { branch_id: 'br-no-such-branch-1', type: 'read_only' } })).status).toBe(404);
    expect((await call('GET', `/projects/${id}/endpoints`)).body.endpoints.length).toBe(2);
    const up = await call('PATCH', `/projects/${id}/endpoints/${ro.body.endpoint.id}`, { endpoint: { suspend_timeout_seconds: -1 } });
    expect(up.body.endpoint.suspend_timeout_seconds).toBe(-1);
    expect((await call('PATCH', `/projects/${id}/endpoints/${ro.body.endpoint.id}`, { endpoint: { suspend_timeout_seconds: 'x' } })).status).toBe(400);
    const start = await call('POST', `/projects/${id}/endpoints/${ro.body.endpoint.id}/start`);
    expect(start.status).toBe(503);
    expect(start.body.message).toContain('compute host');
    const sus = await call('POST', `/projects/${id}/endpoints/${ro.body.endpoint.id}/suspend`);
    expect(sus.status).toBe(200);
    expect(sus.body.endpoint.current_state).toBe('idle');
    expect(sus.body.operations[0].action).toBe('suspend_compute');
    expect((await call('DELETE', `/projects/${id}/endpoints/${ro.body.endpoint.id}`)).status).toBe(200);
    expect((await call('GET', `/projects/${id}/endpoints/${ro.body.endpoint.id}`)).status).toBe(404);
    expect((await call('POST', `/projects/${id}/endpoints/ep-no-such-endpoint-1/suspend`)).status).toBe(404);
  });
});

describe('roles and databases', () => {
  it('create (password once), list, get, reveal, reset, delete; databases likewise', async () => {
    const p = await newProject();
    const id = p.project.id;
    const base = `/projects/${id}/branches/${p.branch.id}`;
    const reveal0 = await call('GET', `${base}/roles/neondb_owner/reveal_password`);
    expect(reveal0.body.password).toBe(p.roles[0].password);
    const created = await call('POST', `${base}/roles`, { role: { name: 'alice' } });
    expect(created.status).toBe(201);
    expect(created.body.role.password).toMatch(/^npg_/);
    expect(created.body.operations.length).toBe(1);
    expect((await call('GET', `${base}/roles/alice`)).body.role.password).toBeUndefined();
    expect((await call('GET', `${base}/roles/alice/reveal_password`)).body.password).toBe(created.body.role.password);
    const reset = await call('POST', `${base}/roles/alice/reset_password`);
    expect(reset.body.role.password).not.toBe(created.body.role.password);
    expect((await call('GET', `${base}/roles/alice/reveal_password`)).body.password).toBe(reset.body.role.password);
    expect((await call('GET', `${base}/roles`)).body.roles.map((r: J) => r.name).sort()).toEqual(['alice', 'neondb_owner']);
    for (const role of [{}, { name: '' }, { name: 'pg_x' }, { name: 'postgres' }, { name: 'x'.repeat(64) }, { name: 5 }, { name: 'bob', no_login: 'yes' }]) {
      expect((await call('POST', `${base}/roles`, { role })).status, JSON.stringify(role)).toBe(400);
    }
    expect((await call('POST', `${base}/roles`, { role: { name: 'alice' } })).status).toBe(409);

    // a pglite branch has one database: a second is refused, naming the engine that has more, and nothing is recorded
    const db = await call('POST', `${base}/databases`, { database: { name: 'app', owner_name: 'alice' } });
    expect(db.status).toBe(400);
    expect(db.body.message).toMatch(/pglite engine .* has one database, neondb: create the project with "pg_version": 15 \(the postgres engine\)/);
    expect((await call('GET', `${base}/databases/app`)).status).toBe(404);
    expect((await call('POST', `${base}/databases`, { database: { name: 'x', owner_name: 'nobody' } })).status).toBe(400);
    expect((await call('POST', `${base}/databases`, { database: { name: 'neondb', owner_name: 'alice' } })).status).toBe(409);
    expect((await call('POST', `${base}/databases`, { database: { name: 'template1', owner_name: 'alice' } })).status).toBe(400);
    expect((await call('DELETE', `${base}/roles/alice`)).status).toBe(200);
    expect((await call('GET', `${base}/roles/alice`)).status).toBe(404);
    expect((await call('GET', `${base}/roles/alice/reveal_password`)).status).toBe(404);
    expect((await call('GET', `${base}/databases`)).body.databases.map((d: J) => d.name)).toEqual(['neondb']);
  });
});

describe('isolation between projects', () => {
  it('never answers one project’s ids through another project', async () => {
    const a = await newProject('a');
    const b = await newProject('b');
    const A = a.project.id;
    const paths = [
      ['GET', `/projects/${A}/branches/${b.branch.id}`], ['DELETE', `/projects/${A}/branches/${b.branch.id}`],
      ['GET', `/projects/${A}/endpoints/${b.endpoints[0].id}`], ['POST', `/projects/${A}/endpoints/${b.endpoints[0].id}/suspend`],
      ['GET', `/projects/${A}/branches/${b.branch.id}/roles`], ['GET', `/projects/${A}/branches/${b.branch.id}/roles/neondb_owner/reveal_password`],
      ['GET', `/projects/${A}/branches/${b.branch.id}/databases`], ['GET', `/projects/${A}/operations/${b.operations[0].id}`],
      ['GET', `/projects/${A}/connection_uri?branch_id=${b.branch.id}&database_name=neondb&role_name=neondb_owner`],
      ['GET', `/projects/${A}/branches/${b.branch.id}/checkpoints`],
    ];
    for (const [method, path] of paths) {
      const r = await call(method, path);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(JSON.stringify(r.body)).not.toContain(b.roles[0].password);
    }
    const r = await call('POST', `/projects/${A}/branches`, { branch: { parent_id: b.branch.id } });
    expect(r.status).toBe(404);
    const e = await call('POST', `/projects/${A}/endpoints`, { endpoint: { branch_id: b.branch.id, type: 'read_only' } });
    expect(e.status).toBe(404);
    expect((await call('GET', `/projects/${A}/operations`)).body.operations.every((o: J) => o.project_id === A)).toBe(true);
  });
});

describe('checkpoints and rewind', () => {
  it('names points, rewinds in O(1): the changes are gone and only metadata is written', async () => {
    const p = await newProject();
    const id = p.project.id;
    const base = `/projects/${id}/branches/${p.branch.id}`;
    const storage = new StorageClient(stack.storage.url, stack.storage.token);
    const timelineOf = () => (stack.cp.projects as unknown as { state: { current: J } }).state.current.branches[p.branch.id].timeline_id as string;
    const cp = await call('POST', `${base}/checkpoints`, { name: 'before' });
    expect(cp.status).toBe(201);
    expect(cp.body.checkpoint).toMatchObject({ name: 'before', lsn: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/) });
    expect((await call('POST', `${base}/checkpoints`, { name: 'before' })).status).toBe(409);
    for (const body of [{}, { name: '' }, { name: 'a b' }, { name: 5 }, { name: 'x', lsn: 'bad' }]) expect((await call('POST', `${base}/checkpoints`, body)).status, JSON.stringify(body)).toBe(400);
    expect((await call('GET', `${base}/checkpoints`)).body.checkpoints.map((c: J) => c.name)).toEqual(['before']);

    // Changes after the checkpoint: a file of the data directory, written straight to the branch's timeline.
    const write = async (name: string, bytes: number) => {
      await storage.writeBatch(timelineOf(), { ops: [{ op: 'create', path: name }, { op: 'write', path: name, offset: 0, data: Buffer.alloc(bytes, 7) }] });
    };
    const rewindCost = async (bytes: number, tag: string) => {
      await write(`changed-${tag}`, bytes);
      await storage.checkpoint(timelineOf()); // the change is in the object store too
      expect((await storage.listFiles(timelineOf())).files.map((f) => f.path)).toContain(`changed-${tag}`);
      stack.store.reset();
      const r = await call('POST', `${base}/rewind`, { checkpoint: 'before' });
      expect(r.status).toBe(200);
      expect(r.body.branch.id).toBe(p.branch.id);
      expect((await storage.listFiles(timelineOf())).files.map((f) => f.path)).not.toContain(`changed-${tag}`);
      return { puts: stack.store.puts, bytes: stack.store.bytes, keys: stack.store.keys };
    };
    const small = await rewindCost(8192, 'small');
    const large = await rewindCost(8 * 1024 * 1024, 'large');
    // Metadata only: the same handful of small objects (a manifest, the control-plane state) whatever the data size.
    // Metadata only, whatever the data size: the new timeline's manifest and the control plane's state (8 MiB of
    // changes, none of it copied).
    for (const cost of [small, large]) {
      expect(cost.puts).toBeLessThanOrEqual(6);
      expect(cost.bytes).toBeLessThan(200_000);
    }
    expect(large.keys.every((k) => k.endsWith('manifest.json') || k.startsWith('control-plane/'))).toBe(true);

    expect((await call('POST', `${base}/rewind`, { checkpoint: 'nope' })).status).toBe(404);
    expect((await call('POST', `${base}/rewind`, {})).status).toBe(400);
    expect((await call('DELETE', `${base}/checkpoints/before`)).status).toBe(200);
    expect((await call('GET', `${base}/checkpoints`)).body.checkpoints).toEqual([]);
    expect((await call('DELETE', `${base}/checkpoints/before`)).status).toBe(404);
  });
});

describe('durability', () => {
  it('keeps everything across a control-plane restart', async () => {
    const p = await newProject('durable');
    const id = p.project.id;
    await call('POST', `/projects/${id}/branches`, { branch: { name: 'kept' } });
    await call('POST', `/projects/${id}/branches/${p.branch.id}/roles`, { role: { name: 'carol' } });
    await call('POST', `/projects/${id}/branches/${p.branch.id}/checkpoints`, { name: 'cp1' });
    const pw = (await call('GET', `/projects/${id}/branches/${p.branch.id}/roles/carol/reveal_password`)).body.password;
    await stack.restartControlPlane();
    expect((await call('GET', `/projects/${id}`)).body.project.name).toBe('durable');
    expect((await call('GET', `/projects/${id}/branches`)).body.branches.map((b: J) => b.name).sort()).toEqual(['kept', 'main']);
    expect((await call('GET', `/projects/${id}/branches/${p.branch.id}/roles/carol/reveal_password`)).body.password).toBe(pw);
    expect((await call('GET', `/projects/${id}/branches/${p.branch.id}/checkpoints`)).body.checkpoints[0].name).toBe('cp1');
    expect((await call('GET', `/projects/${id}/operations?limit=100`)).body.operations.length).toBeGreaterThan(0);
  });
});
