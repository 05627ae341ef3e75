// The postgres engine on a whole lakebase (`lakebase start` with LAKEBASE_ENGINE=postgres): Debian's PostgreSQL 15
// on a FUSE view of a storage-node timeline, reached through the proxy by the real driver (HTTP and WebSocket) and
// by pg, psql's tools, pgbench and pg_dump over TCP. Sessions are real backends: they run at once, lock rows as
// Postgres does, and log in as their own roles; every database of a branch is reachable; LISTEN/NOTIFY works.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { neon, neonConfig, Pool } from '@neondatabase/serverless';
import pg from 'pg';
import ws from 'ws';
import { StateStore } from '../control-plane/state-store.ts';
import { LocalFolderStore } from '../storage-node/object-store/local-folder.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLakebaseStack } from './support/lakebase-stack.ts';
import type { LakebaseStack } from './support/lakebase-stack.ts';
import { adminClient, computeHostApi, computeInfo, postmasterOf } from './support/postgres-engine.ts';

const run = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';
type J = Record<string, any>;

let stack: LakebaseStack;

beforeAll(async () => {
  stack = await startLakebaseStack({ env: { LAKEBASE_ENGINE: 'postgres' } });
  neonConfig.fetchEndpoint = () => stack.sqlUrl;
  neonConfig.wsProxy = () => stack.wsProxy;
  neonConfig.useSecureWebSocket = false;
  neonConfig.webSocketConstructor = ws;
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

/** The owner's URL with another database, user or password. */
function url(opts: { database?: string; user?: string; password?: string; base?: string } = {}): string {
  const u = new URL(opts.base ?? stack.project.connectionString);
  if (opts.database) u.pathname = `/${opts.database}`;
  if (opts.user) u.username = opts.user;
  // the printed string names the endpoint in the password (`endpoint=<id>$<password>`): keep it with another password
  if (opts.password) u.password = encodeURIComponent(decodeURIComponent(u.password).replace(/^(endpoint=[^$]*\$)?.*$/s, (_, p = '') => `${p}${opts.password}`));
  return u.toString();
}

async function tcp(opts: Parameters<typeof url>[0] = {}): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url(opts) });
  await c.connect();
  return c;
}

const codeOf = (p: Promise<unknown>): Promise<string | undefined> => p.then(() => undefined, (e: { code?: string }) => e.code);

