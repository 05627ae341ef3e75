// Writer generations (issue 15's fencing): a read-write compute start takes the timeline (POST /writer), every batch
// carries the generation it got, and a compute taken over by a newer one can never write again, even before the new
// one writes. A real storage node process (restarted, kill -9'd), a real compute host with PGlite and PostgreSQL 15
// computes, read back through fresh computes.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { StorageClient, StorageNodeError } from '../storage-node/client.ts';
import { decodeBatch, encodeBatch } from '../storage-node/api/batch-codec.ts';
import type { WriteBatch } from '../storage-node/api/types.ts';
import { createLogger } from '../lib/logger.ts';
import { createTemplateTimeline } from '../compute/template.ts';
import { startComputeHost } from '../compute/host/server.ts';
import type { RunningHost } from '../compute/host/server.ts';
import { DEFAULT_HOST_OPTIONS } from '../compute/host/host.ts';
import type { ComputeInfo, StartAnswer } from '../compute/host/api-types.ts';
import { checkPostgresEngine } from '../compute/postgres/environment.ts';
import { HostApi, connectPg } from './support/compute-host.ts';
import { adminClient } from './support/postgres-engine.ts';
import { startStorageProcess } from './support/storage-process.ts';
import type { StorageProcess } from './support/storage-process.ts';

const TOKEN = 'internal-token-for-writer-fencing';
const procs: StorageProcess[] = [];
const clients: StorageClient[] = [];
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'lakebase-fencing-'));
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const p of procs) await p.kill9();
  if (root) await rm(root, { recursive: true, force: true });
});

/** A storage node process on `dir` (its data directory and object store under it). */
async function storageNode(dir: string, durability: 'local' | 'object-store' = 'local'): Promise<{ node: StorageProcess; client: StorageClient }> {
  const node = await startStorageProcess(['--data-dir', join(dir, 'data'), '--durability', durability], { LAKEBASE_OBJECT_STORE_DIR: join(dir, 'objects') });
  procs.push(node);
  const client = new StorageClient(node.url, node.token);
  clients.push(client);
  return { node, client };
}

async function refusal(p: Promise<unknown>): Promise<StorageNodeError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(StorageNodeError);
  return e as StorageNodeError;
}

const write = (text: string, writerGeneration?: number, expectedLsn?: number): WriteBatch => ({
  ...(writerGeneration === undefined ? {} : { writerGeneration }),
  ...(expectedLsn === undefined ? {} : { expectedLsn }),
  // padded: a shorter text overwrites all of a longer one
  ops: [{ op: 'write', path: 'f', offset: 0, data: Buffer.concat([Buffer.from(text), Buffer.alloc(16)]) }],
});

async function content(client: StorageClient, tl: string): Promise<string> {
  const page = await client.readPage(tl, 'f', 0);
  return page.subarray(0, page.indexOf(0)).toString();
}

describe('the batch codec', () => {
  it('carries writerGeneration, and still decodes batches without it', () => {
    const batch: WriteBatch = { expectedLsn: 4, writerGeneration: 7, ops: [{ op: 'mkdir', path: 'd' }] };
    expect(decodeBatch(encodeBatch(batch))).toEqual(batch);
    expect(decodeBatch(encodeBatch({ ops: [{ op: 'mkdir', path: 'd' }] }))).toEqual({ ops: [{ op: 'mkdir', path: 'd' }] });
    const header = Buffer.from('{"ops":[],"writerGeneration":-1}');
    const buf = Buffer.concat([Buffer.from('LKB1'), Buffer.from([0, 0, 0, header.length]), header]);
    expect(() => decodeBatch(buf)).toThrow(/writerGeneration must be a non-negative integer/);
  });
});

