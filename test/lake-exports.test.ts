// Snapshot exports on a whole lakebase (`lakebase start`), on both engines: tables of a branch as of a time, an LSN
// or the head, written to the bucket (the local folder here) as Iceberg tables or Parquet files, read back by
// independent readers (icebird, hyparquet). Row A is written, the point noted, row B written later: exports at the
// point hold exactly A, at the head A and B. Bad requests are refused with a 4xx and write nothing; a value the
// lake cannot hold fails the export in the background, its operation with it, and leaves nothing in the bucket.
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parquetReadObjects } from 'hyparquet';
import { icebergRead } from 'icebird';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportTable } from '../lake/export/export-table.ts';
import { openSink } from '../lake/export/sinks.ts';
import { type SqlExec, describeTables } from '../lake/export/source.ts';
import { LocalFolderStore } from '../storage-node/object-store/local-folder.ts';
import { installFileFetch } from './support/file-fetch.ts';
import { startLakebaseStack } from './support/lakebase-stack.ts';
import type { LakebaseStack } from './support/lakebase-stack.ts';
import type { J } from './support/neonctl.ts';

let stack: LakebaseStack;
let restoreFetch: () => void;

beforeAll(async () => {
  restoreFetch = installFileFetch();
  stack = await startLakebaseStack();
}, 120_000);

afterAll(async () => {
  restoreFetch?.();
  await stack?.stop();
});

type Row = Record<string, unknown>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function post(path: string, body: unknown): Promise<{ status: number; json: J }> {
  const res = await fetch(`${stack.apiUrl}${path}`, {
    method: 'POST', headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as J };
}

/** Polls the export until it is no longer running (bounded). */
async function settled(base: string, id: string): Promise<J> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const x = (await stack.api<J>('GET', `${base}/${id}`)).export;
    if (x.status !== 'running') return x;
    if (Date.now() > deadline) throw new Error(`export ${id} still running: ${JSON.stringify(x)}`);
    await sleep(100);
  }
}

/** Creates an export (201, its operation running) and waits for it to finish. */
async function exported(base: string, body: J): Promise<J> {
  const r = await post(base, { export: body });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  expect(r.json.operations).toEqual([expect.objectContaining({ action: 'export_branch', status: 'running' })]);
  expect(r.json.export.status).toBe('running');
  const x = await settled(base, r.json.export.id);
  expect(x.status, JSON.stringify(x)).toBe('finished');
  return x;
}

const locationOf = (x: J, name: string): string => x.tables.find((t: J) => t.name === name).location;

async function icebergRows(location: string): Promise<Row[]> {
  expect(location).toMatch(/^file:\/\/\//);
  return (await icebergRead({ tableUrl: location })) as Row[];
}

async function parquetRows(location: string): Promise<Row[]> {
  expect(location).toMatch(/^file:\/\/\/.*\.parquet$/);
  const bytes = await readFile(fileURLToPath(location));
  return (await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer })) as Row[];
}

const ids = (rows: Row[]): string[] => rows.map((r) => String(r.id)).sort();
const skus = (rows: Row[]): string[] => rows.map((r) => String(r.sku)).sort();

