// A compute host whose computes use the storage node the start names (issue 15: several storage nodes over one
// bucket, each project's timelines served by one of them). Two real storage node processes over ONE local-folder
// bucket (object-store durability, so either reads what the other wrote), a real compute host whose --storage-url
// is node A, computes started on timelines of node B: their reads, writes and start check go to B, never to A.
// Templates end checkpointed (their data in layers in the bucket), which is how node B, started after them, reads
// them.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { StorageClient } from '../storage-node/client.ts';
import { LocalFolderStore } from '../storage-node/object-store/local-folder.ts';
import { keys } from '../storage-node/engine/manifest.ts';
import { createLogger } from '../lib/logger.ts';
import { createTemplateTimeline } from '../compute/template.ts';
import type { TemplateResult } from '../compute/template.ts';
import { startComputeHost } from '../compute/host/server.ts';
import type { RunningHost } from '../compute/host/server.ts';
import { DEFAULT_HOST_OPTIONS } from '../compute/host/host.ts';
import type { ComputeInfo, StartAnswer, TemplateAnswer } from '../compute/host/api-types.ts';
import { checkPostgresEngine } from '../compute/postgres/environment.ts';
import { HostApi, HostApiError, connectPg } from './support/compute-host.ts';
import { adminClient } from './support/postgres-engine.ts';
import { startStorageProcess } from './support/storage-process.ts';
import type { StorageProcess } from './support/storage-process.ts';

const TOKEN = 'internal-token-for-storage-url';
/** One storage token for every node of the deployment (the host has one --storage-token). */
const STORAGE_TOKEN = randomBytes(16).toString('hex');
let root: string;
let bucket: string;
const procs: StorageProcess[] = [];
const clients: StorageClient[] = [];
const sessions: pg.Client[] = [];
let a: { node: StorageProcess; client: StorageClient };
let b: { node: StorageProcess; client: StorageClient };
let running: RunningHost;
let api: HostApi;
let template: TemplateResult;
/** The postgres engine's template, or why this machine cannot run the engine. */
let pgTemplate: TemplateAnswer | string;

async function storageNode(name: string): Promise<{ node: StorageProcess; client: StorageClient }> {
  const node = await startStorageProcess(['--data-dir', join(root, name), '--durability', 'object-store'], {
    LAKEBASE_OBJECT_STORE_DIR: bucket, LAKEBASE_STORAGE_TOKEN: STORAGE_TOKEN,
  });
  procs.push(node);
  const client = new StorageClient(node.url, STORAGE_TOKEN);
  clients.push(client);
  return { node, client };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'lakebase-storage-url-'));
  bucket = join(root, 'bucket');
  a = await storageNode('node-a');
  running = await startComputeHost({
    ...DEFAULT_HOST_OPTIONS, limits: { ...DEFAULT_HOST_OPTIONS.limits }, storageUrl: a.node.url, storageToken: STORAGE_TOKEN,
    token: TOKEN, advertiseHost: '127.0.0.1', poolSize: 1, log: createLogger('compute-host', 'warn'),
  });
  api = new HostApi(running.url);
  // both templates are made through node A (the host's own), before node B starts: B knows them from the bucket
  template = await createTemplateTimeline({ storageUrl: a.node.url, storageToken: STORAGE_TOKEN });
  pgTemplate = await checkPostgresEngine().then(() => running.host.createTemplate('postgres'), (e: Error) => e.message);
  b = await storageNode('node-b');
}, 180_000);

