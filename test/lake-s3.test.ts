// Lake tables on S3 (Miniflare's R2 over its S3 endpoint): a whole lakebase whose bucket is S3 writes its Iceberg
// tables there, at s3:// locations, and an independent reader (icebird) reads exactly Postgres' rows from them.
import { randomBytes } from 'node:crypto';
import { icebergRead } from 'icebird';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseLsn } from '../control-plane/lsn.ts';
import { installFileFetch } from './support/file-fetch.ts';
import { startLakebaseStack } from './support/lakebase-stack.ts';
import type { LakebaseStack } from './support/lakebase-stack.ts';
import type { J } from './support/neonctl.ts';
import { s3Env } from './support/storage-process.ts';

let stack: LakebaseStack;
let restoreFetch: () => void;
const prefix = `lake-${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  const s3 = inject('s3');
  restoreFetch = installFileFetch(s3);
  stack = await startLakebaseStack({ env: { ...s3Env(s3, prefix), LAKEBASE_CONTROL_PLANE_LAKE_SYNC_INTERVAL_S: '0.5' } });
}, 120_000);

afterAll(async () => {
  restoreFetch?.();
  await stack?.stop();
});

describe('lake tables on S3', () => {
  it('writes Iceberg tables at s3:// locations that an independent reader reads exactly', async () => {
    const s3 = inject('s3');
    const made = await stack.api<J>('POST', '/projects', { project: { name: 'lake-s3' } });
    const c = new pg.Client({ connectionString: made.connection_uris[0].connection_uri });
    await c.connect();
    try {
      await c.query('CREATE TABLE items (id int PRIMARY KEY, name text)');
      await c.query("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 20) g");
      const base = `/projects/${made.project.id}/branches/${made.branch.id}/lake_tables`;
      const lt = (await stack.api<J>('POST', base, { lake_table: { source_table: 'items' } })).lake_table;
      expect(lt.location).toBe(`s3://${s3.bucket}/${prefix}/lake/${made.project.id}/${made.branch.id}/public/items`);
      await c.query("UPDATE items SET name = 'renamed' WHERE id = 3");
      await c.query('DELETE FROM items WHERE id > 15');
      const target = parseLsn((await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l)!;
      for (let i = 0; ; i++) {
        const t = (await stack.api<J>('GET', `${base}/${lt.id}`)).lake_table;
        if (t.last_synced_lsn && parseLsn(t.last_synced_lsn)! >= target) break;
        if (i > 200) throw new Error(`not synced: ${JSON.stringify(t)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const pgRows = (await c.query<{ id: number; name: string }>('SELECT id, name FROM items ORDER BY id')).rows;
      const lake = ((await icebergRead({ tableUrl: lt.location })) as { id: number; name: string }[]).map((r) => ({ id: r.id, name: r.name }));
      expect(lake.sort((a, b) => a.id - b.id)).toEqual(pgRows);
    } finally {
      await c.end();
    }
  });
});
