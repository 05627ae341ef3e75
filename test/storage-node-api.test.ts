// The storage node's HTTP API against both object-store backends (a local folder, and a real S3-compatible
// server: Miniflare's R2), plus bad input over the wire.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { StorageClient, StorageNodeError } from '../storage-node/client.ts';
import { startStorageNode } from '../storage-node/server.ts';
import type { StorageNode } from '../storage-node/server.ts';
import { LocalFolderStore } from '../storage-node/object-store/local-folder.ts';
import { S3Store } from '../storage-node/object-store/s3.ts';
import type { ObjectStore } from '../storage-node/object-store/object-store.ts';
import { encodeBatch } from '../storage-node/api/batch-codec.ts';
import { createLogger } from '../lib/logger.ts';
import { FsModel, randomOps, rng } from './support/fs-model.ts';
import { expectTimelineEquals } from './support/storage-verify.ts';

const dirs: string[] = [];
const nodes: StorageNode[] = [];
afterAll(async () => {
  for (const n of nodes) await n.close().catch(() => {});
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

type Backend = 'local-folder' | 's3';

async function makeStore(kind: Backend, root: string): Promise<ObjectStore> {
  if (kind === 'local-folder') return new LocalFolderStore(join(root, 'objects'));
  const s3 = inject('s3');
  return new S3Store({ ...s3, forcePathStyle: true, prefix: `api-${randomBytes(4).toString('hex')}` });
}

async function startNode(store: ObjectStore, root: string, dataDir: string, extra: Partial<Parameters<typeof startStorageNode>[0]> = {}): Promise<StorageNode> {
  const node = await startStorageNode({ dataDir: join(root, dataDir), objectStore: store, logger: createLogger('storage-node', 'warn'), backgroundIntervalMs: 0, ...extra });
  nodes.push(node);
  return node;
}

describe.each(['local-folder', 's3'] as Backend[])('storage node over %s', (backend) => {
  it('writes, branches, and reads at LSNs and timestamps; a new node on the same store reads the same', async () => {
    const root = await mkdtemp(join(tmpdir(), 'lakebase-api-'));
    dirs.push(root);
    const store = await makeStore(backend, root);
    const node = await startNode(store, root, 'data-1');
    const client = new StorageClient(node.url);
    const { timelineId: main } = await client.createTimeline();
    const rand = rng(11);
    let model = new FsModel();
    model.apply({ op: 'mkdir', path: 'd' });
    const snaps = new Map<number, FsModel>([[(await client.writeBatch(main, { ops: [{ op: 'mkdir', path: 'd' }] })).lsn, model]]);
    const times = new Map<number, string>();
    for (let i = 0; i < 20; i++) {
      const ops = randomOps(model, rand, 3, `m${i}`);
      model = model.clone();
      for (const op of ops) model.apply(op);
      const ack = await client.writeBatch(main, { ops });
      snaps.set(ack.lsn, model);
      times.set(ack.lsn, ack.time);
      if (i === 9) await client.checkpoint(main); // half in a layer, half in memory
    }
    // A branch at LSN 8 and one at the commit time of LSN 15.
    const atLsn = await client.createTimeline({ ancestorTimelineId: main, ancestorLsn: 8 });
    const atTime = await client.createTimeline({ ancestorTimelineId: main, ancestorTimestamp: times.get(15)! });
    expect(atTime.ancestorLsn).toBe(15);
    expect((await client.lsnAt(main, times.get(15)!)).lsn).toBe(15);
    expect((await client.timeOf(main, 15)).time).toBe(times.get(15));
    await expectTimelineEquals(client, atLsn.timelineId, 8, snaps.get(8)!, 'branch at LSN 8');
    await expectTimelineEquals(client, atTime.timelineId, 15, snaps.get(15)!, 'branch at time of LSN 15');
    const brOps = randomOps(snaps.get(8)!, rand, 4, 'br');
    await client.writeBatch(atLsn.timelineId, { ops: brOps });
    for (const lsn of [1, 5, 8, 12, 21]) await expectTimelineEquals(client, main, lsn, snaps.get(lsn)!, `main at ${lsn}`);
    await node.close();
    // Another node on the same store, with an empty local disk.
    const store2 = backend === 'local-folder' ? new LocalFolderStore(join(root, 'objects')) : new S3Store({ ...inject('s3'), forcePathStyle: true, prefix: (store as S3Store).prefix });
    const node2 = await startNode(store2, root, 'data-2');
    const c2 = new StorageClient(node2.url);
    for (const lsn of [1, 8, 15, 21]) await expectTimelineEquals(c2, main, lsn, snaps.get(lsn)!, `main at ${lsn} on a second node`);
    const branched = snaps.get(8)!.clone();
    for (const op of brOps) branched.apply(op);
    await expectTimelineEquals(c2, atLsn.timelineId, 9, branched, 'branch after its own write, on a second node');
    expect((await c2.listTimelines()).map((t) => t.timelineId).sort()).toEqual([main, atLsn.timelineId, atTime.timelineId].sort());
  });
});

describe('bad input over HTTP changes nothing', () => {
  it('answers malformed, oversize, unknown and out-of-range requests with clear 4xx errors', async () => {
    const root = await mkdtemp(join(tmpdir(), 'lakebase-api-bad-'));
    dirs.push(root);
    const node = await startNode(new LocalFolderStore(join(root, 'objects')), root, 'data', { maxBatchBytes: 64 * 1024 });
    const client = new StorageClient(node.url);
    const { timelineId: tl } = await client.createTimeline();
    await client.writeBatch(tl, { ops: [{ op: 'create', path: 'f' }, { op: 'write', path: 'f', offset: 0, data: Buffer.from('keep') }] });
    const post = (path: string, body: Uint8Array | string, type = 'application/octet-stream') =>
      fetch(`${node.url}${path}`, { method: 'POST', body, headers: { 'content-type': type } });
    const expectError = async (res: Response, status: number, code: string, msg: RegExp) => {
      expect(res.status).toBe(status);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe(code);
      expect(body.error.message).toMatch(msg);
    };
    await expectError(await post(`/v1/timelines/${tl}/batches`, randomBytes(300)), 400, 'malformed_batch', /bad magic/);
    const unknownOp = Buffer.concat([Buffer.from('LKB1'), Buffer.from([0, 0, 0, 38]), Buffer.from('{"ops":[{"op":"chmod","path":"f"}]}   ')]);
    await expectError(await post(`/v1/timelines/${tl}/batches`, unknownOp), 400, 'malformed_batch', /unknown operation/);
    await expectError(await post(`/v1/timelines/${tl}/batches`, encodeBatch({ ops: [{ op: 'create', path: '../etc/passwd' }] })), 400, 'malformed_batch', /leave the data directory/);
    await expectError(await post(`/v1/timelines/${tl}/batches`, encodeBatch({ ops: [{ op: 'create', path: '/abs' }] })), 400, 'malformed_batch', /absolute/);
    await expectError(await post(`/v1/timelines/${tl}/batches`, encodeBatch({ ops: [{ op: 'write', path: 'f', offset: 0, data: Buffer.alloc(100 * 1024) }] })), 413, 'batch_too_large', /larger than the limit/);
    await expectError(await post(`/v1/timelines/${'0'.repeat(32)}/batches`, encodeBatch({ ops: [] })), 404, 'timeline_not_found', /not found/);
    await expectError(await post(`/v1/timelines/not-an-id/batches`, encodeBatch({ ops: [] })), 400, 'invalid_timeline_id', /32 lowercase hex/);
    await expectError(await fetch(`${node.url}/v1/timelines/${tl}/page?path=f&page=0&lsn=999`), 400, 'lsn_out_of_range', /ahead of/);
    await expectError(await fetch(`${node.url}/v1/timelines/${tl}/page?path=f&page=-1`), 400, 'invalid_page', /non-negative/);
    await expectError(await fetch(`${node.url}/v1/timelines/${tl}/page?path=nope&page=0`), 404, 'no_such_file', /does not exist/);
    await expectError(await fetch(`${node.url}/v1/timelines/${tl}/page?path=..%2F..%2Fx&page=0`), 400, 'invalid_path', /leave the data directory/);
    await expectError(await post('/v1/timelines', '{"ancestorTimelineId":', 'application/json'), 400, 'malformed_json', /not valid JSON/);
    await expectError(await post('/v1/timelines', '{"ancestor":"x"}', 'application/json'), 400, 'invalid_request', /unknown field/);
    await expectError(await post('/v1/timelines', JSON.stringify({ ancestorTimelineId: tl, ancestorLsn: 50 }), 'application/json'), 400, 'lsn_out_of_range', /ahead of/);
    await expectError(await post(`/v1/timelines/${tl}/pages`, '{"pages":[{"path":"f","page":"zero"}]}', 'application/json'), 400, 'invalid_page', /non-negative/);
    await expectError(await fetch(`${node.url}/v1/nothing`), 404, 'not_found', /no route/);
    // Nothing changed.
    const info = await client.getTimeline(tl);
    expect(info.lastLsn).toBe(1);
    expect(info.children).toEqual([]);
    expect((await client.listTimelines()).length).toBe(1);
    expect((await client.readPage(tl, 'f', 0)).subarray(0, 4).toString()).toBe('keep');
    expect((await client.listFiles(tl)).files).toEqual([{ path: 'f', type: 'file', size: 4 }]);
    await expect(client.deleteTimeline('f'.repeat(32))).rejects.toBeInstanceOf(StorageNodeError);
  });
});
