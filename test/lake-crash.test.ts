// Exactly once under kill -9: a lake table follows a stream of inserts, updates and deletes while the compute host,
// the storage node and the control plane (where the sync runs) are each killed in turn and restarted by
// `lakebase start`. Afterwards the lake equals Postgres row for row, and the history holds each committed change
// once: no duplicate (the same change twice) and no gap (replaying it gives Postgres' rows).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
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
  // frequent rounds and small compaction thresholds: kills land in the middle of publishing and compacting
  stack = await startLakebaseStack({ env: { LAKEBASE_CONTROL_PLANE_LAKE_SYNC_INTERVAL_S: '0.3', LAKEBASE_CONTROL_PLANE_LAKE_COMPACT_AFTER_FILES: '6' } });
}, 120_000);

afterAll(async () => {
  restoreFetch?.();
  await stack?.stop();
});

type Row = Record<string, unknown>;

async function servicePid(name: string): Promise<number> {
  return (JSON.parse(await readFile(join(stack.dir, 'services.json'), 'utf8')) as Record<string, number>)[name];
}

async function killAndWait(name: string): Promise<void> {
  const pid = await servicePid(name);
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 300; i++) {
    const now = await servicePid(name).catch(() => pid);
    if (now !== pid && now > 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} was not restarted`);
}

/** Inserts, updates and deletes until stopped, reconnecting after failures; counts what was acknowledged. */
function writeStream(uri: string): { acked(): number; stop(): Promise<number> } {
  let stopped = false;
  let acked = 0;
  const done = (async () => {
    let c: pg.Client | null = null;
    for (let i = 1; !stopped; i++) {
      try {
        if (!c) {
          c = new pg.Client({ connectionString: uri });
          c.on('error', () => {});
          await c.connect();
        }
        await c.query('INSERT INTO ev (id, v) VALUES ($1, 0)', [i]);
        if (i % 3 === 0) await c.query('UPDATE ev SET v = v + 1 WHERE id = $1', [i - 2]);
        if (i % 7 === 0) await c.query('DELETE FROM ev WHERE id = $1', [i - 5]);
        acked++;
      } catch {
        await c?.end().catch(() => {});
        c = null;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await c?.end().catch(() => {});
  })();
  return {
    acked: () => acked,
    stop: async () => {
      stopped = true;
      await done;
      return acked;
    },
  };
}

async function connectRetrying(uri: string): Promise<pg.Client> {
  for (let i = 0; ; i++) {
    const c = new pg.Client({ connectionString: uri });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.query('SELECT 1');
      return c;
    } catch (e) {
      await c.end().catch(() => {});
      if (i > 100) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

describe('lake tables under kill -9', () => {
  it('after kills of the compute host, the storage node and the control plane, the lake equals Postgres and the history has no duplicate and no gap', async () => {
    const made = await stack.api<J>('POST', '/projects', { project: { name: 'lake-crash' } });
    const uri = made.connection_uris[0].connection_uri as string;
    const base = `/projects/${made.project.id}/branches/${made.branch.id}/lake_tables`;
    const setup = await connectRetrying(uri);
    await setup.query('CREATE TABLE ev (id bigint PRIMARY KEY, v int NOT NULL)');
    await setup.end();
    const lt = (await stack.api<J>('POST', base, { lake_table: { source_table: 'ev' } })).lake_table;

    const stream = writeStream(uri);
    for (const service of ['compute-host-1', 'storage-node-1', 'control-plane']) {
      await new Promise((r) => setTimeout(r, 2000));
      await killAndWait(service);
    }
    // writes go on against the restarted services before the stream stops
    const afterKills = stream.acked();
    for (let i = 0; i < 300 && stream.acked() < afterKills + 10; i++) await new Promise((r) => setTimeout(r, 200));
    const acked = await stream.stop();
    expect(acked).toBeGreaterThanOrEqual(afterKills + 10);

    const c = await connectRetrying(uri);
    try {
      const target = parseLsn((await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l)!;
      for (let i = 0; ; i++) {
        const t = (await stack.api<J>('GET', `${base}/${lt.id}`)).lake_table;
        expect(t.status).toBe('syncing');
        if (t.last_synced_lsn && parseLsn(t.last_synced_lsn)! >= target) break;
        if (i > 300) throw new Error(`the lake table did not catch up (at ${t.last_synced_lsn}, Postgres at ${target})`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const pgRows = new Map((await c.query<{ id: string; v: number }>('SELECT id::text, v FROM ev')).rows.map((r) => [r.id, r.v]));
      const lake = (await icebergRead({ tableUrl: lt.location })) as Row[];
      expect(new Map(lake.map((r) => [String(r.id), Number(r.v)]))).toEqual(pgRows);

      const history = ((await icebergRead({ tableUrl: lt.history_location })) as Row[])
        .sort((a, b) => parseLsn(String(a._lsn))! - parseLsn(String(b._lsn))!);
      const keys = history.map((h) => `${h.id}/${h._op}/${h._lsn}`);
      const dup = keys.filter((k, i) => keys.indexOf(k) !== i);
      expect(dup, 'changes in the history twice').toEqual([]);
      const replayed = new Map<string, number>();
      for (const h of history) {
        if (h._op === 'D') replayed.delete(String(h.id));
        else replayed.set(String(h.id), Number(h.v));
      }
      expect(replayed, 'the history replayed is not Postgres: a change is missing').toEqual(pgRows);
    } finally {
      await c.end();
    }
  }, 240_000);
});

describe('lake tables and scale to zero', () => {
  it('a synced table keeps no compute awake: the endpoint suspends on time while sync rounds run', async () => {
    const made = await stack.api<J>('POST', '/projects', { project: { name: 'lake-idle', default_endpoint_settings: { suspend_timeout_seconds: 2 } } });
    const endpointId = made.endpoints[0].id as string;
    const c = await connectRetrying(made.connection_uris[0].connection_uri);
    await c.query('CREATE TABLE t (id int PRIMARY KEY)');
    await c.query('INSERT INTO t SELECT generate_series(1, 10)');
    const lt = (await stack.api<J>('POST', `/projects/${made.project.id}/branches/${made.branch.id}/lake_tables`, { lake_table: { source_table: 't' } })).lake_table;
    await c.query('INSERT INTO t VALUES (11)');
    await c.end();
    const idleAt = Date.now();
    let state = '';
    for (let i = 0; i < 100 && state !== 'idle'; i++) {
      await new Promise((r) => setTimeout(r, 200));
      state = (await stack.api<J>('GET', `/projects/${made.project.id}/endpoints/${endpointId}`)).endpoint.current_state;
    }
    expect(state, 'the endpoint stayed awake: the sync counted as activity').toBe('idle');
    expect(Date.now() - idleAt).toBeGreaterThan(1500); // it suspended for idleness, not at once
    expect(((await icebergRead({ tableUrl: lt.location })) as Row[]).map((r) => r.id).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
  });
});
