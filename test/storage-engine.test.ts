// Unit tests of the storage engine (in-process, real local-folder object store, real files).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_ENGINE_CONFIG, StorageEngine } from '../storage-node/engine/storage-engine.ts';
import type { EngineConfig } from '../storage-node/engine/storage-engine.ts';
import { LocalFolderStore } from '../storage-node/object-store/local-folder.ts';
import type { FileOp } from '../storage-node/api/types.ts';
import { FsModel, randomOps, rng } from './support/fs-model.ts';
import { engineReader, expectTimelineEquals } from './support/storage-verify.ts';

const dirs: string[] = [];
const engines: StorageEngine[] = [];

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'lakebase-engine-'));
  dirs.push(d);
  return d;
}

async function newEngine(root: string, overrides: Partial<EngineConfig> = {}, dataDir = 'data'): Promise<StorageEngine> {
  const e = new StorageEngine({
    ...DEFAULT_ENGINE_CONFIG,
    backgroundIntervalMs: 0,
    dataDir: join(root, dataDir),
    objectStore: new LocalFolderStore(join(root, 'objects')),
    ...overrides,
  });
  await e.start();
  engines.push(e);
  return e;
}

afterEach(async () => {
  for (const e of engines.splice(0)) await e.close({ flush: false }).catch(() => {});
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** Writes `batches` random batches, returning the model snapshot after each LSN. */
async function randomHistory(engine: StorageEngine, tl: string, start: FsModel, seed: number, batches: number, tag: string): Promise<Map<number, FsModel>> {
  const rand = rng(seed);
  const snapshots = new Map<number, FsModel>();
  let model = start.clone();
  for (let i = 0; i < batches; i++) {
    const ops = randomOps(model, rand, 1 + Math.floor(rand() * 6), `${tag}${i}`);
    const ack = await engine.writeBatch(tl, { ops });
    model = model.clone();
    for (const op of ops) model.apply(op);
    snapshots.set(ack.lsn, model);
  }
  return snapshots;
}

async function expectAll(engine: StorageEngine, tl: string, snapshots: Map<number, FsModel>, label: string): Promise<void> {
  for (const [lsn, model] of snapshots) await expectTimelineEquals(engineReader(engine), tl, lsn, model, label);
}

describe('page versions and deltas', () => {
  it('reads every LSN exactly as written: in memory, from layers, after compaction, and after a restart on an empty disk', async () => {
    const root = await tempDir();
    const engine = await newEngine(root, { imagePartPages: 3 }); // the image layer is written in several parts
    const { timelineId: tl } = await engine.createTimeline({});
    const base = new FsModel();
    await engine.writeBatch(tl, { ops: [{ op: 'mkdir', path: 'd' }] });
    base.apply({ op: 'mkdir', path: 'd' });
    const history = await randomHistory(engine, tl, base, 42, 60, 'a');
    await expectAll(engine, tl, history, '(in memory)');
    await engine.checkpoint(tl);
    const more = await randomHistory(engine, tl, [...history.values()].at(-1)!, 43, 30, 'b');
    await engine.checkpoint(tl);
    expect((await engine.compact(tl)).parts).toBeGreaterThan(1);
    const all = new Map([...history, ...more]);
    await expectAll(engine, tl, all, '(layers + image)');
    await engine.close();
    // A new node with an empty local disk: everything comes from the object store.
    const fresh = await newEngine(root, {}, 'data-2');
    await expectAll(fresh, tl, all, '(recovered from object store)');
  });

  it('stores a partial-page write as a delta over the previous version, and a truncate cuts older pages', async () => {
    const root = await tempDir();
    const engine = await newEngine(root);
    const { timelineId: tl } = await engine.createTimeline({});
    const page = Buffer.alloc(8192, 0xaa);
    await engine.writeBatch(tl, { ops: [{ op: 'create', path: 'f' }, { op: 'write', path: 'f', offset: 0, data: Buffer.concat([page, page]) }] });
    await engine.writeBatch(tl, { ops: [{ op: 'write', path: 'f', offset: 100, data: Buffer.from('xyz') }] });
    await engine.writeBatch(tl, { ops: [{ op: 'truncate', path: 'f', size: 50 }, { op: 'write', path: 'f', offset: 8192 * 2, data: Buffer.from('end') }] });
    const read = async (p: number, lsn: number) => (await engine.readPages(tl, [{ path: 'f', page: p }], lsn)).pages[0];
    expect((await read(0, 2)).subarray(99, 104)).toEqual(Buffer.from([0xaa, 0x78, 0x79, 0x7a, 0xaa]));
    expect((await read(0, 1)).subarray(99, 104)).toEqual(Buffer.alloc(5, 0xaa));
    // After the truncate to 50 bytes the rest of page 0, and all of page 1, read as zeros; page 2 has the new bytes.
    expect((await read(0, 3)).subarray(0, 50)).toEqual(Buffer.alloc(50, 0xaa));
    expect((await read(0, 3)).subarray(50)).toEqual(Buffer.alloc(8192 - 50));
    expect(await read(1, 3)).toEqual(Buffer.alloc(8192));
    expect((await read(1, 2))).toEqual(Buffer.alloc(8192, 0xaa));
    expect((await read(2, 3)).subarray(0, 3).toString()).toBe('end');
    expect((await engine.listFiles(tl, 3)).files.find((f) => f.path === 'f')!.size).toBe(8192 * 2 + 3);
  });
});

describe('write log', () => {
  it('keeps every batch across checkpoints that rotate and trim the log while writers are busy, and replays the rest', async () => {
    const root = await tempDir();
    const engine = await newEngine(root);
    const tls = await Promise.all([0, 1, 2].map(() => engine.createTimeline({})));
    const histories = new Map<string, Map<number, FsModel>>();
    let checkpoints = 0;
    let writing = true;
    const checkpointer = (async () => {
      while (writing) {
        for (const t of tls) await engine.checkpoint(t.timelineId);
        checkpoints++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    await Promise.all(tls.map(async (t, i) => {
      await engine.writeBatch(t.timelineId, { ops: [{ op: 'mkdir', path: 'd' }] });
      const m = new FsModel();
      m.apply({ op: 'mkdir', path: 'd' });
      histories.set(t.timelineId, await randomHistory(engine, t.timelineId, m, 300 + i, 80, `w${i}`));
    }));
    writing = false;
    await checkpointer;
    expect(checkpoints).toBeGreaterThanOrEqual(2);
    // Some batches after the last checkpoint live only in the log: a restart (no flush) must replay them.
    for (const t of tls) await engine.writeBatch(t.timelineId, { ops: [{ op: 'create', path: `d/after-${t.timelineId}` }] });
    await engine.close({ flush: false });
    const again = await newEngine(root);
    for (const t of tls) {
      const h = histories.get(t.timelineId)!;
      const last = [...h.values()].at(-1)!.clone();
      last.apply({ op: 'create', path: `d/after-${t.timelineId}` });
      h.set(Math.max(...h.keys()) + 1, last);
      await expectAll(again, t.timelineId, h, `timeline ${t.timelineId} after restart`);
    }
  });
});

describe('branches', () => {
  it('a three-deep chain reads exactly what each parent had at its branch point, and nothing written after', async () => {
    const root = await tempDir();
    const engine = await newEngine(root);
    const { timelineId: a } = await engine.createTimeline({});
    await engine.writeBatch(a, { ops: [{ op: 'mkdir', path: 'd' }] });
    const m0 = new FsModel();
    m0.apply({ op: 'mkdir', path: 'd' });
    const ha = await randomHistory(engine, a, m0, 1, 20, 'a');
    const aLsn = 12;
    const b = (await engine.createTimeline({ ancestorTimelineId: a, ancestorLsn: aLsn })).timelineId;
    const ha2 = await randomHistory(engine, a, [...ha.values()].at(-1)!, 2, 10, 'a2'); // parent moves on
    const hb = await randomHistory(engine, b, ha.get(aLsn)!, 3, 15, 'b');
    await engine.checkpoint(a);
    const bLsn = [...hb.keys()][7];
    const c = (await engine.createTimeline({ ancestorTimelineId: b, ancestorLsn: bLsn })).timelineId;
    const hb2 = await randomHistory(engine, b, [...hb.values()].at(-1)!, 4, 5, 'b2');
    const hc = await randomHistory(engine, c, hb.get(bLsn)!, 5, 10, 'c');
    expect((await engine.getTimeline(c)).ancestorLsn).toBe(bLsn);
    await expectTimelineEquals(engineReader(engine), c, bLsn, hb.get(bLsn)!, 'c at its branch point');
    await expectAll(engine, c, hc, 'c');
    await expectAll(engine, b, new Map([...hb, ...hb2]), 'b');
    await expectAll(engine, a, new Map([...ha, ...ha2]), 'a');
    // Reads below a branch point are refused, not guessed.
    await expect(engine.listFiles(c, bLsn - 1)).rejects.toThrow(/before the branch point/);
  });

  it('creates a branch without copying: the parent has many pages, the branch writes no page', async () => {
    const root = await tempDir();
    const engine = await newEngine(root);
    const { timelineId: a } = await engine.createTimeline({});
    await engine.writeBatch(a, { ops: [{ op: 'create', path: 'big' }, { op: 'write', path: 'big', offset: 0, data: Buffer.alloc(8192 * 500, 1) }] });
    await engine.checkpoint(a);
    const store = new LocalFolderStore(join(root, 'objects'));
    const before = (await store.list('timelines/')).length;
    const b = await engine.createTimeline({ ancestorTimelineId: a });
    await engine.checkpoint(b.timelineId);
    const after = await store.list('timelines/');
    const added = after.filter((o) => o.key.startsWith(`timelines/${b.timelineId}/`));
    expect(after.length - before).toBe(1);
    expect(added.map((o) => o.key)).toEqual([`timelines/${b.timelineId}/manifest.json`]);
    expect(added[0].size).toBeLessThan(1024);
  });

  it('branches at a timestamp: the branch holds the batches committed up to that time', async () => {
    const root = await tempDir();
    const engine = await newEngine(root);
    const { timelineId: a } = await engine.createTimeline({});
    await engine.writeBatch(a, { ops: [{ op: 'create', path: 'one' }] });
    await new Promise((r) => setTimeout(r, 20));
    const between = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    await engine.writeBatch(a, { ops: [{ op: 'create', path: 'two' }] });
    const { lsn } = await engine.lsnAt(a, { timestamp: between });
    expect(lsn).toBe(1);
    const b = await engine.createTimeline({ ancestorTimelineId: a, ancestorTimestamp: between });
    expect(b.ancestorLsn).toBe(1);
    expect((await engine.listFiles(b.timelineId)).files.map((f) => f.path)).toEqual(['one']);
    await expect(engine.createTimeline({ ancestorTimelineId: a, ancestorTimestamp: '2001-01-01T00:00:00Z' })).rejects.toThrow(/before timeline/);
    await expect(engine.createTimeline({ ancestorTimelineId: a, ancestorTimestamp: 'yesterday' })).rejects.toThrow(/ISO 8601/);
  });

  it("maps Postgres' WAL positions to batches: a branch at one holds the batch whose WAL reached it and nothing later, across a restart", async () => {
    const root = await tempDir();
    let engine = await newEngine(root);
    const { timelineId: a } = await engine.createTimeline({});
    // segment 2 of timeline 1: WAL positions 0x2000000 + offset; the rest of a written page is zeros, as Postgres writes it
    const seg = 'pg_wal/000000010000000000000002';
    const walPage = (used: number): Uint8Array => Buffer.alloc(8192).fill(7, 0, used);
    await engine.writeBatch(a, { ops: [{ op: 'mkdir', path: 'pg_wal' }, { op: 'create', path: seg }, { op: 'truncate', path: seg, size: 16 * 1024 * 1024 }] });
    const first = await engine.writeBatch(a, { ops: [{ op: 'write', path: seg, offset: 8192, data: walPage(100) }] }); // ends at 0x2002068
    const dataOnly = await engine.writeBatch(a, { ops: [{ op: 'create', path: 'table' }] }); // no WAL: stays at 0x2002068
    const second = await engine.writeBatch(a, { ops: [{ op: 'write', path: seg, offset: 8192, data: walPage(300) }, { op: 'create', path: 'later' }] }); // 0x2002130
    const base = 0x2000000 + 8192;
    const check = async (e: StorageEngine) => {
      expect((await e.getTimeline(a)).lastWalLsn).toBe(base + 304);
      expect((await e.lsnAt(a, { walLsn: base + 104 })).lsn).toBe(dataOnly.lsn);
      expect((await e.lsnAt(a, { walLsn: base + 303 })).lsn).toBe(dataOnly.lsn);
      expect((await e.lsnAt(a, { walLsn: base + 304 })).lsn).toBe(second.lsn);
      expect((await e.lsnAt(a, { walLsn: base + 103 })).lsn).toBe(first.lsn - 1);
      const b = await e.createTimeline({ ancestorTimelineId: a, ancestorWalLsn: base + 200 });
      expect(b).toMatchObject({ ancestorLsn: dataOnly.lsn, ancestorWalLsn: base + 104, lastWalLsn: base + 104 });
      expect((await e.listFiles(b.timelineId)).files.map((f) => f.path).sort()).toEqual(['pg_wal', seg, 'table']);
      // past the head (beyond the slack for trailing zero bytes of the last record): refused, nothing created
      const before = e.listTimelines().length;
      await expect(e.createTimeline({ ancestorTimelineId: a, ancestorWalLsn: base + 304 + 1000 })).rejects.toMatchObject({ status: 400, code: 'lsn_ahead' });
      expect(e.listTimelines()).toHaveLength(before);
    };
    await check(engine);
    await engine.checkpoint(a); // into a layer: the positions must come back from it
    await engine.close({ flush: true });
    engines.splice(engines.indexOf(engine), 1);
    engine = await newEngine(root, {}, 'data-after-restart');
    await check(engine);
  });

  it('refuses to delete a timeline while a branch depends on it', async () => {
    const root = await tempDir();
    const engine = await newEngine(root);
    const { timelineId: a } = await engine.createTimeline({});
    const { timelineId: b } = await engine.createTimeline({ ancestorTimelineId: a });
    await expect(engine.deleteTimeline(a)).rejects.toThrow(/child branches/);
    await engine.deleteTimeline(b);
    await engine.deleteTimeline(a);
    expect(engine.listTimelines()).toEqual([]);
    await expect(engine.getTimeline(a)).rejects.toThrow(/not found/);
  });
});

describe('garbage collection', () => {
  it('drops superseded layers but never what the retention window or a branch point needs', async () => {
    const root = await tempDir();
    const engine = await newEngine(root, { retentionMs: 0 });
    const { timelineId: a } = await engine.createTimeline({});
    await engine.writeBatch(a, { ops: [{ op: 'mkdir', path: 'd' }] });
    const m0 = new FsModel();
    m0.apply({ op: 'mkdir', path: 'd' });
    const h1 = await randomHistory(engine, a, m0, 7, 10, 'g');
    await engine.checkpoint(a);
    const branchLsn = (await engine.getTimeline(a)).lastLsn;
    const { timelineId: child } = await engine.createTimeline({ ancestorTimelineId: a, ancestorLsn: branchLsn });
    const h2 = await randomHistory(engine, a, h1.get(branchLsn)!, 8, 10, 'h');
    await engine.checkpoint(a);
    await engine.compact(a);
    const h3 = await randomHistory(engine, a, [...h2.values()].at(-1)!, 9, 5, 'i');
    await engine.checkpoint(a);
    await engine.compact(a);
    // The child's branch point holds the cutoff back: the layers holding the state at branchLsn stay.
    const gc1 = await engine.gc(a);
    expect(gc1.cutoffLsn).toBeLessThanOrEqual(branchLsn);
    await expectTimelineEquals(engineReader(engine), child, branchLsn, h1.get(branchLsn)!, 'child after GC');
    await expectTimelineEquals(engineReader(engine), a, branchLsn, h1.get(branchLsn)!, 'parent at branch point after GC');
    // Once the child is gone, retention 0 lets GC drop everything before the newest image.
    await engine.deleteTimeline(child);
    const gc2 = await engine.gc(a);
    expect(gc2.layersRemoved).toBeGreaterThan(0);
    const lastLsn = (await engine.getTimeline(a)).lastLsn;
    expect(gc2.cutoffLsn).toBe(lastLsn);
    await expectTimelineEquals(engineReader(engine), a, lastLsn, [...h3.values()].at(-1)!, 'head after GC');
    await expect(engine.listFiles(a, branchLsn)).rejects.toThrow(/garbage-collected/);
    // And the result survives a restart from the object store alone.
    await engine.close();
    const fresh = await newEngine(root, { retentionMs: 0 }, 'data-2');
    await expectTimelineEquals(engineReader(fresh), a, lastLsn, [...h3.values()].at(-1)!, 'head after GC and restart');
  });

  it('keeps history inside the retention window', async () => {
    const root = await tempDir();
    const engine = await newEngine(root); // default retention: 7 days
    const { timelineId: a } = await engine.createTimeline({});
    await engine.writeBatch(a, { ops: [{ op: 'create', path: 'f' }, { op: 'write', path: 'f', offset: 0, data: Buffer.from('v1') }] });
    await engine.checkpoint(a);
    await engine.writeBatch(a, { ops: [{ op: 'write', path: 'f', offset: 0, data: Buffer.from('v2') }] });
    await engine.compact(a);
    const r = await engine.gc(a);
    expect(r.layersRemoved).toBe(0);
    expect((await engine.readPages(a, [{ path: 'f', page: 0 }], 1)).pages[0].subarray(0, 2).toString()).toBe('v1');
  });
});

describe('bad input changes nothing', () => {
  it('refuses invalid batches whole, with a reason', async () => {
    const root = await tempDir();
    const engine = await newEngine(root);
    const { timelineId: a } = await engine.createTimeline({});
    await engine.writeBatch(a, { ops: [{ op: 'create', path: 'f' }] });
    const bad: [FileOp[], RegExp][] = [
      [[{ op: 'write', path: 'f', offset: 0, data: Buffer.from('x') }, { op: 'write', path: 'nope', offset: 0, data: Buffer.from('y') }], /no such file/],
      [[{ op: 'create', path: 'missing-dir/f' }], /parent directory/],
      [[{ op: 'rmdir', path: 'f' }], /not a directory/],
      [[{ op: 'mkdir', path: 'f' }], /a file exists/],
      [[{ op: 'rename', from: 'ghost', to: 'g' }], /source does not exist/],
    ];
    for (const [ops, msg] of bad) await expect(engine.writeBatch(a, { ops })).rejects.toThrow(msg);
    await expect(engine.writeBatch(a, { expectedLsn: 0, ops: [] })).rejects.toThrow(/another writer/);
    const info = await engine.getTimeline(a);
    expect(info.lastLsn).toBe(1);
    expect((await engine.readPages(a, [{ path: 'f', page: 0 }])).pages[0]).toEqual(Buffer.alloc(8192));
    await expect(engine.readPage(a, 'f', 0, 5)).rejects.toThrow(/ahead of/);
    await expect(engine.writeBatch('0'.repeat(32), { ops: [] })).rejects.toThrow(/not found/);
  });
});
