// The compute host in-process: its control API, the Postgres wire server of each compute, transaction-mode
// multiplexing, cancel, branches and read-only computes over the wire. Real PGlite workers, a real storage node,
// real sockets, the `pg` client; one template timeline for the file.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { startStorageNode } from '../storage-node/server.ts';
import type { StorageNode } from '../storage-node/server.ts';
import { LocalFolderStore } from '../storage-node/object-store/local-folder.ts';
import { StorageClient } from '../storage-node/client.ts';
import { createLogger } from '../lib/logger.ts';
import { createTemplateTimeline } from '../compute/template.ts';
import type { TemplateResult } from '../compute/template.ts';
import { startComputeHost } from '../compute/host/server.ts';
import type { RunningHost } from '../compute/host/server.ts';
import { DEFAULT_HOST_OPTIONS } from '../compute/host/host.ts';
import type { HostOptions } from '../compute/host/host.ts';
import { HostApi, HostApiError, connectPg } from './support/compute-host.ts';
import type { StartedCompute } from './support/compute-host.ts';
import { RawConn, dataRows, errorFields, types, wire } from './support/compute-host-wire.ts';

const TOKEN = 'internal-token-for-tests';
let root: string;
let node: StorageNode;
let storage: StorageClient;
let template: TemplateResult;
let host: RunningHost;
let api: HostApi;
const clients: pg.Client[] = [];
let nextId = 1;

function hostOptions(over: Partial<HostOptions> = {}): HostOptions {
  return {
    ...DEFAULT_HOST_OPTIONS, limits: { ...DEFAULT_HOST_OPTIONS.limits }, storageUrl: node.url, token: TOKEN,
    advertiseHost: '127.0.0.1', poolSize: 1, log: createLogger('compute-host', 'warn'), ...over,
  };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'lakebase-host-'));
  node = await startStorageNode({
    dataDir: join(root, 'storage'), objectStore: new LocalFolderStore(join(root, 'objects')),
    host: '127.0.0.1', port: 0, durability: 'local', logger: createLogger('storage-node', 'warn'),
  });
  storage = new StorageClient(node.url);
  template = await createTemplateTimeline({
    storageUrl: node.url,
    setupSql: ['CREATE ROLE neondb_owner LOGIN', 'GRANT ALL ON SCHEMA public TO neondb_owner'],
  });
  host = await startComputeHost({ ...hostOptions(), cancelGraceMs: 500 });
  api = new HostApi(host.url);
});

