// A compute on a ~100 MB database answers its first query after reading a small part of it from the storage
// node: the pages its start needs (prefetched by the hint) and the few its first query touches. Counted, not
// timed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStorageNode } from '../storage-node/server.ts';
import type { StorageNode } from '../storage-node/server.ts';
import { LocalFolderStore } from '../storage-node/object-store/local-folder.ts';
import { StorageClient } from '../storage-node/client.ts';
import { createLogger } from '../lib/logger.ts';
import { createTemplateTimeline } from '../compute/template.ts';
import { startComputeHost } from '../compute/host/server.ts';
import type { RunningHost } from '../compute/host/server.ts';
import { DEFAULT_HOST_OPTIONS } from '../compute/host/host.ts';
import { HostApi, connectPg } from './support/compute-host.ts';

const TOKEN = 'large-test-token';
const MiB = 1024 * 1024;
let root: string;
let node: StorageNode;
let host: RunningHost;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'lakebase-host-large-'));
  node = await startStorageNode({
    dataDir: join(root, 'storage'), objectStore: new LocalFolderStore(join(root, 'objects')),
    host: '127.0.0.1', port: 0, durability: 'local', logger: createLogger('storage-node', 'warn'),
  });
  host = await startComputeHost({
    ...DEFAULT_HOST_OPTIONS, limits: { ...DEFAULT_HOST_OPTIONS.limits }, storageUrl: node.url, token: TOKEN,
    advertiseHost: '127.0.0.1', poolSize: 1, log: createLogger('compute-host', 'warn'),
  });
});

afterAll(async () => {
  await host?.close();
  await node?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('start cost on a large database', () => {
  it('reads under 5% of a ~100 MB database from the storage node before answering its first query', { timeout: 180_000 }, async () => {
    const storage = new StorageClient(node.url);
    const template = await createTemplateTimeline({ storageUrl: node.url });
    const tl = (await storage.createTimeline({ ancestorTimelineId: template.timelineId })).timelineId;
    const api = new HostApi(host.url);

    const writer = await api.start({ computeId: 'ep-large', timelineId: tl });
    const db = await connectPg(writer, TOKEN);
    await db.query('CREATE TABLE big (id int PRIMARY KEY, pad text)');
    // ~1 KB rows, uncompressed (STORAGE EXTERNAL would move them out of line; plain random-ish text stays inline)
    await db.query("ALTER TABLE big ALTER COLUMN pad SET STORAGE MAIN");
    for (let i = 0; i < 4; i++) {
      await db.query(`INSERT INTO big SELECT g, repeat(md5(g::text), 30) FROM generate_series(${i * 25_000 + 1}, ${(i + 1) * 25_000}) g`);
    }
    await db.query('CHECKPOINT');
    const size = (await db.query<{ bytes: string }>("SELECT pg_total_relation_size('big')::text AS bytes")).rows[0].bytes;
    const tableBytes = Number(size);
    expect(tableBytes).toBeGreaterThan(95 * MiB);
    await db.end();
    await api.stop('ep-large');

    const reader = await api.start({ computeId: 'ep-large', timelineId: tl });
    const client = await connectPg(reader, TOKEN);
    const r = await client.query<{ pad: string }>('SELECT pad FROM big WHERE id = $1', [54_321]);
    expect(r.rows[0].pad).toHaveLength(960);
    const info = await api.request<{ pagesFetched: number; pagesFetchedTotal: number; bytesFetchedTotal: number; dataDirBytes: number }>('GET', '/v1/computes/ep-large');
    const fraction = info.bytesFetchedTotal / tableBytes;
    console.log(
      `start fetched ${info.pagesFetched} pages; with the first query ${info.pagesFetchedTotal} pages = ` +
      `${(info.bytesFetchedTotal / MiB).toFixed(2)} MiB: ${(100 * fraction).toFixed(2)} % of the ${(tableBytes / MiB).toFixed(0)} MiB table, ` +
      `${((100 * info.bytesFetchedTotal) / info.dataDirBytes).toFixed(2)} % of the ${(info.dataDirBytes / MiB).toFixed(0)} MiB data directory`,
    );
    expect(info.pagesFetched).toBeGreaterThan(0);
    expect(info.pagesFetchedTotal).toBeGreaterThanOrEqual(info.pagesFetched);
    expect(info.pagesFetchedTotal * 8192).toBeLessThan(0.05 * tableBytes);
    expect(info.bytesFetchedTotal).toBeLessThan(0.05 * info.dataDirBytes);
    await client.end();
  });
});
