// LSNs in the API are Postgres' own: an LSN taken from pg_current_wal_lsn() right after a commit names a branch point
// that holds that commit and nothing later, through the API and through neonctl, on both engines; one past the
// branch's head is refused with a 4xx and creates nothing. Against a whole lakebase (`lakebase start`).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatLsn, parseLsn } from '../control-plane/lsn.ts';
import { startLakebaseStack } from './support/lakebase-stack.ts';
import type { LakebaseStack } from './support/lakebase-stack.ts';
import { neonctlFor } from './support/neonctl.ts';
import type { J, Neonctl } from './support/neonctl.ts';

let stack: LakebaseStack;
let home: string;
let neonctl: Neonctl;

beforeAll(async () => {
  stack = await startLakebaseStack();
  home = await mkdtemp(join(tmpdir(), 'lakebase-lsn-'));
  neonctl = neonctlFor(home, stack.apiUrl, stack.apiKey);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (home) await rm(home, { recursive: true, force: true });
});

async function ids(uri: string): Promise<number[]> {
  const c = new pg.Client({ connectionString: uri });
  await c.connect();
  try {
    return (await c.query<{ id: number }>('SELECT id FROM marks ORDER BY id')).rows.map((r) => r.id);
  } finally {
    await c.end();
  }
}

describe.each([['pglite', 18], ['postgres', 15]] as const)('Postgres LSNs on the %s engine', (_engine, pgVersion) => {
  it('a branch at the LSN pg_current_wal_lsn() gave right after a commit holds that commit and nothing later', async () => {
    const made = await stack.api<J>('POST', '/projects', { project: { name: `lsn-${pgVersion}`, pg_version: pgVersion } });
    const projectId = made.project.id as string;
    const main = made.branch.id as string;
    const c = new pg.Client({ connectionString: made.connection_uris[0].connection_uri });
    await c.connect();
    const lsnNow = async () => (await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l;
    await c.query('CREATE TABLE marks (id int PRIMARY KEY)');
    await c.query('INSERT INTO marks VALUES (1)');
    const afterOne = await lsnNow();
    await c.query('INSERT INTO marks VALUES (2)');
    const afterTwo = await lsnNow();
    await c.query('INSERT INTO marks VALUES (3)');
    const head = await lsnNow();
    await c.end();

    // through the API
    const one = await stack.api<J>('POST', `/projects/${projectId}/branches`, { branch: { name: 'at-one', parent_lsn: afterOne }, endpoints: [{ type: 'read_write' }] });
    expect(one.branch.parent_lsn).toBe(afterOne);
    expect(await ids(one.connection_uris[0].connection_uri)).toEqual([1]);

    // through neonctl
    const two = await neonctl.json(['branches', 'create', '--project-id', projectId, '--name', 'at-two', '--parent', afterTwo]);
    expect(two.branch.parent_lsn).toBe(afterTwo);
    expect(await ids(two.connection_uris[0].connection_uri)).toEqual([1, 2]);

    // a checkpoint at an LSN, and a branch from it
    const cp = await stack.api<J>('POST', `/projects/${projectId}/branches/${main}/checkpoints`, { name: 'one', lsn: afterOne });
    expect(cp.checkpoint.lsn).toBe(afterOne);
    const fromCp = await stack.api<J>('POST', `/projects/${projectId}/branches`, { branch: { name: 'from-one', parent_checkpoint: 'one' }, endpoints: [{ type: 'read_write' }] });
    expect(await ids(fromCp.connection_uris[0].connection_uri)).toEqual([1]);

    // past the head: a 4xx that says so, and nothing made (Postgres itself is at `head`; 1 MiB on is unwritten)
    const ahead = formatLsn(parseLsn(head)! + 1024 * 1024);
    const before = (await stack.api<J>('GET', `/projects/${projectId}/branches`)).branches.length;
    const res = await fetch(`${stack.apiUrl}/projects/${projectId}/branches`, {
      method: 'POST', headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ branch: { name: 'ahead', parent_lsn: ahead } }),
    });
    expect(res.status).toBe(400);
    expect((await res.json()) as J).toMatchObject({ message: expect.stringMatching(new RegExp(`LSN ${ahead.replace('/', '\\/')} is ahead of the branch's last LSN`)) });
    const refused = await neonctl.run(['branches', 'create', '--project-id', projectId, '--name', 'ahead', '--parent', ahead, '--output', 'json']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('is ahead of the branch');
    expect((await stack.api<J>('GET', `/projects/${projectId}/branches`)).branches).toHaveLength(before);

    // the head branch's parent_lsn is Postgres' too: at or past the last commit's LSN, never a batch number
    const atHead = await stack.api<J>('POST', `/projects/${projectId}/branches`, { branch: { name: 'at-head' } });
    expect(parseLsn(atHead.branch.parent_lsn)!).toBeGreaterThanOrEqual(parseLsn(head)! - 64);
    await stack.api('DELETE', `/projects/${projectId}`);
  });
});
