// Durability of the storage node as a real process: kill -9 mid-stream, recovery from the write log, recovery
// from the bucket alone (object-store mode), and two nodes racing for one timeline.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { StorageClient, StorageNodeError } from '../storage-node/client.ts';
import { FsModel, randomOps, rng } from './support/fs-model.ts';
import { expectTimelineEquals } from './support/storage-verify.ts';
import { s3Env, startStorageProcess } from './support/storage-process.ts';
import type { StorageProcess } from './support/storage-process.ts';

const procs: StorageProcess[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const p of procs) await p.kill9();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'lakebase-durability-'));
  dirs.push(d);
  return d;
}

async function start(args: string[], env: Record<string, string> = {}): Promise<StorageProcess> {
  const p = await startStorageProcess(args, env);
  procs.push(p);
  return p;
}

interface Stream {
  acked: Map<number, FsModel>; // LSN -> state after it
  inFlight: FsModel | null; // state after the batch sent but not acknowledged when the node died
}

/** Writes batches one after another until the node dies; remembers what was acknowledged. */
async function writeUntilDead(client: StorageClient, tl: string, seed: number, tag: string): Promise<Stream> {
  const rand = rng(seed);
  const s: Stream = { acked: new Map(), inFlight: null };
  let model = new FsModel();
  model.apply({ op: 'mkdir', path: 'd' });
  s.acked.set((await client.writeBatch(tl, { ops: [{ op: 'mkdir', path: 'd' }] })).lsn, model);
  for (let i = 0; i < 100_000; i++) {
    const ops = randomOps(model, rand, 1 + Math.floor(rand() * 5), `${tag}${i}`);
    const next = model.clone();
    for (const op of ops) next.apply(op);
    s.inFlight = next;
    try {
      const ack = await client.writeBatch(tl, { ops });
      s.acked.set(ack.lsn, next);
      model = next;
    } catch (e) {
      if (e instanceof StorageNodeError && e.status === 0) return s; // the node is gone
      throw e;
    }
  }
  return s;
}

async function expectStreamRecovered(client: StorageClient, tl: string, s: Stream, label: string): Promise<void> {
  const info = await client.getTimeline(tl);
  const lastAcked = Math.max(...s.acked.keys());
  // The batch in flight may or may not have become durable before the kill, but never half of it.
  expect(info.lastLsn === lastAcked || info.lastLsn === lastAcked + 1, `${label}: last LSN ${info.lastLsn}, last acknowledged ${lastAcked}`).toBe(true);
  for (const [lsn, model] of s.acked) await expectTimelineEquals(client, tl, lsn, model, label);
  if (info.lastLsn === lastAcked + 1) await expectTimelineEquals(client, tl, info.lastLsn, s.inFlight!, `${label} (in-flight batch)`);
}

