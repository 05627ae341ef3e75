// Lake tables on a whole lakebase (`lakebase start`), on both engines: a table of a branch synced into Iceberg in the
// bucket (the local folder here), read back by an independent reader (icebird) and compared with Postgres: the first
// copy, then inserts, updates, deletes, a TRUNCATE, an aborted transaction, a column added; the history holds each
// committed change once with its op and LSN. Bad requests are refused with a 4xx and create nothing.
import { icebergRead } from 'icebird';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLsn } from '../control-plane/lsn.ts';
import { installFileFetch } from './support/file-fetch.ts';
import { startLakebaseStack } from './support/lakebase-stack.ts';
import type { LakebaseStack } from './support/lakebase-stack.ts';
import type { J } from './support/neonctl.ts';

let stack: LakebaseStack;
let restoreFetch: () => void;

beforeAll(async () => {
  restoreFetch = installFileFetch();
  stack = await startLakebaseStack({ env: { LAKEBASE_CONTROL_PLANE_LAKE_SYNC_INTERVAL_S: '0.5' } });
}, 120_000);

afterAll(async () => {
  restoreFetch?.();
  await stack?.stop();
});

type Row = Record<string, unknown>;

/** A value as a comparable string, whatever JS type the reader or `pg` gives it. */
function norm(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (Array.isArray(v)) return JSON.stringify(v.map(norm));
  return String(v);
}

function byId(rows: Row[]): Record<string, Row> {
  return Object.fromEntries(rows.map((r) => [String(r.id), r]));
}

async function lakeRows(location: string): Promise<Row[]> {
  return (await icebergRead({ tableUrl: location })) as Row[];
}

/** The history in the order of the changes (Iceberg promises no row order across files): by LSN. */
async function historyOf(location: string): Promise<Row[]> {
  return (await lakeRows(location)).sort((a, b) => parseLsn(String(a._lsn))! - parseLsn(String(b._lsn))!);
}

