// The official Neon CLI (neonctl 5.0.1) against our API: the commands the issue lists (test/support/neonctl.ts runs
// it with a temporary HOME and config, analytics off, loopback only).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLsn } from '../control-plane/lsn.ts';
import { API_KEY, startControlPlaneStack } from './support/control-plane-stack.ts';
import type { ControlPlaneStack } from './support/control-plane-stack.ts';
import { neonctlFor } from './support/neonctl.ts';
import type { J, Neonctl } from './support/neonctl.ts';

let stack: ControlPlaneStack;
let home: string;
let cli: Neonctl;

beforeAll(async () => {
  stack = await startControlPlaneStack();
  home = await mkdtemp(join(tmpdir(), 'lakebase-neonctl-'));
  cli = neonctlFor(home, stack.apiUrl, API_KEY);
});
afterAll(async () => {
  await stack?.close();
  if (home) await rm(home, { recursive: true, force: true });
});

const neonctl = (args: string[]) => cli.run(args);
const json = (args: string[]) => cli.json(args);

describe('neonctl against the lakebase API', () => {
  let projectId = '';
  let mainId = '';

  it('projects create and list', async () => {
    const created = await json(['projects', 'create', '--name', 'from-neonctl']);
    expect(created.project.name).toBe('from-neonctl');
    expect(created.connection_uris[0].connection_uri).toMatch(/^postgresql:\/\/neondb_owner:npg_/);
    projectId = created.project.id;
    const list = await json(['projects', 'list']);
    expect(list.projects.map((p: J) => p.id)).toContain(projectId);
    const branches = await json(['branches', 'list', '--project-id', projectId]);
    mainId = branches.find((b: J) => b.default).id;
  });

  it('branches create (at head, --parent timestamp, --parent LSN), list, get', async () => {
    const dev = await json(['branches', 'create', '--project-id', projectId, '--name', 'dev']);
    expect(dev.branch).toMatchObject({ name: 'dev', parent_id: mainId });
    expect(dev.endpoints[0].type).toBe('read_write');
    // neonctl takes whole seconds: wait so that the second is after the project's creation, and not in the future.
    await new Promise((r) => setTimeout(r, 1500));
    const at = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const byTime = await json(['branches', 'create', '--project-id', projectId, '--name', 'by-time', '--parent', at, '--no-compute']);
    // With a single section, neonctl's JSON is that section itself.
    expect(byTime.branch ?? byTime).toMatchObject({ name: 'by-time', parent_id: mainId, parent_timestamp: expect.any(String) });
    const lsn = dev.branch.parent_lsn as string;
    expect(parseLsn(lsn)).not.toBeNull();
    const byLsn = await json(['branches', 'create', '--project-id', projectId, '--name', 'by-lsn', '--parent', lsn, '--no-compute']);
    expect(byLsn.branch ?? byLsn).toMatchObject({ name: 'by-lsn', parent_lsn: lsn });
    const list = await json(['branches', 'list', '--project-id', projectId]);
    expect(list.map((b: J) => b.name).sort()).toEqual(['by-lsn', 'by-time', 'dev', 'main']);
    const got = await json(['branches', 'get', 'dev', '--project-id', projectId]);
    expect(got.id).toBe(dev.branch.id);
    const bad = await neonctl(['branches', 'create', '--project-id', projectId, '--name', 'dev']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('already exists');
  });

  it('branches reset --parent and restore (^parent, source@LSN, ^self@LSN with --preserve-under-name)', async () => {
    const reset = await json(['branches', 'reset', 'dev', '--parent', '--project-id', projectId]);
    expect(reset).toMatchObject({ name: 'dev', last_reset_at: expect.any(String) });
    const restored = await json(['branches', 'restore', 'dev', '^parent', '--project-id', projectId]);
    expect(restored.name ?? restored[0]?.name ?? JSON.stringify(restored)).toContain('dev');
    const dev = await json(['branches', 'get', 'dev', '--project-id', projectId]);
    const r2 = await json(['branches', 'restore', 'dev', `main@${dev.parent_lsn}`, '--project-id', projectId]);
    expect(JSON.stringify(r2)).toContain(dev.id);
    const r3 = await neonctl(['branches', 'restore', 'dev', `^self@${dev.parent_lsn}`, '--preserve-under-name', 'dev-backup', '--project-id', projectId, '--output', 'json']);
    expect(r3.code, r3.stderr).toBe(0);
    expect(r3.stdout).toContain('dev-backup');
  });

  it('connection-string, roles list, databases list', async () => {
    const cs = await neonctl(['connection-string', '--project-id', projectId]);
    expect(cs.code, cs.stderr).toBe(0);
    const url = new URL(cs.stdout.trim());
    expect(url.username).toBe('neondb_owner');
    expect(url.password).toMatch(/^npg_/);
    expect(url.hostname).toMatch(/^ep-[a-z]+-[a-z]+-\d+\.lakebase\.localhost$/);
    expect(url.pathname).toBe('/neondb');
    const pooled = await neonctl(['connection-string', 'dev', '--pooled', '--project-id', projectId]);
    expect(pooled.stdout).toContain('-pooler.');
    const roles = await json(['roles', 'list', '--project-id', projectId]);
    expect(roles.map((r: J) => r.name)).toEqual(['neondb_owner']);
    const dbs = await json(['databases', 'list', '--project-id', projectId, '--branch', 'dev']);
    expect(dbs.map((d: J) => d.name)).toEqual(['neondb']);
  });

  it('branches delete (refused with children, as Neon) and projects delete', async () => {
    const refused = await neonctl(['branches', 'delete', 'dev-backup', '--project-id', projectId]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('child branches');
    const del = await json(['branches', 'delete', 'by-lsn', '--project-id', projectId]);
    expect(del.name).toBe('by-lsn');
    const list = await json(['branches', 'list', '--project-id', projectId]);
    expect(list.map((b: J) => b.name)).not.toContain('by-lsn');
    const gone = await json(['projects', 'delete', projectId]);
    expect(gone.id).toBe(projectId);
    const after = await json(['projects', 'list']);
    expect(after.projects.map((p: J) => p.id)).not.toContain(projectId);
  });

  it('reports a wrong API key as an authentication failure', async () => {
    const r = await neonctlFor(home, stack.apiUrl, 'wrong').run(['projects', 'list', '--output', 'json']);
    expect(r.code).not.toBe(0);
  });
});