afterAll(async () => {
  for (const s of sessions) await s.end().catch(() => undefined);
  await running?.close();
  for (const c of clients) c.close();
  for (const p of procs) await p.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

const info = (computeId: string) => api.request<ComputeInfo>('GET', `/v1/computes/${computeId}`);
const start = (body: Record<string, unknown>) => api.request<StartAnswer>('POST', '/v1/computes', body);
const track = (c: pg.Client): pg.Client => {
  c.on('error', () => undefined);
  sessions.push(c);
  return c;
};

/** Write batches node A acknowledged so far (its /metrics). */
async function batchesOf(node: StorageProcess): Promise<number> {
  const res = await fetch(`${node.url}/metrics`, { headers: { authorization: `Bearer ${STORAGE_TOKEN}` } });
  const line = (await res.text()).split('\n').find((l) => l.startsWith('storage_batches_total'));
  return Number(line?.split(' ')[1] ?? 0);
}

/** The manifest the bucket holds for a timeline: what every node reads. */
async function manifestOf(timelineId: string): Promise<{ uploadedLsn: number; layers: unknown[] }> {
  const got = await new LocalFolderStore(bucket).get(keys.manifest(timelineId));
  return JSON.parse(got!.body.toString('utf8')) as { uploadedLsn: number; layers: unknown[] };
}

/** Node A never heard of the timeline and acknowledged no batch since `before`. */
async function expectUntouchedByA(timelineId: string, before: number): Promise<void> {
  expect(await batchesOf(a.node)).toBe(before);
  expect((await a.client.listTimelines()).map((t) => t.timelineId)).not.toContain(timelineId);
}

describe('templates', () => {
  it('end checkpointed: their data is in layers in the bucket, up to their LSN (both engines)', async () => {
    const m = await manifestOf(template.timelineId);
    expect(m.uploadedLsn).toBe(template.lsn);
    expect(m.layers.length).toBeGreaterThan(0);
    if (typeof pgTemplate === 'string') return;
    const pm = await manifestOf(pgTemplate.timelineId);
    expect(pm.uploadedLsn).toBe(pgTemplate.lsn);
    expect(pm.layers.length).toBeGreaterThan(0);
  });
});

describe('a start naming its storage node', () => {
  it('PGlite: the compute reads and writes through node B; node A sees nothing of it', async () => {
    const tl = (await b.client.createTimeline({ ancestorTimelineId: template.timelineId })).timelineId;
    const headBefore = (await b.client.getTimeline(tl)).lastLsn;
    const aBatches = await batchesOf(a.node);
    // a trailing slash names the same node
    const c = await start({ computeId: 'ep-on-b', timelineId: tl, storageUrl: `${b.node.url}/` });
    expect((await info('ep-on-b')).storageUrl).toBe(b.node.url);
    const s = track(await connectPg(c, TOKEN));
    await s.query('CREATE TABLE t (id int)');
    await s.query('INSERT INTO t SELECT generate_series(1, 100)');
    const head = (await b.client.getTimeline(tl)).lastLsn;
    expect(head).toBeGreaterThan(headBefore);
    expect((await info('ep-on-b')).lsn).toBe(head);
    await api.stop('ep-on-b');
    await expectUntouchedByA(tl, aBatches);

    // a read-only compute at the head, on node B too, reads the rows
    const r = await start({ computeId: 'ep-on-b-ro', timelineId: tl, readOnly: true, lsn: (await b.client.getTimeline(tl)).lastLsn, storageUrl: b.node.url });
    const rs = track(await connectPg(r, TOKEN));
    expect((await rs.query<{ n: string }>('SELECT count(*) AS n FROM t')).rows).toEqual([{ n: '100' }]);
    await api.stop('ep-on-b-ro');
    await expectUntouchedByA(tl, aBatches);
  });

  it('without storageUrl: the host\'s own node, as before', async () => {
    const tl = (await a.client.createTimeline({ ancestorTimelineId: template.timelineId })).timelineId;
    const c = await start({ computeId: 'ep-on-a', timelineId: tl });
    expect((await info('ep-on-a')).storageUrl).toBe(a.node.url);
    const s = track(await connectPg(c, TOKEN));
    await s.query('CREATE TABLE t (id int)');
    expect((await a.client.getTimeline(tl)).lastLsn).toBe((await info('ep-on-a')).lsn);
    await api.stop('ep-on-a');
  });

  it('a timeline the named node does not serve is 404 timeline_not_found, naming the node', async () => {
    const tl = (await a.client.createTimeline({ ancestorTimelineId: template.timelineId })).timelineId;
    // node B started before this timeline was made: it does not serve it (unless it adopts it from the bucket)
    const e = await start({ computeId: 'ep-wrong-node', timelineId: tl, storageUrl: b.node.url }).then(() => null, (err: unknown) => err);
    if (e === null) {
      await api.stop('ep-wrong-node'); // node B adopted it: a storage node that can
      return;
    }
    expect(e).toBeInstanceOf(HostApiError);
    expect({ status: (e as HostApiError).status, code: (e as HostApiError).code }).toEqual({ status: 404, code: 'timeline_not_found' });
    expect((e as HostApiError).message).toContain(b.node.url);
    expect((await api.list()).map((x) => x.computeId)).not.toContain('ep-wrong-node');
  });

  it('a storageUrl that is not an http(s) URL is 400 invalid_request naming the field; nothing starts', async () => {
    const tl = (await b.client.createTimeline({ ancestorTimelineId: template.timelineId })).timelineId;
    for (const storageUrl of ['not a url', 'ftp://127.0.0.1:1', 'http://user:pw@127.0.0.1:1', 42, '']) {
      const e = await start({ computeId: 'ep-bad-url', timelineId: tl, storageUrl }).then(() => null, (err: unknown) => err);
      expect(e).toBeInstanceOf(HostApiError);
      expect({ status: (e as HostApiError).status, code: (e as HostApiError).code }).toEqual({ status: 400, code: 'invalid_request' });
      expect((e as HostApiError).message).toMatch(/storageUrl/);
    }
    expect((await api.list()).map((x) => x.computeId)).not.toContain('ep-bad-url');
    expect((await b.client.getTimeline(tl)).lastLsn).toBe((await b.client.getTimeline(tl)).ancestorLsn);
  });

  it('postgres engine: the FUSE server reads and ships through node B; node A sees nothing of it', async (ctx) => {
    if (typeof pgTemplate === 'string') ctx.skip(`the postgres engine cannot run here: ${pgTemplate}`);
    const tl = (await b.client.createTimeline({ ancestorTimelineId: (pgTemplate as TemplateAnswer).timelineId })).timelineId;
    const headBefore = (await b.client.getTimeline(tl)).lastLsn;
    const aBatches = await batchesOf(a.node);
    await start({ computeId: 'ep-pg-on-b', timelineId: tl, engine: 'postgres', database: 'postgres', storageUrl: b.node.url });
    const i = await info('ep-pg-on-b');
    expect(i.storageUrl).toBe(b.node.url);
    const s = track(await adminClient(i.postmasterPid!));
    await s.query('CREATE TABLE t (id int)');
    await s.query('INSERT INTO t SELECT generate_series(1, 100)');
    expect((await b.client.getTimeline(tl)).lastLsn).toBeGreaterThan(headBefore);
    await api.stop('ep-pg-on-b');
    await expectUntouchedByA(tl, aBatches);

    // started again on node B, it finds its rows
    await start({ computeId: 'ep-pg-on-b-2', timelineId: tl, engine: 'postgres', database: 'postgres', storageUrl: b.node.url });
    const s2 = track(await adminClient((await info('ep-pg-on-b-2')).postmasterPid!));
    expect((await s2.query<{ n: string }>('SELECT count(*) AS n FROM t')).rows).toEqual([{ n: '100' }]);
    await api.stop('ep-pg-on-b-2');
    await expectUntouchedByA(tl, aBatches);
  }, 180_000);
});
