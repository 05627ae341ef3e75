// Synced tables (lake -> Postgres) on a whole lakebase (`lakebase start`), on both engines: Parquet files written by
// another library (hyparquet-writer) and an Iceberg table (lake/iceberg) in the local-folder bucket become Postgres
// tables with exactly their rows and types; an incremental refresh loads only what was appended (and falls back to a
// full load after a delete); clients cannot write the table (the error names the source) until the synced table is
// deleted; bad requests are refused with a clear 4xx and create nothing.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parquetWriteBuffer, type SchemaElement } from 'hyparquet-writer';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IcebergTable } from '../lake/iceberg/table.ts';
import { CHUNK_BYTES, loadCalls } from '../lake/load/load-sql.ts';
import type { IcebergSchema } from '../lake/iceberg/types.ts';
import { LocalFolderStore } from '../storage-node/object-store/local-folder.ts';
import { startLakebaseStack } from './support/lakebase-stack.ts';
import type { LakebaseStack } from './support/lakebase-stack.ts';
import type { J } from './support/neonctl.ts';

let stack: LakebaseStack;
let store: LocalFolderStore;
let root: string;

beforeAll(async () => {
  stack = await startLakebaseStack();
  root = join(stack.dir, 'objects');
  store = new LocalFolderStore(root);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

const uriOf = (key: string): string => `${pathToFileURL(root).href}/${key}`;

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: J }> {
  const res = await fetch(`${stack.apiUrl}${path}`, {
    method, headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as J };
}

/** A Parquet file as another writer makes it: hyparquet-writer with its own schema (3-level list, logical types). */
function parquetFile(rows: { id: number; big: bigint; price: bigint; name: string | null; day: number; at: bigint; local: bigint; ok: boolean; ratio: number; raw: Uint8Array; uid: string; tags: string[] | null }[]): Uint8Array {
  const schema: SchemaElement[] = [
    { name: 'root', num_children: 12 },
    { name: 'id', type: 'INT32', repetition_type: 'REQUIRED' },
    { name: 'big', type: 'INT64', repetition_type: 'OPTIONAL' },
    { name: 'price', type: 'INT64', repetition_type: 'OPTIONAL', converted_type: 'DECIMAL', precision: 12, scale: 2, logical_type: { type: 'DECIMAL', precision: 12, scale: 2 } },
    { name: 'name', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL', converted_type: 'UTF8', logical_type: { type: 'STRING' } },
    { name: 'day', type: 'INT32', repetition_type: 'OPTIONAL', converted_type: 'DATE', logical_type: { type: 'DATE' } },
    { name: 'at', type: 'INT64', repetition_type: 'OPTIONAL', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' } },
    { name: 'local', type: 'INT64', repetition_type: 'OPTIONAL', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: false, unit: 'MICROS' } },
    { name: 'ok', type: 'BOOLEAN', repetition_type: 'OPTIONAL' },
    { name: 'ratio', type: 'DOUBLE', repetition_type: 'OPTIONAL' },
    { name: 'raw', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' },
    { name: 'uid', type: 'FIXED_LEN_BYTE_ARRAY', type_length: 16, repetition_type: 'OPTIONAL', logical_type: { type: 'UUID' } },
    { name: 'tags', repetition_type: 'OPTIONAL', converted_type: 'LIST', logical_type: { type: 'LIST' }, num_children: 1 },
    { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
    { name: 'element', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL', converted_type: 'UTF8', logical_type: { type: 'STRING' } },
  ];
  const names = ['id', 'big', 'price', 'name', 'day', 'at', 'local', 'ok', 'ratio', 'raw', 'uid', 'tags'] as const;
  const columnData = names.map((n) => ({ name: n, data: rows.map((r) => r[n]) }));
  return new Uint8Array(parquetWriteBuffer({ schema, columnData }));
}

function rowsOf(from: number, to: number) {
  const out = [];
  for (let i = from; i <= to; i++) {
    out.push({
      id: i, big: 9007199254740993n + BigInt(i), price: BigInt(i * 1001 - 5000), name: i % 7 === 0 ? null : `name ${i} 'quoted' "\\"`,
      day: 20_000 + i, at: 1_767_225_600_123_456n + BigInt(i) * 3_600_000_000n, local: 1_767_225_600_000_001n, ok: i % 2 === 0,
      ratio: i / 3, raw: Uint8Array.from([0, 255, i % 256]), uid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, tags: i % 5 === 0 ? null : ['a', `b${i}`],
    });
  }
  return out;
}

async function put(key: string, bytes: Uint8Array | string): Promise<void> {
  const path = join(root, ...key.split('/'));
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
}

async function project(name: string, pgVersion: number): Promise<{ base: string; client: pg.Client }> {
  const made = await stack.api<J>('POST', '/projects', { project: { name, pg_version: pgVersion } });
  const client = new pg.Client({ connectionString: made.connection_uris[0].connection_uri });
  await client.connect();
  return { base: `/projects/${made.project.id}/branches/${made.branch.id}/synced_tables`, client };
}

const exists = async (c: pg.Client, table: string): Promise<boolean> =>
  (await c.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table])).rows[0].t !== null;

const ICEBERG_SCHEMA: IcebergSchema = {
  'schema-id': 0, type: 'struct', 'identifier-field-ids': [1],
  fields: [
    { id: 1, name: 'id', required: true, type: 'long' },
    { id: 2, name: 'label', required: false, type: 'string' },
    { id: 3, name: 'amount', required: false, type: 'decimal(10, 3)' },
    { id: 4, name: 'at', required: false, type: 'timestamptz' },
    { id: 5, name: 'scores', required: false, type: { type: 'list', 'element-id': 6, element: 'int', 'element-required': false } },
  ],
};

const icebergRow = (i: number) => ({ id: BigInt(i), label: `e${i}`, amount: `${i}.125`, at: 1_700_000_000_000_000n + BigInt(i), scores: [i, null, -i] });

describe('a load as admin calls', () => {
  it('fits the compute host: one transaction when small, staged chunks then one transaction when not', () => {
    const columns = [{ name: 'a', pgType: 'text', kind: 'text' as const, list: false, notNull: false }];
    const table = { schema: 'public', name: 't' };
    const small = loadCalls({ table, columns, before: [], truncate: true, chunks: ['[{"a":"x"}]'], loadId: 'x' });
    expect(small).toHaveLength(1);
    expect(small[0][0]).toBe('BEGIN');
    expect(small[0].at(-1)).toBe('COMMIT');
    expect(small[0]).toContain('TRUNCATE "public"."t"');
    const chunk = `[${'{"a":"y"},'.repeat(CHUNK_BYTES / 10 - 1)}{"a":"z"}]`;
    const big = loadCalls({ table, columns, before: [], truncate: true, chunks: [chunk, chunk, chunk, chunk], loadId: 'x' });
    expect(big.length).toBeGreaterThan(2);
    for (const c of big) {
      expect(c.length).toBeLessThanOrEqual(64);
      // the host's limits: 16 MiB of JSON body (escaping at most doubles a statement), 8 MiB a statement
      expect(Buffer.byteLength(JSON.stringify({ database: 'neondb', statements: c }))).toBeLessThan(16 * 1024 * 1024);
      for (const st of c) expect(st.length).toBeLessThan(8 * 1024 * 1024);
    }
    // only the last call touches the table, in one transaction
    expect(big.slice(0, -1).flat().some((st) => st.includes('"public"."t"'))).toBe(false);
    expect(big.at(-1)![0]).toBe('BEGIN');
    expect(big.at(-1)!.at(-1)).toBe('COMMIT');
  });
});

describe.each([['pglite', 18], ['postgres', 15]] as const)('synced tables on the %s engine', (engine, pgVersion) => {
  let base: string;
  let client: pg.Client;
  const prefix = `imports/${engine}`;

  beforeAll(async () => {
    ({ base, client } = await project(`synced-${engine}`, pgVersion));
  }, 120_000);

  afterAll(async () => {
    await client?.end();
  });

  it('Parquet files by another writer become a table with their rows and types; an incremental refresh loads new files only', async () => {
    await put(`${prefix}/rates/part-0.parquet`, parquetFile(rowsOf(1, 40)));
    await put(`${prefix}/rates/part-1.parquet`, parquetFile(rowsOf(41, 60)));
    await put(`${prefix}/rates/_SUCCESS`, '');
    const created = await call('POST', base, { synced_table: { source_location: uriOf(`${prefix}/rates/`), target_table: 'public.rates', refresh: 'incremental' } });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    const st = created.json.synced_table;
    expect(st).toMatchObject({ source_format: 'parquet', target_table: 'public.rates', status: 'ready', rows_loaded: 60, refresh: 'incremental' });
    expect(st.files).toHaveLength(2);
    expect(created.json.operations[0]).toMatchObject({ action: 'load_synced_table', status: 'finished' });

    const types = await client.query(`SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull FROM pg_attribute
      WHERE attrelid = 'public.rates'::regclass AND attnum > 0 ORDER BY attnum`);
    expect(types.rows.map((r) => `${r.attname} ${r.type}${r.attnotnull ? ' not null' : ''}`)).toEqual([
      'id integer not null', 'big bigint', 'price numeric(12,2)', 'name text', 'day date', 'at timestamp with time zone',
      'local timestamp without time zone', 'ok boolean', 'ratio double precision', 'raw bytea', 'uid uuid', 'tags text[]',
    ]);
    const got = await client.query(`SET TIME ZONE 'UTC'; SELECT id, big::text, price::text, name, day::text, at::text, local::text, ok, ratio,
      encode(raw, 'hex') AS raw, uid::text, tags FROM rates ORDER BY id`);
    const rows = (got as unknown as pg.QueryResult[])[1].rows;
    expect(rows).toHaveLength(60);
    const want = rowsOf(1, 60);
    for (const [i, r] of rows.entries()) {
      const w = want[i];
      const day = new Date(w.day * 86_400_000).toISOString().slice(0, 10);
      expect(r).toEqual({
        id: w.id, big: String(w.big), price: (Number(w.price) / 100).toFixed(2), name: w.name, day,
        at: `${new Date(Date.UTC(2026, 0, 1) + w.id * 3_600_000).toISOString().replace('T', ' ').slice(0, 19)}.123456+00`,
        local: '2026-01-01 00:00:00.000001', ok: w.ok, ratio: w.ratio, raw: `00ff${(w.id % 256).toString(16).padStart(2, '0')}`, uid: w.uid, tags: w.tags,
      });
    }

    // a new file: the incremental refresh reads it alone
    await put(`${prefix}/rates/part-2.parquet`, parquetFile(rowsOf(61, 65)));
    const refreshed = await stack.api<J>('POST', `${base}/${st.id}/refresh`);
    expect(refreshed.synced_table).toMatchObject({ rows_loaded: 65, last_load: { mode: 'incremental', rows: 5, files: 1 } });
    expect((await client.query('SELECT count(*)::int AS n FROM rates')).rows[0].n).toBe(65);
    // a snapshot refresh loads everything again, in one transaction
    const full = await call('POST', `${base}/${st.id}/refresh`, { synced_table: { refresh: 'snapshot' } });
    expect(full.json.synced_table).toMatchObject({ rows_loaded: 65, last_load: { mode: 'full', rows: 65, files: 3 } });
    expect((await client.query('SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM rates')).rows[0]).toEqual({ n: 65, d: 65 });

    // a load Postgres refuses (text cannot hold NUL) changes nothing: the truncate rolls back with it
    await put(`${prefix}/rates/part-3.parquet`, parquetFile(rowsOf(66, 66).map((r) => ({ ...r, name: 'nul \u0000 inside' }))));
    const failed = await call('POST', `${base}/${st.id}/refresh`, { synced_table: { refresh: 'snapshot' } });
    expect(failed.status, JSON.stringify(failed.json)).toBe(422);
    expect(failed.json.message).toMatch(/Postgres refused the load of public.rates: .*nothing was changed/);
    expect((await client.query('SELECT count(*)::int AS n FROM rates')).rows[0].n).toBe(65);
    expect((await stack.api<J>('GET', `${base}/${st.id}`)).synced_table).toMatchObject({ status: 'failed', rows_loaded: 65 });
    await rm(join(root, prefix, 'rates', 'part-3.parquet'));
    expect((await stack.api<J>('POST', `${base}/${st.id}/refresh`)).synced_table).toMatchObject({ status: 'ready', rows_loaded: 65 });
    expect((await stack.api<J>('GET', `${base}/${st.id}`)).synced_table.status_message).toBeUndefined();
  });

  it('a load bigger than one admin call is staged, then moved into the table in one transaction', async () => {
    // about 10 MB of rows as JSON: over one call's 6 MiB of statements, so three chunks go through a staging table
    const text = 'x'.repeat(500);
    const first = rowsOf(1, 1)[0];
    const rows = Array.from({ length: 12_000 }, (_, i) => ({ ...first, id: i + 1, name: `${i} ${text}` }));
    await put(`${prefix}/big.parquet`, parquetFile(rows));
    const created = await stack.api<J>('POST', base, { synced_table: { source_location: uriOf(`${prefix}/big.parquet`), target_table: 'big' } });
    expect(created.synced_table).toMatchObject({ rows_loaded: 12_000, status: 'ready' });
    const r = await client.query('SELECT count(*)::int AS n, sum(length(name))::int AS chars, max(id) AS top FROM big');
    expect(r.rows[0]).toEqual({ n: 12_000, chars: rows.reduce((n, x) => n + x.name.length, 0), top: 12_000 });
    // the staging table is gone
    expect((await client.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'lakebase_synced'")).rows[0].n).toBe(0);
  }, 60_000);

  it('an Iceberg table becomes a table; an incremental refresh loads only the appended snapshot', async () => {
    const table = await IcebergTable.create(store, `${prefix}/events`, ICEBERG_SCHEMA);
    await table.commit({ rows: [1, 2, 3].map(icebergRow) });
    const created = await stack.api<J>('POST', base, { synced_table: { source_location: uriOf(`${prefix}/events`), target_table: 'events', refresh: 'incremental' } });
    const st = created.synced_table;
    expect(st).toMatchObject({ source_format: 'iceberg', rows_loaded: 3, last_loaded_snapshot_id: String(table.currentSnapshot!.snapshotId) });
    const typeOf = await client.query(`SELECT string_agg(format_type(atttypid, atttypmod), ', ' ORDER BY attnum) AS t FROM pg_attribute WHERE attrelid = 'events'::regclass AND attnum > 0`);
    expect(typeOf.rows[0].t).toBe('bigint, text, numeric(10,3), timestamp with time zone, integer[]');

    const second = await table.commit({ rows: [4, 5].map(icebergRow) });
    const refreshed = await stack.api<J>('POST', `${base}/${st.id}/refresh`, { synced_table: { refresh: 'incremental' } });
    expect(refreshed.synced_table).toMatchObject({
      status: 'ready', rows_loaded: 5, last_loaded_snapshot_id: String(second.snapshotId), last_load: { mode: 'incremental', rows: 2, files: 1 },
    });
    const rows = await client.query(`SELECT id::text, label, amount::text, extract(epoch FROM at)::numeric(20,6)::text AS at, scores FROM events ORDER BY id`);
    expect(rows.rows).toEqual([1, 2, 3, 4, 5].map((i) => ({ id: String(i), label: `e${i}`, amount: `${i}.125`, at: `1700000000.${String(i).padStart(6, '0')}`, scores: [i, null, -i] })));

    // a delete is no append: the next incremental refresh loads the table in full
    await table.commit({ deletes: [{ id: 2n }], rows: [{ ...icebergRow(6) }] });
    const after = await stack.api<J>('POST', `${base}/${st.id}/refresh`);
    expect(after.synced_table).toMatchObject({ rows_loaded: 5, last_load: { mode: 'full', rows: 5 } });
    expect((await client.query('SELECT array_agg(id ORDER BY id)::text AS ids FROM events')).rows[0].ids).toBe('{1,3,4,5,6}');

    // a column added to the Iceberg table is added to the Postgres table; older rows have it null
    const evolved: IcebergSchema = { ...ICEBERG_SCHEMA, fields: [...ICEBERG_SCHEMA.fields, { id: 7, name: 'note', required: false, type: 'string' }] };
    await table.commit({ schema: evolved, rows: [{ ...icebergRow(7), note: 'new column' }] });
    const grown = await stack.api<J>('POST', `${base}/${st.id}/refresh`);
    expect(grown.synced_table).toMatchObject({ status: 'ready', rows_loaded: 6, last_load: { mode: 'incremental', rows: 1, files: 1 } });
    expect(grown.synced_table.columns.at(-1)).toEqual({ name: 'note', type: 'text' });
    const notes = await client.query('SELECT id::int, note FROM events WHERE id IN (1, 7) ORDER BY id');
    expect(notes.rows).toEqual([{ id: 1, note: null }, { id: 7, note: 'new column' }]);
    expect((await stack.api<J>('GET', `${base}/${st.id}`)).synced_table.status).toBe('ready');
  });

  it('clients cannot change a synced table (the error names its source) until it is deleted', async () => {
    const location = uriOf(`${prefix}/events`);
    const st = (await stack.api<J>('GET', base)).synced_tables.find((t: J) => t.target_table === 'public.events');
    const guard = `cannot change synced table "events": it is loaded from ${location}; change the source instead`;
    for (const sql of ['INSERT INTO events (id) VALUES (100)', 'UPDATE events SET label = $$x$$', 'DELETE FROM events', 'TRUNCATE events']) {
      const err = await client.query(sql).then(() => null, (e: Error & { code?: string }) => e);
      expect(err?.code, sql).toBe('42501');
      // the postgres engine grants SELECT only: TRUNCATE (not in pg_write_all_data) stops at the privilege check
      if (engine === 'postgres' && sql.startsWith('TRUNCATE')) expect(err?.message).toBe('permission denied for table events');
      else expect(err?.message, sql).toBe(guard);
    }
    if (engine === 'postgres') {
      // the loader's setting alone lets no client through: the guard wants a superuser too
      await client.query('BEGIN');
      await client.query("SET LOCAL lakebase.loading = 'on'");
      const err = await client.query('INSERT INTO events (id) VALUES (100)').then(() => null, (e: Error) => e);
      await client.query('ROLLBACK');
      expect(err?.message).toMatch(/cannot change synced table/);
    }
    expect((await client.query('SELECT count(*)::int AS n FROM events')).rows[0].n).toBe(6);

    const deleted = await stack.api<J>('DELETE', `${base}/${st.id}`);
    expect(deleted.synced_table.id).toBe(st.id);
    expect((await call('GET', `${base}/${st.id}`)).status).toBe(404);
    await client.query('INSERT INTO events (id) VALUES (100)');
    expect((await client.query('SELECT count(*)::int AS n FROM events')).rows[0].n).toBe(7);
  });

  it('refuses sources outside the bucket, missing sources, non-Parquet files, existing and malformed targets; creates nothing', async () => {
    await put(`${prefix}/junk/notes.parquet`, 'just some text, not Parquet at all');
    await put(`${prefix}/good.parquet`, parquetFile(rowsOf(1, 3)));
    await client.query('CREATE TABLE taken (a int)');
    const bucket = pathToFileURL(root).href;
    const cases: [string, unknown, number, RegExp][] = [
      ['another root', { source_location: 'file:///etc/passwd', target_table: 't_outside' }, 400, new RegExp(`inside the project's bucket, ${bucket}/`)],
      ['another scheme', { source_location: 's3://other-bucket/rates', target_table: 't_s3' }, 400, /inside the project's bucket/],
      ['a path escaping the bucket', { source_location: `${bucket}/imports/../../x`, target_table: 't_escape' }, 400, /not a plain path/],
      ["the storage node's pages", { source_location: `${bucket}/timelines`, target_table: 't_pages' }, 403, /is not this project's to read/],
      ["the control plane's state", { source_location: `${bucket}/control-plane/log`, target_table: 't_state' }, 403, /is not this project's to read/],
      ["another project's lake", { source_location: `${bucket}/lake/some-other-project/br-x/public/t`, target_table: 't_other' }, 403, /is not this project's to read/],
      ['nothing there', { source_location: uriOf(`${prefix}/nothing/here`), target_table: 't_missing' }, 404, /nothing is at/],
      ['not Parquet', { source_location: uriOf(`${prefix}/junk/notes.parquet`), target_table: 't_junk' }, 400, /is not a Parquet file/],
      ['a folder of non-Parquet', { source_location: uriOf(`${prefix}/junk`), target_table: 't_junk2' }, 400, /is not a Parquet file/],
      ['an existing table', { source_location: uriOf(`${prefix}/good.parquet`), target_table: 'taken' }, 409, /already exists/],
      ['a malformed target', { source_location: uriOf(`${prefix}/good.parquet`), target_table: 'x; DROP TABLE taken' }, 400, /target_table must be/],
      ['no target', { source_location: uriOf(`${prefix}/good.parquet`) }, 400, /target_table is required/],
      ['a bad refresh mode', { source_location: uriOf(`${prefix}/good.parquet`), target_table: 't_mode', refresh: 'sometimes' }, 400, /refresh must be one of/],
    ];
    const before = (await stack.api<J>('GET', base)).synced_tables.length;
    for (const [what, body, status, message] of cases) {
      const r = await call('POST', base, { synced_table: body });
      expect(r.status, `${what}: ${JSON.stringify(r.json)}`).toBe(status);
      expect(r.json.message, what).toMatch(message);
    }
    for (const t of ['t_outside', 't_s3', 't_escape', 't_pages', 't_state', 't_other', 't_missing', 't_junk', 't_junk2', 't_mode']) expect(await exists(client, t), t).toBe(false);
    expect((await client.query('SELECT count(*)::int AS n FROM taken')).rows[0].n).toBe(0);
    expect((await stack.api<J>('GET', base)).synced_tables).toHaveLength(before);
    // and the good file does load
    expect((await call('POST', base, { synced_table: { source_location: uriOf(`${prefix}/good.parquet`), target_table: 'good' } })).status).toBe(201);
    expect((await client.query('SELECT count(*)::int AS n FROM good')).rows[0].n).toBe(3);
  });
});
