// The storage engine's fail-stop rules, through an object store that fails or hangs chosen operations
// (test/support/unreliable-store.ts). What the engine promises (docs/storage-format.md, "Durability"; the engine's
// comments): a batch is acknowledged only once it is durable, never out of order; a failed upload is never
// acknowledged and never half-applied; where going on could diverge from the bucket (a lost batch in object-store
// mode, a manifest another node changed) the timeline stops accepting writes instead; a restart recovers every
// acknowledged batch; work that failed for a passing reason succeeds when retried.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_ENGINE_CONFIG, StorageEngine } from '../storage-node/engine/storage-engine.ts';
import type { Durability } from '../storage-node/engine/storage-engine.ts';
import { keys, parseManifest } from '../storage-node/engine/manifest.ts';
import { LocalFolderStore } from '../storage-node/object-store/local-folder.ts';
import { PreconditionFailedError } from '../storage-node/object-store/object-store.ts';
import type { Hang } from './support/unreliable-store.ts';
import { UnreliableStore, layerPut, manifestPut, walPut } from './support/unreliable-store.ts';

const dirs: string[] = [];
const engines: StorageEngine[] = [];
const hangs: Hang[] = [];

afterEach(async () => {
  for (const h of hangs.splice(0)) h.release(); // a hung upload would keep close() waiting
  for (const e of engines.splice(0)) await e.close({ flush: false }).catch(() => {});
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

interface Node {
  root: string;
  store: UnreliableStore;
  engine: StorageEngine;
}

async function startNode(durability: Durability, root?: string, dataDir = 'data'): Promise<Node> {
  if (!root) {
    root = await mkdtemp(join(tmpdir(), 'lakebase-fail-stop-'));
    dirs.push(root);
  }
  const store = new UnreliableStore(new LocalFolderStore(join(root, 'objects')));
  const engine = new StorageEngine({ ...DEFAULT_ENGINE_CONFIG, backgroundIntervalMs: 0, durability, dataDir: join(root, dataDir), objectStore: store });
  await engine.start();
  engines.push(engine);
  return { root, store, engine };
}

/** Stops a node as a crash would leave it: nothing in memory is flushed. */
async function crash(n: Node): Promise<void> {
  await n.engine.close({ flush: false });
  engines.splice(engines.indexOf(n.engine), 1);
}

function hang(store: UnreliableStore, match: Parameters<UnreliableStore['hang']>[0], times?: number): Hang {
  const h = store.hang(match, times);
  hangs.push(h);
  return h;
}

const file = (name: string, text: string) => ({
  ops: [
    { op: 'create' as const, path: name },
    { op: 'write' as const, path: name, offset: 0, data: Buffer.from(text) },
  ],
});

async function readText(engine: StorageEngine, tl: string, name: string, len: number, lsn?: number): Promise<string> {
  return (await engine.readPage(tl, name, 0, lsn)).subarray(0, len).toString();
}

/** Settles `p` into a status without waiting for it: 'pending' if it has not settled within a few turns. */
async function peek(p: Promise<unknown>): Promise<'pending' | 'fulfilled' | 'rejected'> {
  let state: 'pending' | 'fulfilled' | 'rejected' = 'pending';
  p.then(() => (state = 'fulfilled'), () => (state = 'rejected'));
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  return state;
}

async function uploadedManifest(n: Node, tl: string) {
  const res = await n.store.inner.get(keys.manifest(tl));
  return res ? parseManifest(keys.manifest(tl), res.body) : null;
}

describe('object-store durability: a batch is acknowledged only once it is in the bucket', () => {
  it('a failed batch upload is not acknowledged, fences the timeline, and a restart recovers every acknowledged batch', async () => {
    const n = await startNode('object-store');
    const { timelineId: tl } = await n.engine.createTimeline({});
    expect((await n.engine.writeBatch(tl, file('a', 'one'))).lsn).toBe(1);

    n.store.failNth(1, new Error('injected: bucket unavailable'), walPut);
    await expect(n.engine.writeBatch(tl, file('b', 'two'))).rejects.toThrow(/bucket unavailable/);
    expect((await n.engine.getTimeline(tl)).lastLsn).toBe(1); // reads never see the lost batch
    await expect(n.engine.listFiles(tl, 2)).rejects.toThrow(/ahead of/);

    // The store is healthy again, but this node's memory holds a batch the bucket does not: it stays fenced.
    n.store.heal();
    await expect(n.engine.writeBatch(tl, file('c', 'three'))).rejects.toMatchObject({ status: 409, code: 'write_failed' });
    expect(n.store.count(walPut)).toBe(2); // the refused write never reached the bucket

    // A restart (on an empty disk) recovers exactly the acknowledged batch, and writes go on from it.
    await crash(n);
    const n2 = await startNode('object-store', n.root, 'data-2');
    const info = await n2.engine.getTimeline(tl);
    expect(info.lastLsn).toBe(1);
    expect((await n2.engine.listFiles(tl)).files.map((f) => f.path)).toEqual(['a']);
    expect((await n2.engine.writeBatch(tl, file('b', 'two'))).lsn).toBe(2);
    expect(await readText(n2.engine, tl, 'b', 3)).toBe('two');
  });

  it('a hung batch upload holds its acknowledgement, and every later one, until it completes', async () => {
    const n = await startNode('object-store');
    const { timelineId: tl } = await n.engine.createTimeline({});
    await n.engine.writeBatch(tl, file('a', 'one'));

    const h = hang(n.store, walPut, 1);
    const second = n.engine.writeBatch(tl, file('b', 'two'));
    await h.reached;
    const third = n.engine.writeBatch(tl, file('c', 'three'));
    // LSN 3's object lands in the bucket, yet it builds on LSN 2, which is not there: neither is acknowledged.
    await expect.poll(async () => (await n.store.inner.head(keys.walObject(tl, 3))) !== null).toBe(true);
    expect(await peek(second)).toBe('pending');
    expect(await peek(third)).toBe('pending');
    expect((await n.engine.getTimeline(tl)).lastLsn).toBe(1);

    h.release();
    expect((await second).lsn).toBe(2);
    expect((await third).lsn).toBe(3);
    expect((await n.engine.getTimeline(tl)).lastLsn).toBe(3);
  });

  it('a later batch whose own upload worked is refused when an earlier one failed', async () => {
    const n = await startNode('object-store');
    const { timelineId: tl } = await n.engine.createTimeline({});
    const h = hang(n.store, walPut, 1);
    const first = n.engine.writeBatch(tl, file('a', 'one'));
    await h.reached;
    const second = n.engine.writeBatch(tl, file('b', 'two'));
    await expect.poll(async () => (await n.store.inner.head(keys.walObject(tl, 2))) !== null).toBe(true);
    h.fail(new Error('injected: upload timed out'));
    await expect(first).rejects.toThrow(/upload timed out/);
    await expect(second).rejects.toMatchObject({ status: 409, code: 'write_failed' });
    expect((await n.engine.getTimeline(tl)).lastLsn).toBe(0);
  });

  it('a timeline whose manifest upload fails is not created, and creating it again works', async () => {
    const n = await startNode('object-store');
    const id = 'a'.repeat(32);
    n.store.failNth(1, new Error('injected: bucket unavailable'), manifestPut);
    await expect(n.engine.createTimeline({ timelineId: id })).rejects.toThrow(/bucket unavailable/);
    expect(n.engine.listTimelines()).toEqual([]);
    await expect(n.engine.getTimeline(id)).rejects.toMatchObject({ status: 404 });
    expect((await n.engine.createTimeline({ timelineId: id })).timelineId).toBe(id);
    expect((await uploadedManifest(n, id))?.timelineId).toBe(id);
  });
});

describe('uploads of layers and manifests (local durability)', () => {
  it('a failed manifest upload changes nothing: the bucket keeps the old manifest, the log keeps the batches, a retry succeeds', async () => {
    const n = await startNode('local');
    const { timelineId: tl } = await n.engine.createTimeline({});
    await n.engine.checkpoint(tl); // the manifest is in the bucket
    await n.engine.writeBatch(tl, file('a', 'one'));
    await n.engine.writeBatch(tl, file('b', 'two'));

    n.store.failNth(1, new Error('injected: bucket unavailable'), manifestPut);
    await expect(n.engine.checkpoint(tl)).rejects.toThrow(/bucket unavailable/);
    expect((await uploadedManifest(n, tl))?.uploadedLsn).toBe(0);
    // Not a conflict: the node keeps accepting (and acknowledging) writes from its log.
    expect((await n.engine.writeBatch(tl, file('c', 'three'))).lsn).toBe(3);

    // A crash now loses nothing: the write log still holds every batch the manifest does not cover.
    await crash(n);
    const n2 = await startNode('local', n.root);
    expect((await n2.engine.listFiles(tl)).files.map((f) => f.path)).toEqual(['a', 'b', 'c']);
    expect(await readText(n2.engine, tl, 'b', 3)).toBe('two');
    const done = await n2.engine.checkpoint(tl);
    expect(done.uploadedLsn).toBe(3);
    expect((await uploadedManifest(n2, tl))?.uploadedLsn).toBe(3);
  });

  it('a failed layer upload writes no manifest, and a retry uploads both', async () => {
    const n = await startNode('local');
    const { timelineId: tl } = await n.engine.createTimeline({});
    await n.engine.checkpoint(tl);
    await n.engine.writeBatch(tl, file('a', 'one'));
    const manifestsBefore = n.store.count(manifestPut);

    n.store.failNth(1, new Error('injected: upload failed'), layerPut);
    await expect(n.engine.checkpoint(tl)).rejects.toThrow(/upload failed/);
    expect(n.store.count(manifestPut)).toBe(manifestsBefore); // a manifest never names a layer that is not there
    expect((await uploadedManifest(n, tl))?.layers).toEqual([]);

    const done = await n.engine.checkpoint(tl);
    expect(done).toEqual({ uploadedLsn: 1, layers: 1 });
    const m = await uploadedManifest(n, tl);
    expect(m?.layers).toHaveLength(1);
    expect(await n.store.inner.head(keys.layer(tl, m!.layers[0].name))).not.toBeNull();
  });

  it('a hung upload does not hold acknowledgements: writes are durable in the local log meanwhile', async () => {
    const n = await startNode('local');
    const { timelineId: tl } = await n.engine.createTimeline({});
    await n.engine.checkpoint(tl);
    await n.engine.writeBatch(tl, file('a', 'one'));

    const h = hang(n.store, layerPut, 1);
    const checkpoint = n.engine.checkpoint(tl);
    await h.reached;
    expect((await n.engine.writeBatch(tl, file('b', 'two'))).lsn).toBe(2);
    expect(await readText(n.engine, tl, 'b', 3)).toBe('two');
    expect(await peek(checkpoint)).toBe('pending');
    expect((await uploadedManifest(n, tl))?.uploadedLsn).toBe(0);

    h.release();
    expect((await checkpoint).uploadedLsn).toBe(1);
    expect((await uploadedManifest(n, tl))?.uploadedLsn).toBe(1);
  });

  it('a manifest changed by another node fences the timeline: no more writes, no more uploads', async () => {
    const n = await startNode('local');
    const { timelineId: tl } = await n.engine.createTimeline({});
    await n.engine.checkpoint(tl);
    await n.engine.writeBatch(tl, file('a', 'one'));

    n.store.failNth(1, new PreconditionFailedError(keys.manifest(tl), 'injected: the ETag changed'), manifestPut);
    await expect(n.engine.checkpoint(tl)).rejects.toMatchObject({ status: 409, code: 'manifest_conflict' });
    n.store.heal();
    const puts = n.store.count((c) => c.op === 'put');
    await expect(n.engine.writeBatch(tl, file('b', 'two'))).rejects.toMatchObject({ status: 409, code: 'manifest_conflict' });
    await expect(n.engine.checkpoint(tl)).rejects.toMatchObject({ status: 409, code: 'manifest_conflict' });
    await expect(n.engine.compact(tl)).rejects.toMatchObject({ status: 409, code: 'manifest_conflict' });
    expect(n.store.count((c) => c.op === 'put')).toBe(puts); // nothing more reached the bucket
    // What was acknowledged is still readable here.
    expect(await readText(n.engine, tl, 'a', 3)).toBe('one');
  });
});
