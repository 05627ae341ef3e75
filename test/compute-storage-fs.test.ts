// PGlite on the storage node: real PGlite in worker threads, a real storage node (in-process), no mocks. The
// template timeline (initdb once, imported) is made once for the file; every test works on branches of it.
import { startTestStorageNode } from './support/storage-node-in-process.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageNode } from '../storage-node/server.ts';
import { StorageClient } from '../storage-node/client.ts';
import { createTemplateTimeline } from '../compute/template.ts';
import type { TemplateResult } from '../compute/template.ts';
import { startCompute } from '../compute/compute.ts';
import type { Compute, ComputeOptions } from '../compute/compute.ts';
import { HINT_PATH } from '../compute/storage-fs/prefetch.ts';

let root: string;
let node: StorageNode;
let client: StorageClient;
let template: TemplateResult;
const computes: Compute[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'lakebase-compute-'));
  node = await startTestStorageNode(root);
  client = new StorageClient(node.url, node.token);
  template = await createTemplateTimeline({ storageUrl: node.url, storageToken: node.token });
});

afterAll(async () => {
  for (const c of computes) await c.kill().catch(() => {});
  await node?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function start(opts: Omit<ComputeOptions, 'storageUrl'>): Promise<Compute> {
  const c = await startCompute({ storageUrl: node.url, storageToken: node.token, ...opts });
  computes.push(c);
  return c;
}

async function branch(ancestorTimelineId: string = template.timelineId, ancestorLsn?: number): Promise<string> {
  return (await client.createTimeline({ ancestorTimelineId, ancestorLsn })).timelineId;
}

async function ids(c: Compute, table = 't'): Promise<number[]> {
  const r = await c.query<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`);
  return r.rows.map((row) => row.id);
}

describe('template timeline', () => {
  it('holds an initialised data directory with the neondb database and a prefetch hint', async () => {
    const { files } = await client.listFiles(template.timelineId);
    const paths = new Set(files.map((f) => f.path));
    expect(paths.has('PG_VERSION')).toBe(true);
    expect(paths.has('global/pg_control')).toBe(true);
    expect(paths.has(HINT_PATH)).toBe(true);
    expect(template.hintPages).toBeGreaterThan(50);
    // all-zero pages (most of the 16 MiB WAL segment) are not shipped
    expect(template.bytesShipped).toBeLessThan(template.bytes);
    const c = await start({ timelineId: await branch() });
    const r = await c.query<{ db: string; usr: string; v: string }>('SELECT current_database() AS db, current_user AS usr, version() AS v');
    expect(r.rows[0].db).toBe('neondb');
    expect(r.rows[0].usr).toBe('postgres');
    expect(r.rows[0].v).toMatch(/^PostgreSQL \d+/);
    await c.stop();
  });
});

describe('compute on a branch', () => {
  it('(a) keeps committed rows across a stop and a new start', async () => {
    const tl = await branch();
    const c1 = await start({ timelineId: tl });
    await c1.exec('CREATE TABLE t (id int PRIMARY KEY, note text)');
    await c1.query('INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 500) g');
    await c1.query('INSERT INTO t VALUES ($1, $2)', [501, 'last']);
    const lsnAfterInsert = c1.lsn;
    expect(lsnAfterInsert).toBeGreaterThan(template.lsn);
    await c1.stop();

    const c2 = await start({ timelineId: tl });
    const r = await c2.query<{ n: number; last: string }>("SELECT count(*)::int AS n, max(note) FILTER (WHERE id = 501) AS last FROM t");
    expect(r.rows[0]).toEqual({ n: 501, last: 'last' });
    await c2.query('UPDATE t SET note = $1 WHERE id = 1', ['changed']);
    await c2.stop();

    // the template is untouched by its branches
    const onTemplate = (await client.listFiles(template.timelineId)).files.length;
    const tplCompute = await start({ timelineId: template.timelineId, readOnly: true });
    await expect(tplCompute.query('SELECT count(*) FROM t')).rejects.toThrow(/relation "t" does not exist/);
    await tplCompute.stop();
    expect((await client.listFiles(template.timelineId)).files.length).toBe(onTemplate);
  });

  it('keeps every acknowledged commit when the compute dies without stopping (crash recovery)', async () => {
    const tl = await branch();
    const c1 = await start({ timelineId: tl });
    await c1.exec('CREATE TABLE t (id int)');
    for (let i = 1; i <= 20; i++) await c1.query('INSERT INTO t VALUES ($1)', [i]);
    await c1.exec('BEGIN; INSERT INTO t VALUES (1000);'); // open transaction: must not survive
    await c1.kill();

    const c2 = await start({ timelineId: tl });
    expect(await ids(c2)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await c2.query('INSERT INTO t VALUES (21)');
    await c2.stop();
  });

  it('(b) a branch at an LSN sees exactly its parent as of that LSN, and the two diverge', async () => {
    const parentTl = await branch();
    const parent = await start({ timelineId: parentTl });
    await parent.exec('CREATE TABLE t (id int)');
    await parent.query('INSERT INTO t SELECT generate_series(1, 3)');
    const branchLsn = parent.lsn;
    await parent.query('INSERT INTO t SELECT generate_series(4, 6)');
    await parent.query('DELETE FROM t WHERE id = 1');

    // branched while the parent keeps running: the child starts from a crash-consistent image
    const childTl = await branch(parentTl, branchLsn);
    const child = await start({ timelineId: childTl });
    expect(await ids(child)).toEqual([1, 2, 3]);
    await child.query('INSERT INTO t VALUES (100)');
    expect(await ids(child)).toEqual([1, 2, 3, 100]);
    expect(await ids(parent)).toEqual([2, 3, 4, 5, 6]);
    await parent.query('INSERT INTO t VALUES (7)');
    await child.stop();
    await parent.stop();

    const child2 = await start({ timelineId: childTl });
    expect(await ids(child2)).toEqual([1, 2, 3, 100]);
    await child2.stop();
  });

  it('(c) a read-only compute at an old LSN sees old rows while a read-write compute keeps writing', async () => {
    const tl = await branch();
    const rw = await start({ timelineId: tl });
    await rw.exec('CREATE TABLE t (id int)');
    await rw.query('INSERT INTO t VALUES (1), (2)');
    const oldLsn = rw.lsn;

    const ro = await start({ timelineId: tl, lsn: oldLsn, readOnly: true });
    expect(await ids(ro)).toEqual([1, 2]);
    for (let i = 3; i <= 6; i++) {
      await rw.query('INSERT INTO t VALUES ($1)', [i]);
      expect(await ids(ro)).toEqual([1, 2]);
    }
    expect(await ids(rw)).toEqual([1, 2, 3, 4, 5, 6]);
    await expect(ro.query('INSERT INTO t VALUES (99)')).rejects.toThrow(/read-only transaction/);
    const headBefore = (await client.getTimeline(tl)).lastLsn;
    expect(headBefore).toBe(rw.lsn);
    await ro.query('SELECT count(*) FROM t');
    await ro.stop();
    expect(ro.counters.batchesWritten).toBe(0);
    expect((await client.getTimeline(tl)).lastLsn).toBe(headBefore); // the read-only compute wrote nothing
    await rw.query('INSERT INTO t VALUES (7)');
    expect(await ids(rw)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    await rw.stop();

    // a read-write compute cannot start in the past
    await expect(start({ timelineId: tl, lsn: oldLsn })).rejects.toThrow(/read-only compute or branch/);
  });

  it('fences a compute whose timeline was written by a second writer', async () => {
    const tl = await branch();
    const first = await start({ timelineId: tl });
    await first.exec('CREATE TABLE t (id int)');
    const second = await start({ timelineId: tl }); // its start-up batch moves the head past `first`
    await expect(first.query('INSERT INTO t VALUES (1)')).rejects.toThrow(/fenced|another writer/);
    await expect(first.query('SELECT 1')).rejects.toThrow(/fenced/);
    await second.query('INSERT INTO t VALUES (2)');
    expect(await ids(second)).toEqual([2]);
    await first.kill();
    await second.stop();
  });

  it('ships a large statement in several batches and reads it back through a small cache', async () => {
    const tl = await branch();
    const c1 = await start({ timelineId: tl, cacheBytes: 1024 * 1024, maxUnshippedBytes: 8 * 1024 * 1024 });
    await c1.exec("CREATE TABLE big AS SELECT g AS id, repeat('x', 500) AS pad FROM generate_series(1, 40000) g");
    const r = await c1.query<{ n: number; s: string }>('SELECT count(*)::int AS n, sum(id)::text AS s FROM big');
    expect(r.rows[0]).toEqual({ n: 40000, s: String((40000 * 40001) / 2) });
    const written = c1.counters.bytesWritten;
    expect(written).toBeGreaterThan(20 * 1024 * 1024);
    // the start-up batch, then the CREATE TABLE AS in several batches (each time its unshipped pages passed 8 MiB)
    expect(c1.counters.batchesWritten).toBeGreaterThanOrEqual(4);
    await c1.stop();
    const c2 = await start({ timelineId: tl, cacheBytes: 1024 * 1024 });
    const r2 = await c2.query<{ n: number; s: string }>('SELECT count(*)::int AS n, sum(id)::text AS s FROM big');
    expect(r2.rows[0]).toEqual({ n: 40000, s: String((40000 * 40001) / 2) });
    const s = await c2.stats();
    expect(s.evictions).toBeGreaterThan(0);
    await c2.stop();
  });
});

describe('start cost', () => {
  it('(e) the hint holds what the first queries after a start read: the next start has it prefetched', async () => {
    const tl = await branch();
    const first = await start({ timelineId: tl });
    await first.exec("CREATE TABLE warm (id int PRIMARY KEY, pad text); INSERT INTO warm SELECT g, repeat('x', 200) FROM generate_series(1, 3000) g");
    await first.stop();
    const fetchedBy = async (c: Compute): Promise<number> => {
      const before = c.counters.pagesFetched;
      expect((await c.query<{ n: number }>('SELECT count(*)::int AS n FROM warm')).rows[0].n).toBe(3000);
      return c.counters.pagesFetched - before;
    };
    // its pages were written by the last run, never read: this start fetches them one by one, and records them
    const second = await start({ timelineId: tl });
    expect(await fetchedBy(second)).toBeGreaterThan(20);
    await second.stop();
    // the stop wrote them into the hint with the start's own pages: this start read them in its bulk prefetch
    const third = await start({ timelineId: tl });
    expect(await fetchedBy(third)).toBe(0);
    await third.stop();
  });

  it('(d) a start fetches a small part of the data directory in a few round trips', async () => {
    const tl = await branch();
    const warm = await start({ timelineId: tl });
    await warm.exec('CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000)');
    await warm.stop();

    const rows: string[] = [];
    for (const [label, opts] of [
      ['precompiled wasm', {}],
      ['wasm compiled in the worker', { wasmModule: null }],
      ['no prefetch', { prefetch: false }],
    ] as [string, Partial<ComputeOptions>][]) {
      const c = await start({ timelineId: tl, ...opts });
      const t0 = performance.now();
      await c.query('SELECT count(*) FROM t');
      const firstQueryMs = performance.now() - t0;
      const s = c.counters.start;
      rows.push(
        `${label.padEnd(28)} start ${s.totalMs.toFixed(0).padStart(4)} ms (worker load ${s.workerLoadMs.toFixed(0)}, ` +
        `PGlite start ${s.pgliteStartMs.toFixed(0)}, bootstrap ${s.bootstrapMs.toFixed(0)}), first query ${firstQueryMs.toFixed(1)} ms; ` +
        `fetched ${s.pagesFetched} pages = ${(s.bytesFetched / 1024).toFixed(0)} KiB of ${(s.dataDirBytes / 1048576).toFixed(1)} MiB ` +
        `(${((100 * s.bytesFetched) / s.dataDirBytes).toFixed(1)} %), ${s.readRequests} read requests`,
      );
      expect(s.bytesFetched).toBeLessThan(s.dataDirBytes * 0.1);
      if (opts.prefetch !== false) expect(s.readRequests).toBeLessThanOrEqual(6);
      await c.stop();
    }
    console.log(rows.join('\n'));
  });
});