describe('storage node process', () => {
  it('kill -9 in the middle of concurrent write streams loses no acknowledged batch and leaves none half-written', async () => {
    const root = await tempDir();
    const args = ['--data-dir', join(root, 'data')];
    const env = { LAKEBASE_OBJECT_STORE_DIR: join(root, 'objects') };
    const node = await start(args, env);
    const client = new StorageClient(node.url, node.token);
    const tls = await Promise.all([1, 2, 3, 4].map(() => client.createTimeline()));
    const streams = tls.map((t, i) => writeUntilDead(client, t.timelineId, 100 + i, `k${i}`));
    await new Promise((r) => setTimeout(r, 1500));
    await node.kill9();
    const results = await Promise.all(streams);
    for (const r of results) expect(r.acked.size).toBeGreaterThan(5);
    const again = await start(args, env);
    const c2 = new StorageClient(again.url, again.token);
    for (let i = 0; i < tls.length; i++) await expectStreamRecovered(c2, tls[i].timelineId, results[i], `timeline ${i}`);
    // Group commit: several concurrent batches share one fsync.
    const metrics = await (await fetch(`${again.url}/metrics`, { headers: { authorization: `Bearer ${again.token}` } })).text();
    expect(metrics).toMatch(/storage_wal_fsync_seconds_count/);
    await again.stop();
  });

  it('object-store mode: kill -9, lose the whole local disk, and a new node on the bucket has every acknowledged batch', async () => {
    const s3 = inject('s3');
    const prefix = `durability-${randomBytes(4).toString('hex')}`;
    const root = await tempDir();
    const node = await start(['--data-dir', join(root, 'data-1'), '--durability', 'object-store'], s3Env(s3, prefix));
    const client = new StorageClient(node.url, node.token);
    const { timelineId } = await client.createTimeline();
    const stream = writeUntilDead(client, timelineId, 7, 'o');
    await new Promise((r) => setTimeout(r, 1500));
    await node.kill9();
    const result = await stream;
    expect(result.acked.size).toBeGreaterThan(3);
    await rm(join(root, 'data-1'), { recursive: true, force: true });
    const fresh = await start(['--data-dir', join(root, 'data-2'), '--durability', 'object-store'], s3Env(s3, prefix));
    await expectStreamRecovered(new StorageClient(fresh.url, fresh.token), timelineId, result, 'recovered from bucket');
    await fresh.stop();
  });

  it('local mode: a node started on an empty disk serves every checkpointed timeline from the bucket, fetching only what reads touch', async () => {
    const s3 = inject('s3');
    const prefix = `empty-disk-${randomBytes(4).toString('hex')}`;
    const root = await tempDir();
    const node = await start(['--data-dir', join(root, 'data-1')], s3Env(s3, prefix));
    const client = new StorageClient(node.url, node.token);
    const { timelineId } = await client.createTimeline();
    const big = randomBytes(8192 * 64);
    await client.writeBatch(timelineId, { ops: [{ op: 'create', path: 'rel' }, { op: 'write', path: 'rel', offset: 0, data: big }] });
    await node.stop(); // graceful: freezes and uploads
    const fresh = await start(['--data-dir', join(root, 'data-2')], s3Env(s3, prefix));
    const c2 = new StorageClient(fresh.url, fresh.token);
    const page = await c2.readPage(timelineId, 'rel', 10);
    expect(page.equals(big.subarray(8192 * 10, 8192 * 11))).toBe(true);
    const metrics = await (await fetch(`${fresh.url}/metrics`, { headers: { authorization: `Bearer ${fresh.token}` } })).text();
    const fetched = Number(/storage_read_bytes_total\{source="object_store"\} (\d+)/.exec(metrics)?.[1] ?? NaN);
    // The read fetched one page plus the layer's footer and index by range, not the 512 KiB layer.
    expect(fetched).toBeGreaterThanOrEqual(8192);
    expect(fetched).toBeLessThan(8192 * 2);
    await fresh.stop();
  });

  it('two nodes racing to update one manifest: one wins, the other gets a clear conflict, nothing acknowledged by the winner is lost', async () => {
    const s3 = inject('s3');
    const prefix = `race-${randomBytes(4).toString('hex')}`;
    const root = await tempDir();
    const a = await start(['--data-dir', join(root, 'a')], s3Env(s3, prefix));
    const ca = new StorageClient(a.url, a.token);
    const { timelineId } = await ca.createTimeline();
    await ca.writeBatch(timelineId, { ops: [{ op: 'create', path: 'f' }, { op: 'write', path: 'f', offset: 0, data: Buffer.from('base') }] });
    await ca.checkpoint(timelineId);
    const b = await start(['--data-dir', join(root, 'b')], s3Env(s3, prefix));
    const cb = new StorageClient(b.url, b.token);
    expect((await cb.getTimeline(timelineId)).lastLsn).toBe(1);
    await ca.writeBatch(timelineId, { ops: [{ op: 'write', path: 'f', offset: 0, data: Buffer.from('from-a') }] });
    await cb.writeBatch(timelineId, { ops: [{ op: 'write', path: 'f', offset: 0, data: Buffer.from('from-b') }] });
    const results = await Promise.allSettled([ca.checkpoint(timelineId), cb.checkpoint(timelineId)]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0].reason).toBeInstanceOf(StorageNodeError);
    expect((lost[0].reason as StorageNodeError).status).toBe(409);
    expect((lost[0].reason as StorageNodeError).message).toMatch(/changed in the object store by another storage node/);
    const winner = results[0].status === 'fulfilled' ? 'from-a' : 'from-b';
    const loserClient = results[0].status === 'fulfilled' ? cb : ca;
    // The loser refuses further writes to the timeline instead of forking it.
    await expect(loserClient.writeBatch(timelineId, { ops: [] })).rejects.toThrow(/another storage node/);
    const third = await start(['--data-dir', join(root, 'c')], s3Env(s3, prefix));
    const page = await new StorageClient(third.url, third.token).readPage(timelineId, 'f', 0);
    expect(page.subarray(0, 6).toString()).toBe(winner);
    expect((await new StorageClient(third.url, third.token).readPage(timelineId, 'f', 0, 1)).subarray(0, 4).toString()).toBe('base');
  });

  it('object-store mode: a second writer of the same LSN is refused, so no acknowledged batch can be overwritten', async () => {
    const s3 = inject('s3');
    const prefix = `fence-${randomBytes(4).toString('hex')}`;
    const root = await tempDir();
    const a = await start(['--data-dir', join(root, 'a'), '--durability', 'object-store'], s3Env(s3, prefix));
    const ca = new StorageClient(a.url, a.token);
    const { timelineId } = await ca.createTimeline();
    await ca.writeBatch(timelineId, { ops: [{ op: 'create', path: 'f' }] });
    const b = await start(['--data-dir', join(root, 'b'), '--durability', 'object-store'], s3Env(s3, prefix));
    const cb = new StorageClient(b.url, b.token);
    expect((await cb.getTimeline(timelineId)).lastLsn).toBe(1);
    const ackA = await ca.writeBatch(timelineId, { ops: [{ op: 'write', path: 'f', offset: 0, data: Buffer.from('a-wins') }] });
    expect(ackA.lsn).toBe(2);
    await expect(cb.writeBatch(timelineId, { ops: [{ op: 'write', path: 'f', offset: 0, data: Buffer.from('b-lost') }] })).rejects.toThrow(/already wrote LSN 2/);
    const third = await start(['--data-dir', join(root, 'c'), '--durability', 'object-store'], s3Env(s3, prefix));
    expect((await new StorageClient(third.url, third.token).readPage(timelineId, 'f', 0)).subarray(0, 6).toString()).toBe('a-wins');
  });
});
