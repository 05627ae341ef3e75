// Storage nodes sharing one bucket hand timelines over (issue 15, storage side): a node adopts, on the first request
// naming it, a timeline another node made or released; POST /release puts everything acknowledged into the bucket
// and forgets the timeline; in object-store mode a node that lost a write to another one adopts the timeline again;
// only the node that writes a timeline does background work on it; a node not told of a takeover never acknowledges
// a batch the new owner would cut (object-store durability). Real storage node processes over one local-folder
// bucket (different data directories), and in-process engines where the background loop must run fast.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileOp, WriteBatch } from '../storage-node/api/types.ts';
import { StorageClient, StorageNodeError } from '../storage-node/client.ts';
import { DEFAULT_ENGINE_CONFIG, StorageEngine } from '../storage-node/engine/storage-engine.ts';
import type { Durability, EngineConfig } from '../storage-node/engine/storage-engine.ts';
import { keys, parseManifest } from '../storage-node/engine/manifest.ts';
import type { Manifest } from '../storage-node/engine/manifest.ts';
import { LocalFolderStore } from '../storage-node/object-store/local-folder.ts';
import { FsModel, randomOps, rng } from './support/fs-model.ts';
import { engineReader, expectTimelineEquals } from './support/storage-verify.ts';
import { startStorageProcess } from './support/storage-process.ts';
import type { StorageProcess } from './support/storage-process.ts';

const procs: StorageProcess[] = [];
const clients: StorageClient[] = [];
const engines: StorageEngine[] = [];
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'lakebase-handover-'));
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const p of procs) {
    p.proc.kill('SIGCONT'); // a test that failed while a node was stopped
    await p.kill9();
  }
  for (const e of engines) await e.close({ flush: false }).catch(() => {});
  if (root) await rm(root, { recursive: true, force: true });
});

interface Node {
  proc: StorageProcess;
  client: StorageClient;
}

/** A storage node process with its own data directory, over the shared bucket `bucket`. */
async function node(bucket: string, dataDir: string, durability: Durability): Promise<Node> {
  const proc = await startStorageProcess(['--data-dir', join(root, dataDir), '--durability', durability], { LAKEBASE_OBJECT_STORE_DIR: join(root, bucket) });
  procs.push(proc);
  const client = new StorageClient(proc.url, proc.token);
  clients.push(client);
  return { proc, client };
}

/** An in-process engine over the shared bucket (for a fast background loop). */
async function engine(bucket: string, dataDir: string, config: Partial<EngineConfig> = {}): Promise<StorageEngine> {
  const e = new StorageEngine({
    ...DEFAULT_ENGINE_CONFIG, backgroundIntervalMs: 0, ...config, dataDir: join(root, dataDir), objectStore: new LocalFolderStore(join(root, bucket)),
  });
  await e.start();
  engines.push(e);
  return e;
}

interface Writer {
  writeBatch(tl: string, batch: WriteBatch): Promise<{ lsn: number }>;
}

/** Writes `n` random batches (after the model's state), applying them to the model; the last LSN. */
async function writeRandom(w: Writer, tl: string, model: FsModel, seed: number, n: number, gen?: number): Promise<number> {
  const rand = rng(seed);
  let lsn = 0;
  for (let i = 0; i < n; i++) {
    const ops: FileOp[] = randomOps(model, rand, 1 + Math.floor(rand() * 4), `s${seed}-${i}`);
    lsn = (await w.writeBatch(tl, { ops, ...(gen === undefined ? {} : { writerGeneration: gen }) })).lsn;
    for (const op of ops) model.apply(op);
  }
  return lsn;
}

/** A first batch: a directory and a file with a few pages, so that reads touch layers and the log alike. */
function seed(model: FsModel): FileOp[] {
  const ops: FileOp[] = [
    { op: 'mkdir', path: 'd' },
    { op: 'create', path: 'd/big' },
    { op: 'write', path: 'd/big', offset: 0, data: Buffer.alloc(8192 * 3 + 100, 7) },
  ];
  for (const op of ops) model.apply(op);
  return ops;
}

async function bucketManifest(bucket: string, tl: string): Promise<Manifest | null> {
  const res = await new LocalFolderStore(join(root, bucket)).get(keys.manifest(tl));
  return res ? parseManifest(keys.manifest(tl), res.body) : null;
}