async function waitSynced(path: string, client: pg.Client): Promise<J> {
  const target = parseLsn((await client.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l)!;
  const deadline = Date.now() + 20_000;
  for (;;) {
    const t = (await stack.api<J>('GET', path)).lake_table;
    if (t.status !== 'syncing') throw new Error(`lake table is ${t.status}: ${t.status_message}`);
    if (t.last_synced_lsn && parseLsn(t.last_synced_lsn)! >= target) return t;
    if (Date.now() > deadline) throw new Error(`lake table did not reach ${target} (at ${t.last_synced_lsn})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function post(path: string, body: unknown): Promise<{ status: number; json: J }> {
  const res = await fetch(`${stack.apiUrl}${path}`, {
    method: 'POST', headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as J };
}

describe.each([['pglite', 18], ['postgres', 15]] as const)('lake tables on the %s engine', (_engine, pgVersion) => {
  it('the lake holds exactly the committed rows, and the history every committed change once', async () => {
    const made = await stack.api<J>('POST', '/projects', { project: { name: `lake-${pgVersion}`, pg_version: pgVersion } });
    const projectId = made.project.id as string;
    const branchId = made.branch.id as string;
    const c = new pg.Client({ connectionString: made.connection_uris[0].connection_uri });
    await c.connect();
    try {
      await c.query(`CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(10,2), qty int,
        placed date, at timestamptz, tags text[], doc jsonb, raw bytea, ok bool, ratio float8)`);
      await c.query(`INSERT INTO orders SELECT g, 'c' || g, g * 1.25, g, date '2026-01-01' + g, timestamptz '2026-01-01 00:00:00.123456+00' + g * interval '1 hour',
        ARRAY['a', 'b' || g], jsonb_build_object('n', g), decode('00ff', 'hex'), g % 2 = 0, g / 3.0 FROM generate_series(1, 50) g`);
      await c.query('INSERT INTO orders (id, customer) VALUES (9007199254740993, $1)', ['big key']);

      const created = await post(`/projects/${projectId}/branches/${branchId}/lake_tables`, { lake_table: { source_table: 'public.orders' } });
      expect(created.status, JSON.stringify(created.json)).toBe(201);
      const lt = created.json.lake_table;
      expect(lt).toMatchObject({ source_table: 'public.orders', status: 'syncing' });
      expect(lt.location).toMatch(/^file:\/\/\//);
      expect(created.json.operations[0]).toMatchObject({ action: 'sync_lake_table', status: 'finished' });
      const path = `/projects/${projectId}/branches/${branchId}/lake_tables/${lt.id}`;

      const expectLakeEqualsPostgres = async (): Promise<void> => {
        await waitSynced(path, c);
        const pgRows = (await c.query('SELECT id::text, customer, amount::text, qty, placed::text, ratio FROM orders')).rows as Row[];
        const lake = byId(await lakeRows(lt.location));
        expect(Object.keys(lake).sort()).toEqual(pgRows.map((r) => String(r.id)).sort());
        for (const r of pgRows) {
          const l = lake[String(r.id)];
          expect(norm(l.customer)).toBe(r.customer);
          expect(l.qty === null || l.qty === undefined ? null : Number(l.qty)).toBe(r.qty);
          expect(l.amount === null || l.amount === undefined ? null : Number(l.amount).toFixed(2)).toBe(r.amount);
          expect(l.ratio ?? null).toBe(r.ratio);
        }
      };
      await expectLakeEqualsPostgres();

      // inserts, updates (one moves its key), deletes; a rolled-back transaction never reaches the lake
      await c.query("INSERT INTO orders (id, customer, qty) VALUES (101, 'new', 7), (102, 'new2', 8)");
      await c.query("UPDATE orders SET customer = 'changed', qty = qty + 100 WHERE id <= 5");
      await c.query('UPDATE orders SET id = 1001 WHERE id = 6');
      await c.query('DELETE FROM orders WHERE id BETWEEN 40 AND 45');
      await c.query('BEGIN');
      await c.query("INSERT INTO orders (id, customer) VALUES (666, 'aborted')");
      await c.query('ROLLBACK');
      await expectLakeEqualsPostgres();

      // a column added evolves the lake's schema; old rows read it as null
      await c.query('ALTER TABLE orders ADD COLUMN note text');
      await c.query("INSERT INTO orders (id, customer, note) VALUES (200, 'with note', 'hello')");
      await expectLakeEqualsPostgres();
      const noted = byId(await lakeRows(lt.location));
      expect(noted['200'].note).toBe('hello');
      expect(noted['1'].note ?? null).toBe(null);

      // the history: every committed change once, in order per key, with its op and a Postgres LSN
      const history = await historyOf(lt.history_location);
      const ops = (id: string) => history.filter((h) => String(h.id) === id).map((h) => h._op);
      expect(ops('1')).toEqual(['I', 'U']);
      expect(ops('6')).toEqual(['I', 'D']);
      expect(ops('1001')).toEqual(['U']);
      expect(ops('40')).toEqual(['I', 'D']);
      expect(ops('101')).toEqual(['I']);
      expect(ops('666')).toEqual([]);
      expect(history.every((h) => /^[0-9A-F]+\/[0-9A-F]+$/.test(String(h._lsn)))).toBe(true);

      // TRUNCATE empties the lake table; the history says D for every row
      await c.query('TRUNCATE orders');
      await c.query("INSERT INTO orders (id, customer) VALUES (7, 'after truncate')");
      await expectLakeEqualsPostgres();
      const after = await historyOf(lt.history_location);
      const opsAfter = (id: string) => after.filter((h) => String(h.id) === id).map((h) => h._op);
      expect(opsAfter('1')).toEqual(['I', 'U', 'D']);
      expect(opsAfter('7')).toEqual(['I', 'D', 'I']);
      expect(opsAfter('1001')).toEqual(['U', 'D']);

      const listed = await stack.api<J>('GET', `/projects/${projectId}/branches/${branchId}/lake_tables`);
      expect(listed.lake_tables.map((t: J) => t.id)).toEqual([lt.id]);
    } finally {
      await c.end();
    }
  });
});

describe('lake table requests that cannot be served', () => {
  it('refuses an unknown table, a table without a primary key, a bad name and a second sync of a table; creates nothing', async () => {
    const made = await stack.api<J>('POST', '/projects', { project: { name: 'lake-bad' } });
    const base = `/projects/${made.project.id}/branches/${made.branch.id}/lake_tables`;
    const c = new pg.Client({ connectionString: made.connection_uris[0].connection_uri });
    await c.connect();
    try {
      await c.query('CREATE TABLE nokey (a int)');
      await c.query('CREATE TABLE keyed (a int PRIMARY KEY)');
    } finally {
      await c.end();
    }
    const unknown = await post(base, { lake_table: { source_table: 'public.nothere' } });
    expect(unknown.status).toBe(404);
    expect(unknown.json.message).toMatch(/does not exist/);
    const nokey = await post(base, { lake_table: { source_table: 'nokey' } });
    expect(nokey.status).toBe(400);
    expect(nokey.json.message).toMatch(/primary key/);
    const badName = await post(base, { lake_table: { source_table: 'x; DROP TABLE keyed' } });
    expect(badName.status).toBe(400);
    const missing = await post(base, { lake_table: {} });
    expect(missing.status).toBe(400);
    expect((await post(base, { lake_table: { source_table: 'keyed' } })).status).toBe(201);
    const again = await post(base, { lake_table: { source_table: 'public.keyed' } });
    expect(again.status).toBe(409);
    expect((await stack.api<J>('GET', base)).lake_tables).toHaveLength(1);
  });
});
