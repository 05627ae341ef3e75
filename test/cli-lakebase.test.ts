// The `lakebase` CLI's API commands against a real control plane (in this process, no compute host; `sql` runs
// in control-plane-e2e.test.ts on the whole stack). Configuration from LAKEBASE_* variables and from local.json.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, startControlPlaneStack } from './support/control-plane-stack.ts';
import type { ControlPlaneStack } from './support/control-plane-stack.ts';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- the CLI's JSON output

const CLI = fileURLToPath(new URL('../cli/lakebase.ts', import.meta.url));
let stack: ControlPlaneStack;
let cwd: string;

beforeAll(async () => {
  stack = await startControlPlaneStack();
  cwd = await mkdtemp(join(tmpdir(), 'lakebase-cli-'));
});
afterAll(async () => {
  await stack?.close();
  if (cwd) await rm(cwd, { recursive: true, force: true });
});

function lakebase(args: string[], env: Record<string, string> = { LAKEBASE_API_URL: stack.apiUrl, LAKEBASE_API_KEY: API_KEY }): Promise<{ code: number; stdout: string; stderr: string }> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('LAKEBASE_')) base[k] = v;
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd, env: { ...base, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

async function json(args: string[], env?: Record<string, string>): Promise<J> {
  const r = await lakebase([...args, '--json'], env);
  expect(r.code, `lakebase ${args.join(' ')}\n${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as J;
}

describe('lakebase CLI', () => {
  it('documents its commands and configuration in --help, and says what to do without configuration', async () => {
    const help = await lakebase(['--help']);
    expect(help.code).toBe(0);
    for (const s of ['branches rewind', 'checkpoint', 'connection-string', 'sql', 'LAKEBASE_API_URL', 'LAKEBASE_API_KEY', '--json', 'local.json']) expect(help.stdout).toContain(s);
    const none = await lakebase(['projects', 'list'], {});
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('lakebase start');
    expect(none.stderr).toContain('LAKEBASE_API_URL');
    const unknown = await lakebase(['frobnicate']);
    expect(unknown.code).toBe(2);
    const wrongKey = await lakebase(['projects', 'list'], { LAKEBASE_API_URL: stack.apiUrl, LAKEBASE_API_KEY: 'nope' });
    expect(wrongKey.stderr).toContain('refused the key');
  });

  it('projects, branches (create/list/checkpoint/rewind/reset/restore/delete), endpoints, roles, connection-string', async () => {
    const created = await json(['projects', 'create', '--name', 'cli']);
    const pid = created.project.id as string;
    const env = { LAKEBASE_API_URL: stack.apiUrl, LAKEBASE_API_KEY: API_KEY, LAKEBASE_PROJECT_ID: pid };
    const table = await lakebase(['projects', 'list'], env);
    expect(table.stdout).toMatch(/^id\s+name/);
    expect(table.stdout).toContain(pid);

    const dev = await json(['branches', 'create', '--name', 'dev'], env);
    expect(dev.branch.name).toBe('dev');
    const list = await json(['branches', 'list'], env);
    expect(list.map((b: J) => b.name).sort()).toEqual(['dev', 'main']);
    const cp = await json(['branches', 'checkpoint', 'dev', 'before'], env);
    expect(cp).toMatchObject({ name: 'before', lsn: expect.stringMatching(/\//) });
    expect((await json(['branches', 'checkpoints', 'dev'], env)).map((c: J) => c.name)).toEqual(['before']);
    const rw = await json(['branches', 'rewind', 'dev', 'before'], env);
    expect(rw.checkpoint.name).toBe('before');
    const reset = await json(['branches', 'reset', 'dev'], env);
    expect(reset.last_reset_at).toEqual(expect.any(String));
    const restored = await json(['branches', 'restore', 'dev', '--source', 'main', '--preserve-under-name', 'dev-old'], env);
    expect(restored.name).toBe('dev');
    const atLsn = await json(['branches', 'create', '--name', 'at-lsn', '--parent', 'main', '--at', dev.branch.parent_lsn, '--no-endpoint'], env);
    expect(atLsn.branch.parent_lsn).toBe(dev.branch.parent_lsn);

    const eps = await json(['endpoints', 'list'], env);
    expect(eps.length).toBe(2);
    const sus = await json(['endpoints', 'suspend', eps[0].id], env);
    expect(sus.current_state).toBe('idle');
    const start = await lakebase(['endpoints', 'start', eps[0].id], env);
    expect(start.code).toBe(1);
    expect(start.stderr).toContain('compute host');

    const role = await json(['roles', 'create', 'alice'], env);
    expect(role.password).toMatch(/^npg_/);
    expect((await json(['roles', 'list'], env)).map((r: J) => r.name).sort()).toEqual(['alice', 'neondb_owner']);
    const reset2 = await json(['roles', 'reset-password', 'alice'], env);
    expect(reset2.password).not.toBe(role.password);
    await json(['roles', 'delete', 'alice'], env);

    const cs = await lakebase(['connection-string', 'dev'], env);
    expect(cs.code).toBe(0);
    expect(cs.stdout.trim()).toMatch(/^postgresql:\/\/neondb_owner:npg_/);

    const gone = await lakebase(['branches', 'delete', 'nope'], env);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('no branch "nope"');
    expect(gone.stderr).toContain('dev');
    await json(['branches', 'delete', 'at-lsn'], env);
    const bad = await lakebase(['branches', 'create', '--at', 'yesterday'], env);
    expect(bad.code).toBe(2);
  });

  it('reads the API and the project from local.json, as `lakebase start` writes it', async () => {
    const created = await json(['projects', 'create', '--name', 'local']);
    await writeFile(join(cwd, 'local.json'), JSON.stringify({ apiUrl: stack.apiUrl, apiKey: API_KEY, project: { id: created.project.id } }));
    const branches = await json(['branches', 'list', '--dir', cwd], {});
    expect(branches[0].project_id).toBe(created.project.id);
  });
});