/** Every object of the timeline in the bucket, with its ETag: what "nothing of it changed" compares. */
async function objectsOf(bucket: string, tl: string): Promise<string[]> {
  return (await new LocalFolderStore(join(root, bucket)).list(keys.timelinePrefix(tl))).map((o) => `${o.key} ${o.etag}`);
}

async function refusal(p: Promise<unknown>): Promise<StorageNodeError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(StorageNodeError);
  return e as StorageNodeError;
}

function post(n: Node, path: string, body?: string): Promise<Response> {
  return fetch(`${n.proc.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${n.proc.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body,
  });
}

describe('adopting a timeline another node made (real processes, one bucket)', () => {
  it.each(['local', 'object-store'] as const)('node B serves it on the first request and branches it (%s durability)', async (durability) => {
    const bucket = `adopt-${durability}`;
    const a = await node(bucket, `adopt-${durability}-a`, durability);
    const b = await node(bucket, `adopt-${durability}-b`, durability); // started first: the timeline is not in its start listing
    for (const n of [a, b]) expect(await (await fetch(`${n.proc.url}/healthz`)).json()).toEqual({ status: 'ok', durability });

    const tl = (await a.client.createTimeline()).timelineId;
    const model = new FsModel();
    await a.client.writeBatch(tl, { ops: seed(model) });
    await a.client.checkpoint(tl); // a layer, and (local mode) what B can see: local-mode batches are in A's log only
    const head = await writeRandom(a.client, tl, model, 1, 6);
    if (durability === 'local') await a.client.checkpoint(tl);
    else expect((await bucketManifest(bucket, tl))?.uploadedLsn).toBeLessThan(head); // the rest are WAL objects only

    // concurrent first requests share one adoption; all see the same timeline
    const [info, listing, page] = await Promise.all([b.client.getTimeline(tl), b.client.listFiles(tl), b.client.readPage(tl, 'd/big', 1)]);
    expect(info.lastLsn).toBe(head);
    expect(listing.lsn).toBe(head);
    expect(page.equals(await a.client.readPage(tl, 'd/big', 1))).toBe(true);
    await expectTimelineEquals(b.client, tl, head, model, 'on node B');
    expect((await b.client.listTimelines()).map((t) => t.timelineId)).toContain(tl);
    await expect(b.client.getTimeline('f'.repeat(32))).rejects.toMatchObject({ status: 404, code: 'timeline_not_found' });

    // a branch on B of A's timeline (local mode: once A released it; object-store mode: the bucket has it all)
    if (durability === 'local') expect(await a.client.releaseTimeline(tl)).toEqual({ timelineId: tl, lastLsn: head, uploadedLsn: head, descendants: [] });
    const branch = await b.client.createTimeline({ ancestorTimelineId: tl });
    expect(branch.ancestorLsn).toBe(head);
    const branchModel = model.clone();
    const branchHead = await writeRandom(b.client, branch.timelineId, branchModel, 2, 4);
    await expectTimelineEquals(b.client, branch.timelineId, branchHead, branchModel, 'branch on B');
    await expectTimelineEquals(b.client, branch.timelineId, head, model, 'branch on B at its branch point');
    await expectTimelineEquals(a.client, tl, head, model, 'the ancestor, back on A');
  });
});

describe('release: a node hands a timeline over through the bucket', () => {
  it('local durability: every acknowledged batch, still only in A\'s write log, is served by B, which takes the writer and writes on', async () => {
    const bucket = 'release-local';
    const a = await node(bucket, 'release-a', 'local');
    const b = await node(bucket, 'release-b', 'local');
    const tl = (await a.client.createTimeline()).timelineId;
    expect((await a.client.acquireWriter(tl)).generation).toBe(1);
    const model = new FsModel();
    await a.client.writeBatch(tl, { ops: seed(model), writerGeneration: 1 });
    await a.client.checkpoint(tl);
    const head = await writeRandom(a.client, tl, model, 3, 8, 1);
    // a branch of it, loaded (and written) on A: released with it
    const child = (await a.client.createTimeline({ ancestorTimelineId: tl })).timelineId;
    const childModel = model.clone();
    const childHead = await writeRandom(a.client, child, childModel, 4, 3);
    const before = await bucketManifest(bucket, tl);
    expect(before!.uploadedLsn).toBeLessThan(head); // the last batches are in A's write log only

    // the HTTP contract
    expect((await post(a, `/v1/timelines/${tl}/release`, '{"x": 1}')).status).toBe(400);
    const badId = await post(a, '/v1/timelines/nope/release');
    expect(badId.status).toBe(400);
    expect(((await badId.json()) as { error: { code: string } }).error.code).toBe('invalid_timeline_id');
    const missing = await post(a, `/v1/timelines/${'e'.repeat(32)}/release`, '{}');
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('timeline_not_found');
    const res = await post(a, `/v1/timelines/${tl}/release`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ timelineId: tl, lastLsn: head, uploadedLsn: head, descendants: [child] });
    expect((await bucketManifest(bucket, tl))!.uploadedLsn).toBe(head);
    expect((await bucketManifest(bucket, child))!.uploadedLsn).toBe(childHead);

    await expectTimelineEquals(b.client, tl, head, model, 'released to B');
    await expectTimelineEquals(b.client, child, childHead, childModel, 'its branch, released to B');
    expect((await b.client.acquireWriter(tl)).generation).toBe(2);
    const next = await writeRandom(b.client, tl, model, 5, 3, 2);
    await expectTimelineEquals(b.client, tl, next, model, 'written on B');

    // A stale writer on A: A adopts the timeline again from the bucket, where B's takeover is
    const stale = await refusal(a.client.writeBatch(tl, { expectedLsn: head, writerGeneration: 1, ops: [{ op: 'create', path: 'stale' }] }));
    expect({ status: stale.status, code: stale.code }).toEqual({ status: 409, code: 'writer_fenced' });

    // B hands it back; A, killed and restarted (its log still holds the timeline's old batches), serves B's writes
    expect((await b.client.releaseTimeline(tl)).uploadedLsn).toBe(next);
    await a.proc.kill9();
    const a2 = await node(bucket, 'release-a', 'local');
    await expectTimelineEquals(a2.client, tl, next, model, 'back on A after a restart');
    await expectTimelineEquals(a2.client, child, childHead, childModel, 'the branch back on A after a restart');
    expect((await a2.client.acquireWriter(tl)).generation).toBe(3);
    const last = await writeRandom(a2.client, tl, model, 6, 2, 3);
    await expectTimelineEquals(a2.client, tl, last, model, 'written on A again');
  });

  it('object-store durability: takeover of a frozen node; its stale writer is refused, and it then serves the new node\'s writes', async () => {
    const bucket = 'takeover';
    const a = await node(bucket, 'takeover-a', 'object-store');
    const b = await node(bucket, 'takeover-b', 'object-store');
    const tl = (await a.client.createTimeline()).timelineId;
    expect((await a.client.acquireWriter(tl)).generation).toBe(1);
    const model = new FsModel();
    await a.client.writeBatch(tl, { ops: seed(model), writerGeneration: 1 });
    const head = await writeRandom(a.client, tl, model, 7, 6, 1);
    const aModel = model.clone();

    a.proc.proc.kill('SIGSTOP'); // frozen: not released, its memory and its open requests intact
    try {
      await expectTimelineEquals(b.client, tl, head, model, 'adopted by B');
      const taken = await b.client.acquireWriter(tl);
      expect(taken).toMatchObject({ generation: 2, timeline: { lastLsn: head } });
      const bHead = await writeRandom(b.client, tl, model, 8, 3, 2);
      expect(bHead).toBe(head + 3);
    } finally {
      a.proc.proc.kill('SIGCONT');
    }
    const stale = await refusal(a.client.writeBatch(tl, { expectedLsn: head, writerGeneration: 1, ops: [{ op: 'create', path: 'stale' }] }));
    expect(stale.status).toBe(409);
    expect(['writer_fenced', 'lsn_conflict']).toContain(stale.code);
    // recovered: A adopted the timeline again, with B's writes (and never the stale batch)
    expect((await a.client.getTimeline(tl)).lastLsn).toBe(head + 3);
    await expectTimelineEquals(a.client, tl, head + 3, model, 'A after the takeover');
    await expectTimelineEquals(a.client, tl, head, aModel, 'A at its own last LSN');
    expect((await refusal(a.client.writeBatch(tl, { writerGeneration: 1, ops: [{ op: 'create', path: 'stale' }] }))).code).toBe('writer_fenced');
  });
});

describe('a timeline whose ancestor another node owns (in-process engines, fast background loop)', () => {
  it('B branches, compacts and collects its branch, and never changes an object of A\'s template; the branch moves to A', async () => {
    const bucket = 'template';
    const a = await engine(bucket, 'template-a', { durability: 'object-store' });
    // B: every background pass freezes, compacts and collects whatever it may
    const b = await engine(bucket, 'template-b', {
      durability: 'local', backgroundIntervalMs: 20, freezeIdleMs: 0, compactAfterDeltaLayers: 1, retentionMs: 0,
    });
    const template = (await a.createTimeline({})).timelineId;
    const model = new FsModel();
    await a.writeBatch(template, { ops: seed(model) });
    await writeRandom(a, template, model, 9, 4);
    await a.checkpoint(template);
    const head = await writeRandom(a, template, model, 10, 4); // WAL objects beyond the layers: what B replays
    const templateObjects = await objectsOf(bucket, template);
    expect(templateObjects.some((o) => o.includes('/wal/'))).toBe(true);

    await expectTimelineEquals(engineReader(b), template, head, model, 'the template read on B');
    const branch = (await b.createTimeline({ ancestorTimelineId: template })).timelineId;
    const branchModel = model.clone();
    let branchHead = head;
    for (let i = 0; i < 3; i++) {
      branchHead = await writeRandom(b, branch, branchModel, 11 + i, 2);
      await b.checkpoint(branch);
    }
    // B's background loop compacts and collects the branch (its own)...
    await expect.poll(async () => (await bucketManifest(bucket, branch))?.layers.some((l) => l.kind === 'image'), { timeout: 20_000 }).toBe(true);
    await expect.poll(async () => (await bucketManifest(bucket, branch))?.gcCutoffLsn ?? 0, { timeout: 20_000 }).toBeGreaterThan(head);
    await new Promise((r) => setTimeout(r, 200)); // ...and runs a few more passes
    // ...and never the template, which it loaded (with unfrozen batches replayed from WAL objects) but never wrote
    expect(await objectsOf(bucket, template)).toEqual(templateObjects);
    await expectTimelineEquals(engineReader(b), branch, branchHead, branchModel, 'the branch on B');

    // the branch moves to A, where its ancestor lives
    expect(await b.releaseTimeline(branch)).toEqual({ timelineId: branch, lastLsn: branchHead, uploadedLsn: branchHead, descendants: [] });
    await expectTimelineEquals(engineReader(a), branch, branchHead, branchModel, 'the branch on A');
    const moved = await writeRandom(a, branch, branchModel, 20, 2);
    await expectTimelineEquals(engineReader(a), branch, moved, branchModel, 'the branch written on A');
    await expectTimelineEquals(engineReader(a), template, head, model, 'the template on A');
  });
});

describe('an unaware node never acknowledges a batch after a takeover (object-store durability)', () => {
  it('real processes: the stale writer\'s batch, sent to the old node after the takeover, is refused; the new owner writes over it', async () => {
    const bucket = 'unaware';
    const a = await node(bucket, 'unaware-a', 'object-store');
    const b = await node(bucket, 'unaware-b', 'object-store');
    // made on B and handed over: A adopts it, and the old compute takes it there
    const tl = (await b.client.createTimeline()).timelineId;
    const model = new FsModel();
    await b.client.writeBatch(tl, { ops: seed(model) });
    await b.client.releaseTimeline(tl);
    const g = (await a.client.acquireWriter(tl)).generation;
    const head = await writeRandom(a.client, tl, model, 40, 4, g);
    const staleBatch: WriteBatch = { expectedLsn: head, writerGeneration: g, ops: [{ op: 'create', path: 'stale' }] };

    // the control plane moves the timeline to B; A is not told
    const taken = await b.client.acquireWriter(tl);
    expect(taken).toMatchObject({ generation: g + 1, timeline: { lastLsn: head } });
    expect(await bucketManifest(bucket, tl)).toMatchObject({ writerGeneration: g + 1, writerSinceLsn: head });

    // the old compute's batch reaches A, which puts it (create-once: B has not written there) and then refuses it
    const stale = await refusal(a.client.writeBatch(tl, staleBatch));
    expect({ status: stale.status, code: stale.code }).toEqual({ status: 409, code: 'writer_fenced' });
    expect(stale.message).toMatch(`was taken over by a newer compute (writer generation ${g + 1}; this batch's is ${g})`);
    const staleKey = keys.walObject(tl, head + 1);
    expect(await new LocalFolderStore(join(root, bucket)).head(staleKey)).not.toBeNull();
    // a node that loads the timeline now ignores that object, and leaves it (only the writer deletes)
    const reader = await engine(bucket, 'unaware-reader', { durability: 'object-store' });
    expect((await reader.getTimeline(tl)).lastLsn).toBe(head);
    expect(await new LocalFolderStore(join(root, bucket)).head(staleKey)).not.toBeNull();

    // B's writer writes at head + 1, over the refused object; its content and head never show the stale batch
    const bHead = await writeRandom(b.client, tl, model, 41, 3, g + 1);
    expect(bHead).toBe(head + 3);
    await expectTimelineEquals(b.client, tl, bHead, model, 'on B');
    // A's next request adopts the timeline again: B's writes, no stale batch
    expect((await a.client.getTimeline(tl)).lastLsn).toBe(bHead);
    await expectTimelineEquals(a.client, tl, bHead, model, 'A after the takeover');
    expect((await refusal(a.client.writeBatch(tl, { ...staleBatch, expectedLsn: bHead }))).code).toBe('writer_fenced');
    expect((await b.client.getTimeline(tl)).lastLsn).toBe(bHead);
  });

  /** In-process engines A (the unaware node) and B (taking over), B's (or A's) bucket access with a hook. */
  async function racePair(name: string, hooks: { bPut?: HookedPut; aHead?: HookedHead }) {
    const a = hooked(await engine(name, `${name}-a`, { durability: 'object-store' }), hooks.aHead);
    const bStore = new LocalFolderStore(join(root, name));
    if (hooks.bPut) {
      const put = bStore.put.bind(bStore);
      const hook = hooks.bPut;
      bStore.put = async (key, body, options) => {
        await hook(key, Buffer.from(body));
        return put(key, body, options);
      };
    }
    const b = new StorageEngine({ ...DEFAULT_ENGINE_CONFIG, backgroundIntervalMs: 0, durability: 'object-store', dataDir: join(root, `${name}-b`), objectStore: bStore });
    await b.start();
    engines.push(b);
    const tl = (await a.createTimeline({})).timelineId;
    expect((await a.acquireWriter(tl)).generation).toBe(1);
    await a.writeBatch(tl, file('one', 'a-one', 1));
    await a.writeBatch(tl, file('two', 'a-two', 1));
    expect((await b.getTimeline(tl)).lastLsn).toBe(2); // B adopted it
    return { a, b, tl };
  }

  type HookedPut = (key: string, body: Buffer) => Promise<void>;
  type HookedHead = (key: string) => Promise<void>;

  /** Delays A's HEADs through `hook` (A's engine keeps the store it was made with: its `head` is replaced). */
  function hooked(e: StorageEngine, hook?: HookedHead): StorageEngine {
    if (hook) {
      const store = (e as unknown as { store: LocalFolderStore }).store;
      const head = store.head.bind(store);
      store.head = async (key) => {
        await hook(key);
        return head(key);
      };
    }
    return e;
  }

  const file = (path: string, text: string, gen: number): WriteBatch => ({
    writerGeneration: gen,
    ops: [{ op: 'create', path }, { op: 'write', path, offset: 0, data: Buffer.from(text.padEnd(8)) }],
  });

  it('A\'s put and its manifest check land between B\'s check and B\'s manifest upload: A acknowledges, and B keeps the batch', async () => {
    let late: { lsn: number } | null = null;
    let tl = '';
    let a: StorageEngine | null = null;
    const { b, ...rest } = await racePair('race-ack', {
      bPut: async (key, body) => {
        // right before B's takeover manifest goes up (B checked the bucket already): A's writer gets one more batch in
        if (late || !a || key !== keys.manifest(tl) || parseManifest(key, body).writerGeneration !== 2) return;
        late = await a.writeBatch(tl, file('late', 'a-late', 1));
      },
    });
    ({ a, tl } = rest);
    const taken = await b.acquireWriter(tl);
    expect(late).toEqual({ lsn: 3, time: expect.any(String) }); // acknowledged: A's check ran before B's upload
    expect(taken).toMatchObject({ generation: 2, timeline: { lastLsn: 3 } });
    expect(await bucketManifest('race-ack', tl)).toMatchObject({ writerGeneration: 2, writerSinceLsn: 3 });

    // A's writer is refused from now on; B's writes after the acknowledged batch
    expect((await a.writeBatch(tl, file('later', 'a-later', 1)).then(() => null, (e: unknown) => e))).toMatchObject({ status: 409, code: 'writer_fenced' });
    expect((await b.writeBatch(tl, file('b', 'b-four', 2))).lsn).toBe(4);
    const c = await engine('race-ack', 'race-ack-c', { durability: 'object-store' });
    expect((await c.getTimeline(tl)).lastLsn).toBe(4);
    expect((await c.listFiles(tl)).files.map((f) => f.path)).toEqual(['b', 'late', 'one', 'two']);
    expect((await c.readPage(tl, 'late', 0)).subarray(0, 8).toString()).toBe('a-late  ');
  });

  it('A\'s put lands before B\'s upload but its check after: A refuses, B keeps it (a lost answer, never a lost acknowledgement)', async () => {
    let hold: Promise<void> | null = null;
    let free = (): void => {};
    const { a, b, tl } = await racePair('race-refuse', {
      aHead: async (key) => {
        if (hold && key.endsWith('/manifest.json')) await hold;
      },
    });
    hold = new Promise((r) => {
      free = r;
    });
    const pending = a.writeBatch(tl, file('late', 'a-late', 1)).then(() => null, (e: unknown) => e);
    const store = new LocalFolderStore(join(root, 'race-refuse'));
    await expect.poll(() => store.head(keys.walObject(tl, 3))).not.toBeNull(); // A's put is in; its check waits
    const taken = await b.acquireWriter(tl);
    expect(taken.timeline.lastLsn).toBe(3);
    free();
    expect(await pending).toMatchObject({ status: 409, code: 'writer_fenced' });
    expect((await b.writeBatch(tl, file('b', 'b-four', 2))).lsn).toBe(4);
    expect((await a.getTimeline(tl)).lastLsn).toBe(4); // A adopted it again
  });
});

