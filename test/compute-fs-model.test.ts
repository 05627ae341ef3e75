// StorageFS without PGlite: random file operations (create, write at any offset, truncate, unlink, rename)
// through the filesystem in a worker thread, over the real bridge and a real storage node. Every read in the
// worker is checked against a reference model; every acknowledged flush is checked on the storage node byte
// for byte; a fresh filesystem with a small cache reads the final state back.
import { startTestStorageNode } from './support/storage-node-in-process.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageNode } from '../storage-node/server.ts';
import { StorageClient } from '../storage-node/client.ts';
import { BridgeServer, createBridgeMemory } from '../compute/storage-fs/bridge.ts';
import { FsModel } from './support/fs-model.ts';
import { expectTimelineEquals } from './support/storage-verify.ts';
import type { FsWorkerInit, FsWorkerMessage } from './support/compute-fs-worker.ts';

let root: string;
let node: StorageNode;
let client: StorageClient;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'lakebase-compute-fs-'));
  node = await startTestStorageNode(root);
  client = new StorageClient(node.url, node.token);
});

afterAll(async () => {
  await node?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function runWorker(tl: string, init: Omit<FsWorkerInit, 'memory'>): Promise<{ flushes: Extract<FsWorkerMessage, { t: 'flushed' }>[]; stats: unknown }> {
  const memory = createBridgeMemory(256 * 1024);
  let batches = 0;
  const server = new BridgeServer(memory, {
    readPages: (refs, lsn) => client.readPages(tl, refs, lsn),
    writeBatch: async (batch) => {
      batches++;
      return (await client.writeBatch(tl, batch)).lsn;
    },
  });
  const worker = new Worker(new URL('./support/compute-fs-worker.ts', import.meta.url), { workerData: { ...init, memory } });
  const flushes: Extract<FsWorkerMessage, { t: 'flushed' }>[] = [];
  try {
    const stats = await new Promise<unknown>((resolve, reject) => {
      worker.on('message', (msg: unknown) => {
        if (BridgeServer.isRequest(msg)) return void server.handle(msg);
        const m = msg as FsWorkerMessage;
        if (m.t === 'flushed') flushes.push(m);
        else if (m.t === 'done') resolve({ ...m.stats, batches });
        else if (m.t === 'failed') reject(new Error(m.message));
      });
      worker.once('error', reject);
    });
    return { flushes, stats };
  } finally {
    await worker.terminate();
  }
}

function modelOf(entries: [string, Uint8Array | null][]): FsModel {
  const m = new FsModel();
  for (const [k, v] of entries) m.entries.set(k, v ? { type: 'file', data: Buffer.from(v) } : { type: 'dir' });
  return m;
}

describe('StorageFS against a model', () => {
  for (const seed of [1, 2, 3]) {
    it(`random operations, seed ${seed}: reads, flushed states and a cold re-read all match`, async () => {
      const { timelineId: tl } = await client.createTimeline({});
      const small = 64 * 8192; // the smallest cache and unshipped bound: evictions and mid-run flushes happen
      const { flushes, stats } = await runWorker(tl, {
        mode: 'random', seed, steps: 400, lsn: 0, files: [], cacheBytes: small, maxUnshippedBytes: small,
      });
      expect(flushes.length).toBeGreaterThan(5);
      for (const f of flushes) await expectTimelineEquals(client, tl, f.lsn, modelOf(f.entries), `(seed ${seed})`);
      expect((stats as { evictions: number }).evictions).toBeGreaterThan(0);

      const last = flushes[flushes.length - 1];
      const listing = await client.listFiles(tl, last.lsn);
      await runWorker(tl, {
        mode: 'verify', seed, steps: 0, lsn: last.lsn, files: listing.files, expected: last.entries, cacheBytes: small, maxUnshippedBytes: small,
      });
    });
  }
});
