// A lake table's changes are flushed before its compute suspends: with sync rounds an hour apart, rows written just
// before a suspend are in the lake as soon as the suspend returns, and nothing woke the compute for it.
import { icebergRead } from 'icebird';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installFileFetch } from './support/file-fetch.ts';
import { startLakebaseStack } from './support/lakebase-stack.ts';
import type { LakebaseStack } from './support/lakebase-stack.ts';
import type { J } from './support/neonctl.ts';

let stack: LakebaseStack;
let restoreFetch: () => void;

beforeAll(async () => {
  restoreFetch = installFileFetch();
  stack = await startLakebaseStack({ env: { LAKEBASE_CONTROL_PLANE_LAKE_SYNC_INTERVAL_S: '3600' } });
}, 120_000);

afterAll(async () => {
  restoreFetch?.();
  await stack?.stop();
});

const ids = async (location: string): Promise<number[]> =>
  ((await icebergRead({ tableUrl: location })) as Record<string, unknown>[]).map((r) => Number(r.id)).sort((a, b) => a - b);

describe('lake tables and suspend', () => {
  it('flushes what was captured before the compute suspends', async () => {
    const made = await stack.api<J>('POST', '/projects', { project: { name: 'lake-flush' } });
    const endpointId = made.endpoints[0].id as string;
    const c = new pg.Client({ connectionString: made.connection_uris[0].connection_uri });
    await c.connect();
    await c.query('CREATE TABLE t (id int PRIMARY KEY)');
    await c.query('INSERT INTO t VALUES (1), (2)');
    const lt = (await stack.api<J>('POST', `/projects/${made.project.id}/branches/${made.branch.id}/lake_tables`, { lake_table: { source_table: 't' } })).lake_table;
    await c.query('INSERT INTO t VALUES (3)');
    await c.query('DELETE FROM t WHERE id = 1');
    await c.end();
    await new Promise((r) => setTimeout(r, 1000));
    expect(await ids(lt.location)).toEqual([1, 2]); // no round has run: the first copy only
    await stack.api('POST', `/projects/${made.project.id}/endpoints/${endpointId}/suspend`);
    expect((await stack.api<J>('GET', `/projects/${made.project.id}/endpoints/${endpointId}`)).endpoint.current_state).toBe('idle');
    expect(await ids(lt.location)).toEqual([2, 3]);
    const history = (await icebergRead({ tableUrl: lt.history_location })) as Record<string, unknown>[];
    expect(history.map((h) => `${h._op}${h.id}`).sort()).toEqual(['D1', 'I1', 'I2', 'I3']);
  });

  it('pauses a lake table whose branch is rewound, saying why; a branch made from it syncs its own', async () => {
    const made = await stack.api<J>('POST', '/projects', { project: { name: 'lake-rewind' } });
    const base = `/projects/${made.project.id}/branches/${made.branch.id}`;
    const c = new pg.Client({ connectionString: made.connection_uris[0].connection_uri });
    await c.connect();
    await c.query('CREATE TABLE t (id int PRIMARY KEY)');
    await c.query('INSERT INTO t VALUES (1)');
    await c.end();
    const lt = (await stack.api<J>('POST', `${base}/lake_tables`, { lake_table: { source_table: 't' } })).lake_table;
    await stack.api('POST', `${base}/checkpoints`, { name: 'before' });
    const child = await stack.api<J>('POST', `/projects/${made.project.id}/branches`, { branch: { name: 'child' }, endpoints: [{ type: 'read_write' }] });
    const childLt = (await stack.api<J>('POST', `/projects/${made.project.id}/branches/${child.branch.id}/lake_tables`, { lake_table: { source_table: 't' } })).lake_table;
    expect(childLt.location).not.toBe(lt.location);
    expect(await ids(childLt.location)).toEqual([1]);
    await stack.api('POST', `${base}/rewind`, { checkpoint: 'before' });
    const after = (await stack.api<J>('GET', `${base}/lake_tables/${lt.id}`)).lake_table;
    expect(after.status).toBe('paused');
    expect(after.status_message).toMatch(/rewound to a checkpoint.*delete this lake table and create it again/);
    expect((await stack.api<J>('GET', `/projects/${made.project.id}/branches/${child.branch.id}/lake_tables/${childLt.id}`)).lake_table.status).toBe('syncing');
  });
});