describe('release and adoption edge cases (in-process engines, local durability)', () => {
  it('batches racing a release: every one acknowledged up to the released LSN is in the bucket; later ones wait and go to the timeline adopted again', async () => {
    const bucket = 'race';
    const a = await engine(bucket, 'race-a');
    const b = await engine(bucket, 'race-b');
    const tl = (await a.createTimeline({})).timelineId;
    const writes: Promise<{ lsn: number }>[] = [];
    for (let i = 0; i < 30; i++) writes.push(a.writeBatch(tl, { ops: [{ op: 'create', path: `f${i}` }] }));
    const released = a.releaseTimeline(tl);
    for (let i = 30; i < 40; i++) writes.push(a.writeBatch(tl, { ops: [{ op: 'create', path: `f${i}` }] }));
    const answer = await released;
    const acks = await Promise.all(writes);
    expect(new Set(acks.map((x) => x.lsn)).size).toBe(40); // none lost, none twice
    expect(answer.lastLsn).toBeGreaterThanOrEqual(30);
    const onB = new Set((await b.listFiles(tl)).files.map((f) => f.path));
    expect((await b.getTimeline(tl)).lastLsn).toBe(answer.lastLsn);
    for (const [i, x] of acks.entries()) expect(onB.has(`f${i}`), `f${i} at LSN ${x.lsn}`).toBe(x.lsn <= answer.lastLsn);
    // the later ones are on A, which took the timeline up again from the bucket
    expect((await a.listFiles(tl)).files).toHaveLength(40);
  });

  it('a manifest read when the node started is read again on first use: the node sees what another node wrote since', async () => {
    const bucket = 'listed';
    const a = await engine(bucket, 'listed-a');
    const tl = (await a.createTimeline({})).timelineId;
    const model = new FsModel();
    await a.writeBatch(tl, { ops: seed(model) });
    await a.checkpoint(tl);
    const b = await engine(bucket, 'listed-b'); // lists the timeline as it is now
    expect(b.listTimelines().map((t) => t.timelineId)).toEqual([tl]);
    const head = await writeRandom(a, tl, model, 30, 5);
    await a.releaseTimeline(tl);
    await expectTimelineEquals(engineReader(b), tl, head, model, 'on B, listed before A wrote');
    await a.close();
    engines.splice(engines.indexOf(a), 1);
    // a timeline deleted by another node after this one listed it is gone here too
    const other = await engine(bucket, 'listed-c');
    await b.deleteTimeline(tl);
    await expect(other.getTimeline(tl)).rejects.toMatchObject({ status: 404, code: 'timeline_not_found' });
  });
});