describe('writer generations on the storage node (HTTP, a real process)', () => {
  it('POST /writer bumps the generation; older ones, none and unknown ones are refused with nothing applied', async () => {
    const { node, client } = await storageNode(join(root, 'http'));
    const tl = (await client.createTimeline()).timelineId;
    // before any takeover a batch without a generation is a writer's (templates, tools, old computes)
    await client.writeBatch(tl, { ops: [{ op: 'create', path: 'f' }, ...write('zero').ops] });

    // the HTTP contract: {} or no body -> 200 {generation, timeline}
    const post = (id: string, body?: string) => fetch(`${node.url}/v1/timelines/${id}/writer`, {
      method: 'POST', headers: { authorization: `Bearer ${node.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body,
    });
    const first = await post(tl);
    expect(first.status).toBe(200);
    const a1 = (await first.json()) as { generation: number; timeline: { timelineId: string; lastLsn: number } };
    expect(a1).toMatchObject({ generation: 1, timeline: { timelineId: tl, lastLsn: 1 } });
    const a2 = await client.acquireWriter(tl);
    expect(a2.generation).toBe(2);
    expect(a2.timeline.lastLsn).toBe(1);
    expect((await post(tl, '{"x": 1}')).status).toBe(400);
    const missing = await post('f'.repeat(32));
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('timeline_not_found');

    const old = await refusal(client.writeBatch(tl, write('one', 1, 1)));
    expect({ status: old.status, code: old.code }).toEqual({ status: 409, code: 'writer_fenced' });
    expect(old.message).toMatch(`timeline ${tl} was taken over by a newer compute (writer generation 2; this batch's is 1): this compute may no longer write to it`);
    const none = await refusal(client.writeBatch(tl, write('none')));
    expect({ status: none.status, code: none.code }).toEqual({ status: 409, code: 'writer_fenced' });
    expect(none.message).toMatch(/writer generation 2; this batch has none/);
    const unknown = await refusal(client.writeBatch(tl, write('three', 3, 1)));
    expect({ status: unknown.status, code: unknown.code }).toEqual({ status: 409, code: 'writer_fenced' });
    expect(unknown.message).toMatch(/unknown generation/);
    // nothing of the refused batches was applied
    expect((await client.getTimeline(tl)).lastLsn).toBe(1);
    expect(await content(client, tl)).toBe('zero');

    expect((await client.writeBatch(tl, write('two', 2, 1))).lsn).toBe(2);
    expect(await content(client, tl)).toBe('two');

    // a deleted timeline is gone for the takeover too
    const gone = (await client.createTimeline()).timelineId;
    await client.deleteTimeline(gone);
    expect((await refusal(client.acquireWriter(gone))).status).toBe(404);
  });

  it.each(['local', 'object-store'] as const)('the generation survives a restart and a kill -9 (%s durability)', async (durability) => {
    const dir = join(root, `restart-${durability}`);
    let { node, client } = await storageNode(dir, durability);
    const tl = (await client.createTimeline()).timelineId;
    await client.writeBatch(tl, { ops: [{ op: 'create', path: 'f' }, ...write('zero').ops] });
    await client.acquireWriter(tl);
    expect((await client.acquireWriter(tl)).generation).toBe(2);

    const stillTwo = async (lsn: number): Promise<number> => {
      expect((await refusal(client.writeBatch(tl, write('old', 1, lsn)))).code).toBe('writer_fenced');
      expect((await refusal(client.writeBatch(tl, write('none')))).code).toBe('writer_fenced');
      expect((await refusal(client.writeBatch(tl, write('ahead', 3, lsn)))).message).toMatch(/unknown generation/);
      expect((await client.getTimeline(tl)).lastLsn).toBe(lsn);
      return (await client.writeBatch(tl, write(`gen2-${lsn}`, 2, lsn))).lsn;
    };
    let lsn = await stillTwo(1);

    await node.stop(); // graceful
    ({ node, client } = await storageNode(dir, durability));
    lsn = await stillTwo(lsn);

    await node.kill9(); // right after the acknowledgements: nothing was flushed on the way out
    ({ node, client } = await storageNode(dir, durability));
    lsn = await stillTwo(lsn);
    expect(await content(client, tl)).toBe(`gen2-${lsn - 1}`);

    // a takeover right before a kill -9 is durable: it was in the manifest before the answer
    expect((await client.acquireWriter(tl)).generation).toBe(3);
    await node.kill9();
    ({ node, client } = await storageNode(dir, durability));
    expect((await refusal(client.writeBatch(tl, write('two', 2, lsn)))).code).toBe('writer_fenced');
    expect((await client.writeBatch(tl, write('three', 3, lsn))).lsn).toBe(lsn + 1);
    await node.stop();
  });
});

describe('a compute taken over by a newer one (real compute host)', () => {
  let storage: { node: StorageProcess; client: StorageClient };
  let running: RunningHost;
  let api: HostApi;
  const sessions: pg.Client[] = [];

  beforeAll(async () => {
    storage = await storageNode(join(root, 'computes'));
    running = await startComputeHost({
      ...DEFAULT_HOST_OPTIONS, limits: { ...DEFAULT_HOST_OPTIONS.limits }, storageUrl: storage.node.url, storageToken: storage.node.token,
      token: TOKEN, advertiseHost: '127.0.0.1', poolSize: 1, log: createLogger('compute-host', 'warn'),
    });
    api = new HostApi(running.url);
  });

  afterAll(async () => {
    for (const s of sessions) await s.end().catch(() => undefined);
    await running?.close();
  });

  const info = (computeId: string) => api.request<ComputeInfo>('GET', `/v1/computes/${computeId}`);
  const track = (c: pg.Client): pg.Client => {
    c.on('error', () => undefined);
    sessions.push(c);
    return c;
  };

  it('PGlite: the old compute fails its next statement, ends failed, and the timeline never holds its row', async () => {
    const template = await createTemplateTimeline({ storageUrl: storage.node.url, storageToken: storage.node.token });
    const tl = (await storage.client.createTimeline({ ancestorTimelineId: template.timelineId })).timelineId;
    const a = await api.start({ computeId: 'ep-fence-a', timelineId: tl });
    const sa = track(await connectPg(a, TOKEN));
    await sa.query('CREATE TABLE t (id int)');
    await sa.query('INSERT INTO t VALUES (1)');

    // what a second host's start does: take the timeline
    const taken = await storage.client.acquireWriter(tl);
    expect(taken.generation).toBeGreaterThanOrEqual(2);
    const err = await sa.query('INSERT INTO t VALUES (2)').then(() => null, (e: Error) => e);
    expect(err).not.toBeNull();
    await expect.poll(async () => (await info('ep-fence-a')).state).toBe('failed');
    expect((await info('ep-fence-a')).failure).toMatch(/fenced by a newer compute/);
    expect((await storage.client.getTimeline(tl)).lastLsn).toBe(taken.timeline.lastLsn);

    await api.stop('ep-fence-a');
    const b = await api.start({ computeId: 'ep-fence-b', timelineId: tl });
    const sb = track(await connectPg(b, TOKEN));
    expect((await sb.query<{ id: number }>('SELECT id FROM t ORDER BY id')).rows).toEqual([{ id: 1 }]);
    await sb.query('INSERT INTO t VALUES (3)'); // the new writer writes
    expect((await sb.query<{ id: number }>('SELECT id FROM t ORDER BY id')).rows).toEqual([{ id: 1 }, { id: 3 }]);
    await api.stop('ep-fence-b');
  });

  it('postgres engine: the old compute\'s commit fails, it ends failed, and the timeline never holds its row', async (ctx) => {
    const why = await checkPostgresEngine().then(() => null, (e: Error) => e.message);
    if (why) ctx.skip(`the postgres engine cannot run here: ${why}`);
    const template = await running.host.createTemplate('postgres');
    const tl = (await storage.client.createTimeline({ ancestorTimelineId: template.timelineId })).timelineId;
    const start = (computeId: string) => api.request<StartAnswer>('POST', '/v1/computes', { computeId, timelineId: tl, engine: 'postgres', database: 'postgres' });
    await start('ep-pg-a');
    const sa = track(await adminClient((await info('ep-pg-a')).postmasterPid!));
    await sa.query('CREATE TABLE t (id int)');
    await sa.query('INSERT INTO t VALUES (1)');

    const taken = await storage.client.acquireWriter(tl);
    const err = await sa.query('INSERT INTO t VALUES (2)').then(() => null, (e: Error) => e);
    expect(err).not.toBeNull();
    await expect.poll(async () => (await info('ep-pg-a')).state, { timeout: 20_000 }).toBe('failed');
    expect((await info('ep-pg-a')).failure).toMatch(/fenced by a newer compute/);
    expect((await storage.client.getTimeline(tl)).lastLsn).toBe(taken.timeline.lastLsn);

    await api.stop('ep-pg-a');
    await start('ep-pg-b');
    const sb = track(await adminClient((await info('ep-pg-b')).postmasterPid!));
    expect((await sb.query<{ id: number }>('SELECT id FROM t ORDER BY id')).rows).toEqual([{ id: 1 }]);
    await sb.query('INSERT INTO t VALUES (3)');
    await api.stop('ep-pg-b');
  }, 180_000);
});