describe.each([['pglite', 18], ['postgres', 15]] as const)('snapshot exports on the %s engine', (_engine, pgVersion) => {
  it('an export at a time or an LSN holds exactly the rows then, at the head every row; as Iceberg and as Parquet', async () => {
    const made = await stack.api<J>('POST', '/projects', { project: { name: `export-${pgVersion}`, pg_version: pgVersion } });
    const projectId = made.project.id as string;
    const branchId = made.branch.id as string;
    const base = `/projects/${projectId}/branches/${branchId}/exports`;
    const c = new pg.Client({ connectionString: made.connection_uris[0].connection_uri });
    await c.connect();
    let lsnA: string;
    let timeA: string;
    try {
      await c.query('CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(10,2), at timestamptz, tags text[])');
      await c.query('CREATE TABLE items (sku text, qty int)'); // no primary key: fine for an export
      await c.query('CREATE TABLE empty (id int PRIMARY KEY)');
      await c.query(`INSERT INTO orders VALUES (1, 'row A', 12.50, '2026-01-02 03:04:05.123456+00', ARRAY['x', 'y'])`);
      await c.query(`INSERT INTO items VALUES ('a', 1)`);
      lsnA = (await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l;
      timeA = new Date().toISOString();
      await sleep(1500);
      await c.query(`INSERT INTO orders VALUES (2, 'row B', 3.00, now(), NULL)`);
      await c.query(`INSERT INTO items VALUES ('b', 2)`);
    } finally {
      await c.end();
    }

    // five exports at once: each runs on its own read-only compute
    const [atTime, atLsn, atHead, parquetHead, parquetThen] = await Promise.all([
      exported(base, { tables: ['public.orders', 'items'], timestamp: timeA }),
      exported(base, { tables: ['orders'], lsn: lsnA }),
      exported(base, { tables: ['orders', 'public.items'] }),
      exported(base, { tables: ['orders', 'items', 'empty'], format: 'parquet' }),
      exported(base, { tables: ['orders'], format: 'parquet', timestamp: timeA }),
    ]);
    expect(atTime).toMatchObject({ format: 'iceberg', timestamp: timeA, progress: { tables_done: 2, tables_total: 2, rows_written: 2 } });
    expect(locationOf(atTime, 'public.orders')).toContain(`/objects/lake/exports/${projectId}/${branchId}/${atTime.id}/public.orders`);
    const ordersThen = await icebergRows(locationOf(atTime, 'public.orders'));
    expect(ids(ordersThen)).toEqual(['1']);
    expect(ordersThen[0]).toMatchObject({ customer: 'row A', tags: ['x', 'y'] });
    expect(Number(ordersThen[0].amount)).toBe(12.5);
    expect(skus(await icebergRows(locationOf(atTime, 'public.items')))).toEqual(['a']);

    expect(atLsn.lsn).toBe(lsnA);
    expect(ids(await icebergRows(locationOf(atLsn, 'public.orders')))).toEqual(['1']);

    expect(atHead.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(ids(await icebergRows(locationOf(atHead, 'public.orders')))).toEqual(['1', '2']);
    expect(skus(await icebergRows(locationOf(atHead, 'public.items')))).toEqual(['a', 'b']);

    expect(parquetHead).toMatchObject({ format: 'parquet', progress: { tables_done: 3, tables_total: 3, rows_written: 4 } });
    const pqOrders = await parquetRows(locationOf(parquetHead, 'public.orders'));
    expect(ids(pqOrders)).toEqual(['1', '2']);
    expect(pqOrders.find((r) => String(r.id) === '1')).toMatchObject({ customer: 'row A' });
    expect(skus(await parquetRows(locationOf(parquetHead, 'public.items')))).toEqual(['a', 'b']);
    expect(await parquetRows(locationOf(parquetHead, 'public.empty'))).toEqual([]);

    expect(ids(await parquetRows(locationOf(parquetThen, 'public.orders')))).toEqual(['1']);

    // the operation ended with the export; the list holds every export of the branch
    const op = (await stack.api<J>('GET', `/projects/${projectId}/operations/${atHead.operation_id}`)).operation;
    expect(op).toMatchObject({ action: 'export_branch', status: 'finished', branch_id: branchId });
    const listed = (await stack.api<J>('GET', base)).exports.map((x: J) => x.id);
    expect(listed.sort()).toEqual([atTime.id, atLsn.id, atHead.id, parquetHead.id, parquetThen.id].sort());
  });
});

describe('export requests that cannot be served', () => {
  it('refuses an unknown table, both points, a future time, an LSN past the head and no tables, writing nothing', async () => {
    const made = await stack.api<J>('POST', '/projects', { project: { name: 'export-bad' } });
    const projectId = made.project.id as string;
    const base = `/projects/${projectId}/branches/${made.branch.id}/exports`;
    const c = new pg.Client({ connectionString: made.connection_uris[0].connection_uri });
    await c.connect();
    try {
      await c.query('CREATE TABLE orders (id int PRIMARY KEY)');
      await c.query("CREATE TABLE odd (id int PRIMARY KEY, v numeric(10,2))");
      await c.query("INSERT INTO odd VALUES (1, 'NaN')");
    } finally {
      await c.end();
    }
    const unknown = await post(base, { export: { tables: ['orders', 'public.nothere'] } });
    expect(unknown.status).toBe(404);
    expect(unknown.json.message).toMatch(/public\.nothere does not exist/);
    const both = await post(base, { export: { tables: ['orders'], lsn: '0/1', timestamp: new Date().toISOString() } });
    expect(both.status).toBe(400);
    expect(both.json.message).toMatch(/not both/);
    const future = await post(base, { export: { tables: ['orders'], timestamp: '2999-01-01T00:00:00Z' } });
    expect(future.status).toBe(400);
    expect(future.json.message).toMatch(/in the future/);
    const ahead = await post(base, { export: { tables: ['orders'], lsn: 'FFFF/0' } });
    expect(ahead.status).toBe(400);
    expect(ahead.json.message).toMatch(/ahead of the branch's last LSN/);
    const none = await post(base, { export: { tables: [] } });
    expect(none.status).toBe(400);
    const badName = await post(base, { export: { tables: ['x; DROP TABLE orders'] } });
    expect(badName.status).toBe(400);
    const badFormat = await post(base, { export: { tables: ['orders'], format: 'csv' } });
    expect(badFormat.status).toBe(400);
    expect((await stack.api<J>('GET', base)).exports).toEqual([]);
    const exportsDir = join(stack.dir, 'objects', 'lake', 'exports', projectId);
    expect(existsSync(exportsDir)).toBe(false);

    // a value the lake cannot hold (numeric NaN) fails the export in the background, and its operation
    const r = await post(base, { export: { tables: ['orders', 'odd'] } });
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    const x = await settled(base, r.json.export.id);
    expect(x).toMatchObject({ status: 'failed', error_code: 'EXPORT_BAD_VALUE' });
    expect(x.error).toMatch(/public\.odd/);
    const op = (await stack.api<J>('GET', `/projects/${projectId}/operations/${x.operation_id}`)).operation;
    expect(op).toMatchObject({ action: 'export_branch', status: 'failed', error_code: 'EXPORT_BAD_VALUE' });
    const left = existsSync(exportsDir) ? readdirSync(exportsDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()) : [];
    expect(left).toEqual([]);
  });
});

describe('one table read in many block ranges and written in chunks', () => {
  it('every row once: across ranges, halved ranges (result too large), chunks and partitions', async () => {
    const made = await stack.api<J>('POST', '/projects', { project: { name: 'export-pages' } });
    const c = new pg.Client({ connectionString: made.connection_uris[0].connection_uri });
    await c.connect();
    const out = await mkdtemp(join(tmpdir(), 'lake-export-'));
    try {
      await c.query('CREATE TABLE big (id int PRIMARY KEY, pad text)');
      await c.query("INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 3000) g");
      await c.query('DELETE FROM big WHERE id % 7 = 0'); // holes in the heap
      await c.query('CREATE TABLE parted (id int, k text) PARTITION BY LIST (k)');
      await c.query("CREATE TABLE parted_a PARTITION OF parted FOR VALUES IN ('a')");
      await c.query("CREATE TABLE parted_b PARTITION OF parted FOR VALUES IN ('b')");
      await c.query("INSERT INTO parted SELECT g, CASE WHEN g % 3 = 0 THEN 'a' ELSE 'b' END FROM generate_series(1, 2000) g");
      const text = { getTypeParser: () => (v: string) => v };
      let halved = 0;
      // the admin SQL's shape (text values), refusing ranges over 4 blocks as a compute refuses a too-large result
      const exec: SqlExec = async (statements) => {
        const results = [];
        for (const sql of statements) {
          const m = /'\((\d+),0\)'::tid AND t\.ctid < '\((\d+),0\)'/.exec(sql);
          if (m && Number(m[2]) - Number(m[1]) > 4) {
            halved++;
            throw new Error('result too large (SQLSTATE 54000)');
          }
          const r = await c.query({ text: sql, rowMode: 'array', types: text });
          results.push({ fields: r.fields.map((f) => f.name), rows: r.rows as (string | null)[][] });
        }
        return results;
      };
      const store = new LocalFolderStore(out);
      const { found } = await describeTables(exec, [{ schema: 'public', name: 'big' }, { schema: 'public', name: 'parted' }]);
      const progress: number[] = [];
      const sink = await openSink(store, 'x/public.big', 'iceberg', found[0].schema, {});
      const n = await exportTable(exec, found[0], sink, { blocksPerRead: 16, chunkRows: 700, onProgress: (r) => void progress.push(r) });
      expect(n).toBe(3000 - 428);
      expect(halved).toBeGreaterThan(0);
      expect(progress.length).toBeGreaterThan(3);
      expect(progress.at(-1)).toBe(n);
      const rows = await icebergRead({ tableUrl: sink.location });
      expect(new Set(rows.map((r) => Number(r.id))).size).toBe(n);
      expect(rows.some((r) => Number(r.id) % 7 === 0)).toBe(false);

      const pSink = await openSink(store, 'x/public.parted', 'parquet', found[1].schema, {});
      expect(await exportTable(exec, found[1], pSink, { blocksPerRead: 2, chunkRows: 300 })).toBe(2000);
      const pRows = await parquetRows(pSink.location);
      expect(new Set(pRows.map((r) => r.id)).size).toBe(2000);
    } finally {
      await c.end();
      await rm(out, { recursive: true, force: true });
    }
  });
});