describe('the postgres engine', () => {
  it('is PostgreSQL 15, and the project says so; its engine never changes', async () => {
    const { project } = await stack.api<J>('GET', `/projects/${stack.project.id}`);
    expect(project.pg_version).toBe(15);
    const [{ v }] = await neon(stack.project.connectionString)`SELECT current_setting('server_version_num')::int / 10000 AS v`;
    expect(v).toBe(15);
    const patch = await stack.api('PATCH', `/projects/${stack.project.id}`, { project: { pg_version: 18 } }).then(() => 'changed', (e: Error) => e.message);
    expect(patch).toMatch(/-> 400/);
    expect((await stack.api<J>('GET', `/projects/${stack.project.id}`)).project.pg_version).toBe(15);
    // a pglite project next to it, on the same lakebase, is Postgres 18
    const other = await stack.api<J>('POST', '/projects', { project: { name: 'wasm', pg_version: 18 } });
    expect(other.project.pg_version).toBe(18);
    const [{ v: v18 }] = await neon(other.connection_uris[0].connection_uri)`SELECT current_setting('server_version_num')::int / 10000 AS v`;
    expect(v18).toBe(18);
    await stack.api('DELETE', `/projects/${other.project.id}`);
  });

  it("the compute host reports the engine, the postmaster and its memory, and counts FUSE operations and fsync batches", async () => {
    await neon(stack.project.connectionString)`CREATE TABLE IF NOT EXISTS counted (x int)`;
    const api = await computeHostApi(stack);
    const info = await computeInfo(api, stack.project.endpointId);
    expect(info).toMatchObject({ engine: 'postgres', state: 'running' });
    expect(info.postmasterPid).toBeGreaterThan(0);
    // memory is sampled in the background (at start, then every 10 s)
    await expect.poll(async () => (await computeInfo(api, stack.project.endpointId)).rssBytes ?? 0, { timeout: 10_000 }).toBeGreaterThan(1024 * 1024);
    const metrics = await (await fetch(`${api.url}/metrics`, { headers: { authorization: `Bearer ${api.token}` } })).text();
    expect(Number(/^compute_host_storage_batches_total\{engine="postgres"\} (\d+)/m.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(0);
    expect(Number(/^compute_host_fuse_operations_total\{op="fsync"\} (\d+)/m.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(0);
  });

  it('runs sessions at once: reads do not wait for an open transaction, other rows commit, the same row waits for its lock', async () => {
    const pool = new Pool({ connectionString: stack.project.connectionString, max: 4 });
    try {
      await pool.query('CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)');
      await pool.query('INSERT INTO accounts VALUES (1, 100), (2, 100)');
      const a = await pool.connect();
      const b = await pool.connect();
      const c = await pool.connect();
      await a.query('BEGIN');
      await a.query('UPDATE accounts SET balance = balance - 10 WHERE id = 1');
      // B reads the committed state at once, then commits a write to another row while A's transaction is open
      expect((await b.query('SELECT balance FROM accounts WHERE id = 1')).rows[0].balance).toBe(100);
      await b.query('UPDATE accounts SET balance = balance + 5 WHERE id = 2');
      // C writes A's row: it waits for A's row lock
      let cDone = false;
      const cWrite = c.query('UPDATE accounts SET balance = balance + 1 WHERE id = 1').then(() => (cDone = true));
      for (let i = 0; i < 50 && !cDone; i++) {
        const waiting = await b.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'`);
        if (waiting.rows[0].n > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(cDone).toBe(false);
      await a.query('COMMIT');
      await cWrite;
      expect((await b.query('SELECT id, balance FROM accounts ORDER BY id')).rows).toEqual([{ id: 1, balance: 91 }, { id: 2, balance: 105 }]);
      a.release();
      b.release();
      c.release();
    } finally {
      await pool.end();
    }
  });

  it('16 sessions run at the same time: all 16 are inside a statement at once, then all finish', async () => {
    const pool = new Pool({ connectionString: stack.project.connectionString, max: 17 });
    try {
      const gate = await pool.connect();
      await gate.query('SELECT pg_advisory_lock(42)');
      // each session's statement waits at the gate, then sleeps 0.3 s; on a shared backend only one could be waiting
      const done = Promise.all(Array.from({ length: 16 }, () => pool.query('SELECT pg_advisory_xact_lock_shared(42), pg_sleep(0.3), pg_backend_pid() AS pid')));
      await expect.poll(async () => (await gate.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'`)).rows[0].n, { timeout: 30_000 }).toBe(16);
      await gate.query('SELECT pg_advisory_unlock(42)');
      const rows = await done;
      expect(new Set(rows.map((r) => r.rows[0].pid)).size).toBe(16);
      gate.release();
    } finally {
      await pool.end();
    }
  });

  it('neon() queries go on while a session holds a transaction open', async () => {
    const holder = await tcp();
    try {
      await holder.query('CREATE TABLE IF NOT EXISTS held (id int PRIMARY KEY)');
      await holder.query('BEGIN');
      await holder.query('INSERT INTO held VALUES (1)');
      const sql = neon(stack.project.connectionString);
      // 16 clients x 8 queries, all while the transaction stays open (on a shared backend they would wait for it)
      const counts = await Promise.all(Array.from({ length: 16 }, async () => {
        let n = 0;
        for (let i = 0; i < 8; i++) n += (await sql`SELECT count(*)::int AS n FROM held`)[0].n;
        return n;
      }));
      expect(counts).toEqual(Array(16).fill(0)); // none saw the uncommitted row
      expect((await holder.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'idle in transaction'`)).rows[0].n).toBeGreaterThanOrEqual(0);
      await holder.query('COMMIT');
      expect((await sql`SELECT count(*)::int AS n FROM held`)[0].n).toBe(1);
    } finally {
      await holder.end();
    }
  });

  it('a second database: created through the API, connected to, written, branched', async () => {
    const p = stack.project;
    const base = `/projects/${p.id}/branches/${p.branchId}`;
    await stack.api('POST', `${base}/databases`, { database: { name: 'app', owner_name: 'neondb_owner' } });
    const app = await tcp({ database: 'app' });
    try {
      expect((await app.query('SELECT current_database() AS d')).rows[0].d).toBe('app');
      await app.query('CREATE TABLE t (x text)');
      await app.query(`INSERT INTO t VALUES ('in app')`);
    } finally {
      await app.end();
    }
    const br = await stack.api<J>('POST', `/projects/${p.id}/branches`, { branch: { name: 'with-app' }, endpoints: [{ type: 'read_write' }] });
    const branchUrl = br.connection_uris?.[0]?.connection_uri ?? url();
    const onBranch = await tcp({ base: branchUrl, database: 'app' });
    try {
      expect((await onBranch.query('SELECT x FROM t')).rows).toEqual([{ x: 'in app' }]);
    } finally {
      await onBranch.end();
    }
    // a database that does not exist is Postgres' own 3D000
    expect(await codeOf(tcp({ database: 'nope' }))).toBe('3D000');
  });

  it('LISTEN in one session receives a NOTIFY from another, over TCP and WebSocket', async () => {
    const listener = await tcp();
    const pool = new Pool({ connectionString: stack.project.connectionString });
    try {
      const got = new Promise<string>((resolve) => listener.on('notification', (m) => resolve(m.payload ?? '')));
      await listener.query('LISTEN jobs');
      await pool.query(`NOTIFY jobs, 'from websocket'`);
      expect(await got).toBe('from websocket');
      const wsListener = await pool.connect();
      const got2 = new Promise<string>((resolve) => wsListener.on('notification', (m) => resolve(m.payload ?? '')));
      await wsListener.query('LISTEN jobs');
      await listener.query(`NOTIFY jobs, 'from tcp'`);
      expect(await got2).toBe('from tcp');
      wsListener.release();
    } finally {
      await listener.end();
      await pool.end();
    }
  });

  it('a branch at an LSN and a read-only compute at an old LSN see the parent exactly as of that LSN', async () => {
    const p = stack.project;
    const sql = neon(stack.project.connectionString);
    await sql`CREATE TABLE history (id int)`;
    await sql`INSERT INTO history VALUES (1)`;
    const api = await computeHostApi(stack);
    const at = (await computeInfo(api, p.endpointId)).lsn!; // the storage node's LSN, for the compute host's own API
    const [{ lsn: lsnText }] = (await sql`SELECT pg_current_wal_lsn()::text AS lsn`) as { lsn: string }[]; // Postgres', for the public API
    await sql`INSERT INTO history VALUES (2)`;
    const br = await stack.api<J>('POST', `/projects/${p.id}/branches`, { branch: { name: 'at-lsn', parent_lsn: lsnText }, endpoints: [{ type: 'read_write' }] });
    const onBranch = neon(br.connection_uris[0].connection_uri);
    expect(await onBranch`SELECT id FROM history ORDER BY id`).toEqual([{ id: 1 }]);
    // a read-only compute of the parent's timeline at that LSN (hot standby), started on the compute host itself
    const branch = (await stack.api<J>('GET', `/projects/${p.id}/branches/${p.branchId}`)).branch;
    const timelineId = await timelineOf(branch.id);
    const res = await fetch(`${api.url}/v1/computes`, {
      method: 'POST', headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ computeId: 'ro-old', timelineId, lsn: at, readOnly: true, engine: 'postgres' }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    try {
      const info = await computeInfo(api, 'ro-old');
      const admin = await adminClient(info.postmasterPid!, 'neondb');
      try {
        expect((await admin.query('SELECT pg_is_in_recovery() AS r')).rows[0].r).toBe(true);
        expect((await admin.query('SELECT id FROM history ORDER BY id')).rows).toEqual([{ id: 1 }]);
      } finally {
        await admin.end();
      }
    } finally {
      await fetch(`${api.url}/v1/computes/ro-old`, { method: 'DELETE', headers: { authorization: `Bearer ${api.token}` } });
    }
  });

  it('pgbench -i and a pgbench run through the proxy complete with no error; pg_dump restores into a new branch', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, PGPASSWORD: decodeURIComponent(new URL(stack.project.connectionString).password) };
    const u = new URL(stack.project.connectionString);
    const conn = ['-h', stack.tcp.host, '-p', String(stack.tcp.port), '-U', u.username];
    const opts = new URLSearchParams(u.search).get('options');
    if (opts) env.PGOPTIONS = opts;
    await run(`${BIN}/pgbench`, ['-i', '-s', '1', ...conn, 'neondb'], { env });
    const bench = await run(`${BIN}/pgbench`, ['-c', '4', '-j', '2', '-t', '50', ...conn, 'neondb'], { env });
    expect(bench.stdout).toMatch(/number of failed transactions: 0/);
    expect(bench.stdout).toMatch(/number of transactions actually processed: 200\/200/);
    // prepared statements, two clients on one thread (on a shared backend this waited for the idle-in-transaction limit)
    const prepared = await run(`${BIN}/pgbench`, ['-M', 'prepared', '-c', '2', '-j', '1', '-t', '50', ...conn, 'neondb'], { env });
    expect(prepared.stdout).toMatch(/number of transactions actually processed: 100\/100/);
    const dir = await mkdtemp(join(tmpdir(), 'lb-dump-'));
    try {
      const file = join(dir, 'dump.pgc');
      await run(`${BIN}/pg_dump`, ['-Fc', '-t', 'pgbench_branches', '-t', 'pgbench_accounts', '-f', file, ...conn, 'neondb'], { env });
      const br = await stack.api<J>('POST', `/projects/${stack.project.id}/branches`, { branch: { name: 'restore' }, endpoints: [{ type: 'read_write' }] });
      const target = neon(br.connection_uris[0].connection_uri);
      await target`DROP TABLE pgbench_branches, pgbench_accounts, pgbench_tellers, pgbench_history`;
      const bu = new URL(br.connection_uris[0].connection_uri);
      const benv = { ...env, PGPASSWORD: decodeURIComponent(bu.password), PGOPTIONS: new URLSearchParams(bu.search).get('options') ?? '' };
      await run(`${BIN}/pg_restore`, ['--no-owner', '-d', 'neondb', ...conn, file], { env: benv });
      const [src] = await neon(stack.project.connectionString)`SELECT sum(abalance)::bigint AS s, count(*)::int AS n FROM pgbench_accounts`;
      const [dst] = await target`SELECT sum(abalance)::bigint AS s, count(*)::int AS n FROM pgbench_accounts`;
      expect(dst).toEqual(src);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('what works on pglite works here', () => {
  it('suspend (a clean stop) and wake on the next query keep every row; checkpoint, change, rewind undoes the change', async () => {
    const p = stack.project;
    const sql = neon(p.connectionString);
    await sql`CREATE TABLE notes (t text)`;
    await sql`INSERT INTO notes VALUES ('kept')`;
    const api = await computeHostApi(stack);
    const before = (await computeInfo(api, p.endpointId)).postmasterPid;
    await stack.suspend();
    expect(await computeInfo(api, p.endpointId).then(() => 'running', () => 'stopped')).toBe('stopped');
    expect(await sql`SELECT t FROM notes`).toEqual([{ t: 'kept' }]);
    expect((await computeInfo(api, p.endpointId)).postmasterPid).not.toBe(before);
    const base = `/projects/${p.id}/branches/${p.branchId}`;
    await stack.api('POST', `${base}/checkpoints`, { name: 'good' });
    await sql`INSERT INTO notes VALUES ('oops')`;
    await stack.api('POST', `${base}/rewind`, { checkpoint: 'good' });
    expect(await neon(p.connectionString)`SELECT t FROM notes`).toEqual([{ t: 'kept' }]);
  });

  it('an idle session stays open across a suspend, and its next query wakes the compute (TCP and WebSocket); pg_terminate_backend still ends one', async () => {
    const p = stack.project;
    const tcpClient = await tcp();
    const pool = new Pool({ connectionString: p.connectionString });
    const wsClient = await pool.connect();
    const pidBefore = (await tcpClient.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    expect((await wsClient.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    await stack.suspend();
    // same connections, no error: the session logs in again (same role, pass-through keys) on the new compute
    const after = await tcpClient.query('SELECT pg_backend_pid() AS pid, current_user AS u');
    expect(after.rows[0].u).toBe('neondb_owner');
    expect(after.rows[0].pid).not.toBe(pidBefore);
    expect((await wsClient.query('SELECT 4 AS four')).rows).toEqual([{ four: 4 }]);
    // any other end of the backend (here pg_terminate_backend) ends the client session, as Postgres does
    const victimPid = (await wsClient.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const ended = new Promise<string>((resolve) => wsClient.on('error', (e: Error) => resolve(e.message)));
    await tcpClient.query('SELECT pg_terminate_backend($1)', [victimPid]);
    expect(await ended).toMatch(/terminating connection due to administrator command/);
    wsClient.release(true);
    await pool.end();
    await tcpClient.end();
  });

  it('a read-only endpoint (a hot standby) reads the branch and refuses writes', async () => {
    const p = stack.project;
    await neon(p.connectionString)`CREATE TABLE ro_seen (x int)`;
    await neon(p.connectionString)`INSERT INTO ro_seen VALUES (7)`;
    const ep = await stack.api<J>('POST', `/projects/${p.id}/endpoints`, { endpoint: { branch_id: p.branchId, type: 'read_only' } });
    const roUrl = new URL(p.connectionString); // the same login, for the read-only endpoint (named in the password)
    roUrl.password = encodeURIComponent(decodeURIComponent(roUrl.password).replace(/^endpoint=[^$]*\$/, `endpoint=${ep.endpoint.id}$`));
    const ro = neon(roUrl.toString());
    expect(await ro`SELECT x FROM ro_seen`).toEqual([{ x: 7 }]);
    await expect(ro`INSERT INTO ro_seen VALUES (8)`).rejects.toMatchObject({ code: '25006' });
    await stack.api('DELETE', `/projects/${p.id}/endpoints/${ep.endpoint.id}`);
  });

  it('a cancel stops a running statement (57014) and the session goes on', async () => {
    const c = await tcp();
    try {
      const running = codeOf(c.query('SELECT pg_sleep(30)')); // its outcome is awaited below
      await new Promise((r) => setTimeout(r, 300));
      const canceller = new pg.Client({ connectionString: url() });
      await canceller.connect();
      await canceller.query(`SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'`);
      await canceller.end();
      expect(await running).toBe('57014');
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
  });
});

describe('security on the postgres engine', () => {
  it('a low-privilege role stays itself and reads only what it was granted', async () => {
    const p = stack.project;
    const created = await stack.api<J>('POST', `/projects/${p.id}/branches/${p.branchId}/roles`, { role: { name: 'reader' } });
    const owner = await tcp();
    await owner.query('CREATE TABLE secrets (s text)');
    await owner.query(`INSERT INTO secrets VALUES ('owner only')`);
    // make it low-privilege: out of neon_superuser, no CREATEROLE/CREATEDB
    await owner.query('REVOKE neon_superuser FROM reader');
    await owner.query('ALTER ROLE reader NOCREATEROLE NOCREATEDB');
    await owner.end();
    const r = await tcp({ user: 'reader', password: created.role.password });
    try {
      expect((await r.query('SELECT current_user AS c, session_user AS s')).rows[0]).toEqual({ c: 'reader', s: 'reader' });
      expect(await codeOf(r.query('SET SESSION AUTHORIZATION neondb_owner'))).toBe('42501');
      await r.query('RESET SESSION AUTHORIZATION');
      expect((await r.query('SELECT session_user AS s')).rows[0].s).toBe('reader');
      expect(await codeOf(r.query('SET ROLE neondb_owner'))).toBe('42501');
      expect(await codeOf(r.query('SELECT * FROM secrets'))).toBe('42501');
      expect(await codeOf(r.query(`SELECT pg_read_file('/etc/passwd')`))).toBe('42501');
      expect(await codeOf(r.query(`COPY (SELECT 1) TO PROGRAM 'true'`))).toBe('42501');
    } finally {
      await r.end();
    }
  });

  it('the owner is not a superuser: no file access, no programs, no way to grant itself either', async () => {
    const o = await tcp();
    try {
      expect((await o.query(`SELECT rolsuper FROM pg_roles WHERE rolname = current_user`)).rows[0].rolsuper).toBe(false);
      expect(await codeOf(o.query(`SELECT pg_read_file('/etc/passwd')`))).toBe('42501');
      expect(await codeOf(o.query(`COPY (SELECT 1) TO PROGRAM 'true'`))).toBe('42501');
      expect(await codeOf(o.query('GRANT pg_execute_server_program TO neondb_owner'))).toBe('42501');
      expect(await codeOf(o.query('ALTER ROLE neondb_owner SUPERUSER'))).toBe('42501');
    } finally {
      await o.end();
    }
  });

  it("one compute cannot read another compute's mount", async () => {
    const other = await stack.api<J>('POST', '/projects', { project: { name: 'other', pg_version: 15 } });
    await neon(other.connection_uris[0].connection_uri)`SELECT 1`;
    const api = await computeHostApi(stack);
    const mine = await postmasterOf((await computeInfo(api, stack.project.endpointId)).postmasterPid!);
    const theirs = await postmasterOf((await computeInfo(api, other.endpoints[0].id)).postmasterPid!);
    expect(mine.uid).not.toBe(theirs.uid);
    expect(mine.uid).not.toBe(0);
    const as = (uid: number, file: string) => run('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'cat', file]);
    expect((await as(mine.uid, join(mine.dataDir, 'PG_VERSION'))).stdout.trim()).toBe('15');
    const denied = await as(mine.uid, join(theirs.dataDir, 'PG_VERSION')).then(() => 'read', (e: Error) => e.message);
    expect(denied).toMatch(/Permission denied/);
  });
});

/** The storage timeline of a branch, from the control plane's state in the bucket (not in the public API). */
async function timelineOf(branchId: string): Promise<string> {
  const state = new StateStore(new LocalFolderStore(join(stack.dir, 'objects')));
  await state.load();
  const id = state.current.branches[branchId]?.timeline_id;
  if (!id) throw new Error(`no timeline for branch ${branchId} in the control plane state`);
  return id;
}
