// Compute hosts as real processes (`node compute/main.ts`): data written over the wire survives a stop and a
// start in a new host process, and every acknowledged commit survives kill -9 of the host in the middle of a
// write load (Postgres recovery on the next start). The storage node runs in the test process.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { startStorageNode } from '../storage-node/server.ts';
import type { StorageNode } from '../storage-node/server.ts';
import { LocalFolderStore } from '../storage-node/object-store/local-folder.ts';
import { StorageClient } from '../storage-node/client.ts';
import { createLogger } from '../lib/logger.ts';
import { createTemplateTimeline } from '../compute/template.ts';
import type { TemplateResult } from '../compute/template.ts';
import { connectPg, startHostProcess } from './support/compute-host.ts';
import type { HostProcess } from './support/compute-host.ts';

const TOKEN = 'process-test-token';
let root: string;
let node: StorageNode;
let storage: StorageClient;
let template: TemplateResult;
const hosts: HostProcess[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'lakebase-host-proc-'));
  node = await startStorageNode({
    dataDir: join(root, 'storage'), objectStore: new LocalFolderStore(join(root, 'objects')),
    host: '127.0.0.1', port: 0, durability: 'local', logger: createLogger('storage-node', 'warn'),
  });
  storage = new StorageClient(node.url);
  template = await createTemplateTimeline({ storageUrl: node.url });
});

afterAll(async () => {
  for (const h of hosts) await h.kill9();
  await node?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function newHost(): Promise<HostProcess> {
  const h = await startHostProcess({ storageUrl: node.url, token: TOKEN, args: ['--pool-size', '1'] });
  hosts.push(h);
  return h;
}

describe('compute host processes', () => {
  it('a project made from the template keeps its rows across a stop and a start in a new host process', async () => {
    const tl = (await storage.createTimeline({ ancestorTimelineId: template.timelineId })).timelineId;
    const h1 = await newHost();
    const c1 = await h1.api.start({ computeId: 'ep-proc-1', timelineId: tl });
    const db1 = await connectPg(c1, TOKEN);
    await db1.query('CREATE TABLE notes (id int PRIMARY KEY, body text)');
    await db1.query("INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 100) g");
    await db1.query('INSERT INTO notes VALUES ($1, $2)', [101, 'over the wire']);
    await db1.end();
    expect(await h1.api.stop('ep-proc-1')).toMatchObject({ stopped: true, clean: true });
    await h1.stop();

    const h2 = await newHost();
    const c2 = await h2.api.start({ computeId: 'ep-proc-1', timelineId: tl });
    const db2 = await connectPg(c2, TOKEN);
    const r = await db2.query<{ n: number; last: string }>("SELECT count(*)::int AS n, max(body) FILTER (WHERE id = 101) AS last FROM notes");
    expect(r.rows[0]).toEqual({ n: 101, last: 'over the wire' });
    await db2.end();
    await h2.stop();
  });

  it('keeps every acknowledged commit through kill -9 of the host in the middle of a write load', async () => {
    const tl = (await storage.createTimeline({ ancestorTimelineId: template.timelineId })).timelineId;
    const h1 = await newHost();
    const c1 = await h1.api.start({ computeId: 'ep-crash', timelineId: tl });
    const setup = await connectPg(c1, TOKEN);
    await setup.query('CREATE TABLE acks (id int PRIMARY KEY, writer int, pad text)');
    await setup.end();

    const writers = 4;
    const acked: number[][] = Array.from({ length: writers }, () => []);
    let stop = false;
    const clients: pg.Client[] = [];
    const loops = Array.from({ length: writers }, async (_, w) => {
      const client = await connectPg(c1, TOKEN);
      client.on('error', () => {});
      clients.push(client);
      for (let i = 0; !stop; i++) {
        const id = w * 1_000_000 + i;
        try {
          // some in explicit transactions, some autocommit: both are acknowledged only once durable
          if (i % 3 === 0) {
            await client.query('BEGIN');
            await client.query("INSERT INTO acks VALUES ($1, $2, repeat('x', 200))", [id, w]);
            await client.query('COMMIT');
          } else {
            await client.query("INSERT INTO acks VALUES ($1, $2, repeat('y', 200))", [id, w]);
          }
          acked[w].push(id);
        } catch {
          return; // the host died under us: this write was never acknowledged
        }
      }
    });
    // let the load run, then kill the host at an arbitrary point
    const t0 = Date.now();
    while (Date.now() - t0 < 1500 || acked.reduce((n, a) => n + a.length, 0) < 100) await new Promise((r) => setTimeout(r, 50));
    await h1.kill9();
    stop = true;
    await Promise.all(loops);
    for (const c of clients) await c.end().catch(() => {});
    const all = acked.flat();
    // the wait above ends at 100 acknowledged writes at the earliest: the kill came in the middle of real load
    expect(all.length).toBeGreaterThanOrEqual(100);

    // a batch the dead host had in flight may still land: give the storage node a moment before the new writer
    await new Promise((r) => setTimeout(r, 300));
    const h2 = await newHost();
    const c2 = await h2.api.start({ computeId: 'ep-crash', timelineId: tl });
    const db = await connectPg(c2, TOKEN);
    const rows = (await db.query<{ id: number }>('SELECT id FROM acks')).rows.map((r) => r.id);
    const present = new Set(rows);
    const missing = all.filter((id) => !present.has(id));
    expect(missing).toEqual([]);
    expect(rows.length).toBeGreaterThanOrEqual(all.length);
    // and the recovered compute takes writes
    await db.query('INSERT INTO acks VALUES (-1, -1, $1)', ['after recovery']);
    await db.end();
    await h2.stop();
  });
});