afterAll(async () => {
  for (const c of clients) await c.end().catch(() => {});
  await host?.close();
  await node?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function project(): Promise<string> {
  return (await storage.createTimeline({ ancestorTimelineId: template.timelineId })).timelineId;
}

async function startOn(timelineId: string, extra: { lsn?: number; readOnly?: boolean } = {}): Promise<StartedCompute> {
  return api.start({ computeId: `ep-test-${nextId++}`, timelineId, ...extra });
}

async function connect(c: StartedCompute, user = 'neondb_owner'): Promise<pg.Client> {
  const client = await connectPg(c, TOKEN, { user });
  client.on('error', () => {});
  clients.push(client);
  return client;
}

async function ids(client: pg.Client, table = 't'): Promise<number[]> {
  return (await client.query<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`)).rows.map((r) => r.id);
}

async function computeLsn(computeId: string): Promise<number> {
  return (await api.request<{ lsn: number }>('GET', `/v1/computes/${computeId}`)).lsn;
}

async function expectApiError(p: Promise<unknown>, status: number, code: string): Promise<HostApiError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(HostApiError);
  expect({ status: (e as HostApiError).status, code: (e as HostApiError).code }).toEqual({ status, code });
  return e as HostApiError;
}

describe('control API', () => {
  it('starts a compute, lists it, stops it cleanly', async () => {
    const tl = await project();
    const c = await startOn(tl);
    expect(c.host).toBe('127.0.0.1');
    expect(c.port).toBeGreaterThan(0);
    expect(c.pagesFetched).toBeGreaterThan(0);
    expect(c.startMs).toBeGreaterThan(0);
    const listed = (await api.list()).find((x) => x.computeId === c.computeId)!;
    expect(listed).toMatchObject({ state: 'running', port: c.port, timelineId: tl, readOnly: false, activeSessions: 0, inTransaction: false });
    expect((listed.memory as { estimatedBytes: number }).estimatedBytes).toBeGreaterThan(0);
    const client = await connect(c);
    await client.query('SELECT 1');
    expect((await api.list()).find((x) => x.computeId === c.computeId)!.activeSessions).toBe(1);

    const stopped = await api.stop(c.computeId);
    expect(stopped).toMatchObject({ computeId: c.computeId, stopped: true, clean: true });
    expect((await api.list()).some((x) => x.computeId === c.computeId)).toBe(false);
    // the session was told why, then closed
    await expect(client.query('SELECT 1')).rejects.toThrow(/terminating connection due to administrator command|Connection terminated|not queryable/);
    const metrics = await (await fetch(`${host.url}/metrics`)).text();
    expect(metrics).toMatch(/compute_host_starts_total\{outcome="ok",pooled="(true|false)"\} [1-9]/);
    expect(await (await fetch(`${host.url}/healthz`)).json()).toMatchObject({ status: 'ok' });
  });

  it('refuses bad requests with clear 4xx errors and changes nothing', async () => {
    const tl = await project();
    const before = (await api.list()).length;
    await expectApiError(api.request('POST', '/v1/computes', undefined, '{"computeId": "ep-x", '), 400, 'malformed_json');
    await expectApiError(api.request('POST', '/v1/computes', undefined, '[1,2]'), 400, 'invalid_request');
    await expectApiError(api.request('POST', '/v1/computes', { computeId: 'ep-x', timelineId: tl, color: 'red' }), 400, 'invalid_request');
    await expectApiError(api.start({ computeId: 'bad id!', timelineId: tl }), 400, 'invalid_compute_id');
    await expectApiError(api.start({ computeId: 'ep-x', timelineId: 'nope' }), 400, 'invalid_timeline_id');
    await expectApiError(api.start({ computeId: 'ep-x', timelineId: 'f'.repeat(32) }), 404, 'timeline_not_found');
    await expectApiError(api.request('POST', '/v1/computes', { computeId: 'ep-x', timelineId: tl, lsn: -1 }), 400, 'invalid_lsn');
    await expectApiError(api.start({ computeId: 'ep-x', timelineId: tl, lsn: 1 }), 400, 'invalid_lsn');
    await expectApiError(api.start({ computeId: 'ep-x', timelineId: tl, readOnly: true, lsn: 1_000_000 }), 400, 'lsn_out_of_range');
    await expectApiError(api.start({ computeId: 'ep-x', timelineId: tl, database: 'nosuchdb' }), 400, 'database_not_found');
    await expectApiError(api.stop('ep-missing'), 404, 'compute_not_found');
    await expectApiError(api.request('GET', '/v1/nothing'), 404, 'not_found');
    expect((await api.list()).length).toBe(before);

    const c = await api.start({ computeId: 'ep-dup', timelineId: tl });
    await expectApiError(api.start({ computeId: 'ep-dup', timelineId: await project() }), 409, 'compute_exists');
    // one writer per timeline
    await expectApiError(api.start({ computeId: 'ep-dup-2', timelineId: tl }), 409, 'timeline_busy');
    const client = await connect(c);
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await api.stop('ep-dup');
  });

  it('refuses a start over the memory budget once its wait in the start queue ends', async () => {
    // no idle compute may be suspended for it here (evictIdleMs 0), so the queue's deadline passes
    const small = await startComputeHost(hostOptions({ poolSize: 0, memoryBudgetBytes: 150 * 1024 * 1024, startQueueTimeoutMs: 500, evictIdleMs: 0 }));
    try {
      const smallApi = new HostApi(small.url);
      const first = await smallApi.start({ computeId: 'ep-budget-1', timelineId: await project() });
      const e = await expectApiError(smallApi.start({ computeId: 'ep-budget-2', timelineId: await project() }), 503, 'start_queue_timeout');
      expect(e.message).toMatch(/budget/);
      // the first one is unaffected
      const client = await connectPg(first, TOKEN);
      expect((await client.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
      await client.end();
    } finally {
      await small.close();
    }
  });
});

describe('wire protocol', () => {
  let c: StartedCompute;
  beforeAll(async () => {
    c = await startOn(await project());
    const setup = await connect(c);
    await setup.query('CREATE TABLE t (id int PRIMARY KEY, s text)');
  });

  it('answers SSLRequest with N, reports parameters and a cancel key, runs as the startup role', async () => {
    const conn = await RawConn.connect(c.port);
    expect(await conn.sslRequest()).toBe('N');
    const login = await conn.login(TOKEN, { user: 'neondb_owner', application_name: 'wire-test' });
    expect(types(login)).toMatch(/^R(S+)KZ$/);
    const params = Object.fromEntries(login.filter((m) => m.type === 'S').map((m) => {
      const [k, v] = m.body.toString('utf8').split('\0');
      return [k, v];
    }));
    expect(params).toMatchObject({ client_encoding: 'UTF8', DateStyle: 'ISO, MDY', integer_datetimes: 'on', standard_conforming_strings: 'on', application_name: 'wire-test', session_authorization: 'neondb_owner' });
    expect(params.server_version).toMatch(/^18\./);
    expect(params.TimeZone).toBeTruthy();
    expect(conn.pid).not.toBe(0);
    conn.send(wire.query('SELECT current_user, session_user, current_database()'));
    expect(dataRows(await conn.until())).toEqual([['neondb_owner', 'neondb_owner', 'neondb']]);
    conn.end();
  });

  it('refuses a wrong token (28P01), an unknown database (3D000) and random bytes, and keeps serving', async () => {
    const bad = await RawConn.connect(c.port);
    bad.send(wire.startup({ user: 'neondb_owner', database: 'neondb' }));
    await bad.until('R');
    bad.send(wire.password('wrong'));
    const err = (await bad.closedBy()).find((m) => m.type === 'E')!;
    expect(errorFields(err)).toMatchObject({ C: '28P01', S: 'FATAL' });
    await expect(connectPg(c, 'wrong')).rejects.toThrow(/password authentication failed/);
    await expect(connectPg(c, TOKEN, { database: 'otherdb' })).rejects.toThrow(/database "otherdb" does not exist/);

    const junk = await RawConn.connect(c.port);
    junk.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(types(await junk.closedBy())).toBe('E');
    const junk2 = await RawConn.connect(c.port);
    await junk2.login(TOKEN);
    junk2.send(Buffer.from([0x7a, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    const m = await junk2.closedBy();
    expect(errorFields(m.find((x) => x.type === 'E')!).C).toBe('08P01');

    const ok = await connect(c);
    expect((await ok.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('runs COPY FROM STDIN and TO STDOUT, a pipelined P/B/D/E/H/S batch, and refuses LISTEN with 0A000', async () => {
    const conn = await RawConn.connect(c.port);
    await conn.login(TOKEN, { user: 'neondb_owner' });
    conn.send(wire.query('COPY t FROM STDIN'));
    expect(types(await conn.until('G'))).toBe('G');
    conn.send(wire.copyData('1\tone\n2\ttwo\n'), wire.copyData('3\tthree\n'), wire.copyDone());
    expect(types(await conn.until())).toBe('CZ');
    // a failed COPY (CopyFail) changes nothing
    conn.send(wire.query('COPY t FROM STDIN'));
    await conn.until('G');
    conn.send(wire.copyData('4\tfour\n'), wire.copyFail('client gave up'));
    const failed = await conn.until();
    expect(errorFields(failed.find((x) => x.type === 'E')!).C).toBe('57014');
    conn.send(wire.query('COPY (SELECT id, s FROM t ORDER BY id) TO STDOUT'));
    const out = await conn.until();
    expect(types(out)).toBe('HdddcCZ');
    expect(out.filter((x) => x.type === 'd').map((x) => x.body.toString())).toEqual(['1\tone\n', '2\ttwo\n', '3\tthree\n']);

    // the Neon driver's pipelined extended query, in one write
    conn.send(wire.parse('SELECT s FROM t WHERE id = $1'), wire.bind(['2']), wire.describePortal(), wire.execute(), wire.flush(), wire.sync());
    const piped = await conn.until();
    expect(types(piped)).toBe('12TDCZ');
    expect(dataRows(piped)).toEqual([['two']]);
    // a Flush with nothing behind it is answered at once
    conn.send(wire.parse('SELECT $1::int + 1'), wire.bind(['41']), wire.execute(), wire.flush());
    expect(dataRows(await conn.until('C'))).toEqual([['42']]);
    conn.send(wire.sync());
    expect(types(await conn.until())).toBe('Z');

    conn.send(wire.query('LISTEN events'));
    const listen = await conn.until();
    expect(errorFields(listen.find((x) => x.type === 'E')!)).toMatchObject({ C: '0A000' });
    conn.send(wire.query("NOTIFY events, 'x'"));
    expect(types(await conn.until())).toBe('CZ');
    conn.end();
  });

  it('keeps the named prepared statements of two sessions apart', async () => {
    const a = await connect(c);
    const b = await connect(c);
    // node-postgres prepares a named statement once per connection: same name, different SQL
    const qa = { name: 'lookup', text: 'SELECT s FROM t WHERE id = $1' };
    const qb = { name: 'lookup', text: 'SELECT id * 10 AS x FROM t WHERE id = $1' };
    for (let i = 0; i < 3; i++) {
      expect((await a.query({ ...qa, values: [1] })).rows).toEqual([{ s: 'one' }]);
      expect((await b.query({ ...qb, values: [2] })).rows).toEqual([{ x: 20 }]);
    }
    await a.end();
    // a's statements are closed when it leaves; b's stay
    expect((await b.query({ ...qb, values: [3] })).rows).toEqual([{ x: 30 }]);
  });

  it('cancels a running statement in place (pg_sleep) and a statement it cannot interrupt by restarting the compute', async () => {
    const victim = await RawConn.connect(c.port);
    await victim.login(TOKEN, { user: 'neondb_owner' });
    const other = await connect(c);
    const sendCancel = async (): Promise<void> => {
      const k = await RawConn.connect(c.port);
      k.send(wire.cancelRequest(victim.pid, victim.secret));
      await k.closedBy();
    };

    victim.send(wire.query('SELECT pg_sleep(30)'));
    await new Promise((r) => setTimeout(r, 600)); // the statement is running (a loaded CI machine needs the margin)
    let t0 = performance.now();
    await sendCancel();
    let msgs = await victim.until();
    expect(errorFields(msgs.find((x) => x.type === 'E')!).C).toBe('57014');
    expect(performance.now() - t0).toBeLessThan(2500); // answered long before pg_sleep(30) would end
    const info0 = (await api.list()).find((x) => x.port === c.port)!;
    expect(info0.restarts).toBe(0);

    // a PL/pgSQL loop never calls into JavaScript: the grace period passes and the worker is restarted
    await other.query("INSERT INTO t VALUES (10, 'committed before the cancel')");
    victim.send(wire.query('BEGIN'));
    expect(types(await victim.until())).toBe('CZ');
    victim.send(wire.query("INSERT INTO t VALUES (11, 'never committed'); DO $$ DECLARE i bigint := 0; BEGIN WHILE i < 20000000000 LOOP i := i + 1; END LOOP; END $$"));
    await new Promise((r) => setTimeout(r, 600));
    t0 = performance.now();
    await sendCancel();
    msgs = await victim.until();
    expect(errorFields(msgs.find((x) => x.type === 'E')!).C).toBe('57014');
    // as after a cancel inside a transaction block: it is failed until ROLLBACK
    expect(msgs[msgs.length - 1].body.toString()).toBe('E');
    expect(performance.now() - t0).toBeLessThan(5000);
    victim.send(wire.query('ROLLBACK'));
    expect(types(await victim.until())).toBe('CZ');
    const info1 = (await api.list()).find((x) => x.port === c.port)!;
    expect(info1).toMatchObject({ restarts: 1, state: 'running' });
    // the other session's connection, role and committed rows survive the restart; the cancelled insert does not
    expect(await ids(other)).toEqual([1, 2, 3, 10]);
    victim.send(wire.query('SELECT current_user'));
    expect(dataRows(await victim.until())).toEqual([['neondb_owner']]);
    victim.end();
  });
});

describe('transaction mode', () => {
  it('a session inside a transaction holds the backend: others neither see its rows nor run inside it', async () => {
    const c = await startOn(await project());
    const a = await connect(c);
    const b = await connect(c);
    await a.query('CREATE TABLE t (id int PRIMARY KEY, who text, at timestamptz DEFAULT clock_timestamp())');
    await a.query('BEGIN');
    await a.query("INSERT INTO t (id, who) VALUES (1, 'a')");
    // b's read waits for a's transaction to end; then it cannot see rows a rolls back
    const events: string[] = [];
    const bRead = b.query<{ n: number }>('SELECT count(*)::int AS n FROM t').then((r) => {
      events.push('b read');
      return r.rows[0].n;
    });
    const bWrite = b.query("INSERT INTO t (id, who) VALUES (2, 'b') RETURNING id").then(() => events.push('b wrote'));
    await new Promise((r) => setTimeout(r, 300));
    expect(events).toEqual([]);
    const listed = (await api.list()).find((x) => x.port === c.port)!;
    expect(listed).toMatchObject({ inTransaction: true, activeSessions: 2 });
    // inside a's transaction only a's row exists: b's insert has not run in it
    expect(await ids(a)).toEqual([1]);
    await a.query("INSERT INTO t (id, who) VALUES (3, 'a')");
    await a.query('ROLLBACK');
    events.push('a rolled back');
    expect(await bRead).toBe(0);
    await bWrite;
    expect(events).toEqual(['a rolled back', 'b read', 'b wrote']);
    expect(await ids(a)).toEqual([2]);

    // and after a COMMIT, the waiting session runs after it and sees the committed rows
    await a.query('BEGIN');
    await a.query("INSERT INTO t (id, who) VALUES (4, 'a')");
    const bSees = b.query<{ id: number }>('SELECT id FROM t ORDER BY id');
    await new Promise((r) => setTimeout(r, 100));
    await a.query('COMMIT');
    expect((await bSees).rows.map((r) => r.id)).toEqual([2, 4]);
  });

  it('a disconnect inside a transaction rolls it back and frees the backend', async () => {
    const c = await startOn(await project());
    const a = await connect(c);
    const b = await connect(c);
    await b.query('CREATE TABLE t (id int)');
    await a.query('BEGIN');
    await a.query('INSERT INTO t VALUES (1)');
    // an extended-protocol batch left without its Sync must not commit either
    const raw = await RawConn.connect(c.port);
    await raw.login(TOKEN, { user: 'neondb_owner' });
    const bWaits = b.query('INSERT INTO t VALUES (2)');
    (a as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await bWaits;
    raw.send(wire.parse('INSERT INTO t VALUES (3)'), wire.bind([]), wire.execute(), wire.flush());
    await raw.until('C');
    raw.socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect(await ids(b)).toEqual([2]);
    await b.query('INSERT INTO t VALUES (4)');
    expect(await ids(b)).toEqual([2, 4]);
  });

  it('commits of sessions waiting for the backend share one write batch (group commit) and all survive a restart', async () => {
    const tl = await project();
    const c = await startOn(tl);
    const setup = await connect(c);
    await setup.query('CREATE TABLE g (id int PRIMARY KEY, w int)');
    const batches = async (): Promise<number> => {
      const text = await (await fetch(`${node.url}/metrics`)).text();
      return Number(/^storage_batches_total (\d+)/m.exec(text)?.[1] ?? NaN);
    };
    const before = await batches();
    const writers = await Promise.all(Array.from({ length: 6 }, () => connect(c)));
    const perWriter = 25;
    await Promise.all(writers.map(async (w, k) => {
      for (let i = 0; i < perWriter; i++) {
        const r = await w.query('INSERT INTO g VALUES ($1, $2) RETURNING id', [k * 1000 + i, k]);
        expect(r.rows[0].id).toBe(k * 1000 + i);
      }
    }));
    const shipped = (await batches()) - before;
    expect(shipped).toBeGreaterThan(0);
    expect(shipped).toBeLessThan(writers.length * perWriter * 0.75);
    // every answered commit is on the storage node: a new compute on the timeline has them all
    await api.stop(c.computeId);
    const again = await startOn(tl);
    const reader = await connect(again);
    expect((await reader.query<{ n: number }>('SELECT count(*)::int AS n FROM g')).rows[0].n).toBe(writers.length * perWriter);
    await api.stop(again.computeId);
  });

  it('ends a session idle in a transaction while others wait', async () => {
    const quick = await startComputeHost(hostOptions({ poolSize: 0, idleInTransactionTimeoutMs: 1500 }));
    try {
      const c = await new HostApi(quick.url).start({ computeId: 'ep-idle', timelineId: await project() });
      const a = await connectPg(c, TOKEN);
      a.on('error', () => {});
      const b = await connectPg(c, TOKEN);
      await a.query('CREATE TABLE t (id int)');
      await a.query('BEGIN');
      await a.query('INSERT INTO t VALUES (1)');
      const t0 = performance.now();
      expect((await b.query<{ n: number }>('SELECT count(*)::int AS n FROM t')).rows[0].n).toBe(0);
      expect(performance.now() - t0).toBeGreaterThan(1000);
      await expect(a.query('COMMIT')).rejects.toThrow(/idle-in-transaction timeout|Connection terminated|not queryable/);
      await b.end();
    } finally {
      await quick.close();
    }
  });
});

describe('branches and read-only computes over the wire', () => {
  it('a branch at an LSN sees exactly the parent as of that LSN; later writes on either side are invisible to the other', async () => {
    const parentTl = await project();
    const parentC = await startOn(parentTl);
    const parent = await connect(parentC);
    await parent.query('CREATE TABLE t (id int)');
    await parent.query('INSERT INTO t SELECT generate_series(1, 3)');
    const branchLsn = await computeLsn(parentC.computeId);
    await parent.query('INSERT INTO t SELECT generate_series(4, 6)');
    await parent.query('DELETE FROM t WHERE id = 1');

    const childTl = (await storage.createTimeline({ ancestorTimelineId: parentTl, ancestorLsn: branchLsn })).timelineId;
    const childC = await startOn(childTl);
    const child = await connect(childC);
    expect(await ids(child)).toEqual([1, 2, 3]);
    await child.query('INSERT INTO t VALUES (100)');
    await parent.query('INSERT INTO t VALUES (7)');
    expect(await ids(child)).toEqual([1, 2, 3, 100]);
    expect(await ids(parent)).toEqual([2, 3, 4, 5, 6, 7]);

    // and across restarts of both
    await api.stop(childC.computeId);
    await api.stop(parentC.computeId);
    const child2 = await connect(await startOn(childTl));
    const parent2 = await connect(await startOn(parentTl));
    expect(await ids(child2)).toEqual([1, 2, 3, 100]);
    expect(await ids(parent2)).toEqual([2, 3, 4, 5, 6, 7]);
  });

  it('a read-only compute at an old LSN sees the old rows while the read-write compute keeps writing', async () => {
    const tl = await project();
    const rwC = await startOn(tl);
    const rw = await connect(rwC);
    await rw.query('CREATE TABLE t (id int)');
    await rw.query('INSERT INTO t VALUES (1), (2)');
    const oldLsn = await computeLsn(rwC.computeId);
    const roC = await startOn(tl, { lsn: oldLsn, readOnly: true });
    const ro = await connect(roC);
    for (let i = 3; i <= 6; i++) {
      await rw.query('INSERT INTO t VALUES ($1)', [i]);
      expect(await ids(ro)).toEqual([1, 2]);
    }
    expect(await ids(rw)).toEqual([1, 2, 3, 4, 5, 6]);
    await expect(ro.query('INSERT INTO t VALUES (99)')).rejects.toThrow(/read-only transaction/);
    expect((await api.list()).find((x) => x.computeId === roC.computeId)).toMatchObject({ readOnly: true, lsn: oldLsn });
  });
});
