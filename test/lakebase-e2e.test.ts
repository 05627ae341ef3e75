// The whole lakebase as a user runs it (`lakebase start`), reached by the real driver over HTTP and WebSocket and
// by pg over TCP: first queries, scale to zero and wake, and crash safety of every component.
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { neon, neonConfig, Pool } from '@neondatabase/serverless';
import pg from 'pg';
import ws from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLakebaseStack } from './support/lakebase-stack.ts';
import type { LakebaseStack } from './support/lakebase-stack.ts';

let stack: LakebaseStack;

function configureDriver(s: LakebaseStack): void {
  // The three lines the banner of `lakebase start` prints (plus a WebSocket constructor for Node).
  neonConfig.fetchEndpoint = () => s.sqlUrl;
  neonConfig.wsProxy = () => s.wsProxy;
  neonConfig.useSecureWebSocket = false;
  neonConfig.webSocketConstructor = ws;
}

async function wakeCount(s: LakebaseStack): Promise<number> {
  const { internalToken } = JSON.parse(await readFile(join(s.dir, 'secrets.json'), 'utf8')) as { internalToken: string };
  const text = await (await fetch(`${s.controlPlaneUrl}/metrics`, { headers: { authorization: `Bearer ${internalToken}` } })).text();
  return Number(/^control_plane_wake_seconds_count (\d+)/m.exec(text)?.[1] ?? NaN);
}

async function servicePid(s: LakebaseStack, name: string): Promise<number> {
  const pids = JSON.parse(await readFile(join(s.dir, 'services.json'), 'utf8')) as Record<string, number>;
  return pids[name];
}

async function waitForRestart(s: LakebaseStack, name: string, oldPid: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const pid = await servicePid(s, name).catch(() => oldPid);
    if (pid !== oldPid && pid > 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} was not restarted by the supervisor:\n${s.log().slice(-3000)}`);
}

beforeAll(async () => {
  // for a Ctrl-C to its process group, as a terminal sends; PostgreSQL 15's binaries "missing" for the engine test
  stack = await startLakebaseStack({ ownGroup: true, env: { LAKEBASE_PG_BIN: '/nonexistent/postgresql/15/bin' } });
  configureDriver(stack);
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  await rm(stack.dir, { recursive: true, force: true });
});

describe('lakebase start', () => {
  it('serves the printed connection string over HTTP (neon()), WebSocket (Pool) and TCP (pg)', async () => {
    const sql = neon(stack.project.connectionString);
    await sql`CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL, at timestamptz DEFAULT now())`;
    const [row] = await sql`INSERT INTO notes (body) VALUES (${'over http'}) RETURNING id, body`;
    expect(row).toEqual({ id: 1, body: 'over http' });

    const pool = new Pool({ connectionString: stack.project.connectionString });
    const client = await pool.connect();
    await client.query('BEGIN');
    await client.query('INSERT INTO notes (body) VALUES ($1)', ['over websocket']);
    await client.query('COMMIT');
    client.release();
    await pool.end();

    const tcp = new pg.Client({ connectionString: stack.project.connectionString });
    await tcp.connect();
    const { rows } = await tcp.query('SELECT body FROM notes ORDER BY id');
    await tcp.end();
    expect(rows.map((r: { body: string }) => r.body)).toEqual(['over http', 'over websocket']);
  });

  it('scales to zero: after a suspend, the first query over each of HTTP, WebSocket and TCP wakes the compute', async () => {
    const sql = neon(stack.project.connectionString);
    await sql`CREATE TABLE IF NOT EXISTS wake (n int)`;
    await sql`INSERT INTO wake VALUES (1), (2), (3)`;
    const paths: [string, () => Promise<number>][] = [
      ['http', async () => Number((await sql`SELECT sum(n) AS s FROM wake`)[0].s)],
      ['websocket', async () => {
        const pool = new Pool({ connectionString: stack.project.connectionString });
        try {
          return Number((await pool.query('SELECT sum(n) AS s FROM wake')).rows[0].s);
        } finally {
          await pool.end();
        }
      }],
      ['tcp', async () => {
        const c = new pg.Client({ connectionString: stack.project.connectionString });
        await c.connect();
        try {
          return Number((await c.query('SELECT sum(n) AS s FROM wake')).rows[0].s);
        } finally {
          await c.end();
        }
      }],
    ];
    for (const [name, query] of paths) {
      await stack.suspend();
      const before = await wakeCount(stack);
      expect(await query(), name).toBe(6);
      expect(await wakeCount(stack), `${name} woke the endpoint once`).toBe(before + 1);
    }
  });

  it('an idle session stays open across a suspend, and its next query wakes the compute (TCP and WebSocket)', async () => {
    const tcp = new pg.Client({ connectionString: stack.project.connectionString });
    await tcp.connect();
    const pool = new Pool({ connectionString: stack.project.connectionString });
    const wsClient = await pool.connect();
    expect((await tcp.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    expect((await wsClient.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    await stack.suspend();
    const before = await wakeCount(stack);
    // Same connections, no error: the first query wakes the endpoint (once), the second finds it awake.
    expect((await tcp.query('SELECT 3 AS three')).rows).toEqual([{ three: 3 }]);
    expect((await wsClient.query('SELECT 4 AS four')).rows).toEqual([{ four: 4 }]);
    expect(await wakeCount(stack)).toBe(before + 1);
    // A transaction still works on the moved session.
    await tcp.query('BEGIN');
    await tcp.query('CREATE TABLE moved (v int)');
    await tcp.query('COMMIT');
    wsClient.release();
    await pool.end();
    await tcp.end();
  });

  it('ten concurrent first queries to a suspended endpoint cause exactly one compute start', async () => {
    const sql = neon(stack.project.connectionString);
    await stack.suspend();
    const before = await wakeCount(stack);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => sql`SELECT ${i}::int AS i`));
    expect(results.map((r) => r[0].i)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await wakeCount(stack)).toBe(before + 1);
  });

  it('the first HTTP response after a wake says where the wake went (Server-Timing), and so do the metrics', async () => {
    const post = () => fetch(stack.sqlUrl, {
      method: 'POST',
      headers: { 'Neon-Connection-String': stack.project.connectionString, 'Content-Type': 'application/json' },
      body: JSON.stringify({ query: 'SELECT 1 AS one', params: [] }),
    });
    await stack.suspend();
    const first = await post();
    expect(first.status).toBe(200);
    const steps = new Map((first.headers.get('server-timing') ?? '').split(', ').map((e) => {
      const [name, dur] = e.split(';dur=');
      return [name, Number(dur)] as const;
    }));
    for (const name of ['wake', 'wake.host', 'wake.host.check', 'wake.host.launch', 'wake.host.launch.pglite', 'connect', 'query']) {
      expect(steps.get(name), `${name} in ${first.headers.get('server-timing')}`).toBeGreaterThanOrEqual(0);
    }
    // the steps nest: the compute host's answer is inside the control plane's, which is inside the proxy's wake
    expect(steps.get('wake')).toBeGreaterThanOrEqual(steps.get('wake.host') as number);
    expect(steps.get('wake.host')).toBeGreaterThanOrEqual(steps.get('wake.host.launch') as number);
    // a request to a running compute waited for no wake: no header
    expect((await post()).headers.get('server-timing')).toBeNull();
    const proxyMetrics = await (await fetch(new URL('/metrics', stack.sqlUrl))).text();
    expect(Number(/^lakebase_proxy_wake_step_seconds_count\{step="wake"\} (\d+)/m.exec(proxyMetrics)?.[1])).toBeGreaterThanOrEqual(1);
  });

  it('a branch at the head of a running endpoint is taken right after a checkpoint of its parent, and holds its rows', async () => {
    const sql = neon(stack.project.connectionString);
    await sql`CREATE TABLE IF NOT EXISTS branch_ckpt (id int)`;
    await sql`INSERT INTO branch_ckpt SELECT generate_series(1, 500)`;
    const [{ lsn: before }] = (await sql`SELECT checkpoint_lsn::text AS lsn FROM pg_control_checkpoint()`) as { lsn: string }[];
    const b = await stack.api<{ branch: { id: string }; connection_uris: { connection_uri: string }[] }>('POST', `/projects/${stack.project.id}/branches`,
      { branch: { name: 'ckpt' }, endpoints: [{ type: 'read_write' }] });
    try {
      // the parent checkpointed before the branch point was taken: the branch's first start replays next to nothing
      const [{ moved }] = (await sql`SELECT checkpoint_lsn > ${before}::pg_lsn AS moved FROM pg_control_checkpoint()`) as { moved: boolean }[];
      expect(moved).toBe(true);
      const [{ n }] = (await neon(b.connection_uris[0].connection_uri)`SELECT count(*)::int AS n FROM branch_ckpt`) as { n: number }[];
      expect(n).toBe(500);
    } finally {
      await stack.api('DELETE', `/projects/${stack.project.id}/branches/${b.branch.id}`);
    }
  });

  it.each(['compute-host-1', 'storage-node-1', 'proxy'])('an acknowledged commit survives kill -9 of the %s', async (service) => {
    const table = `crash_${service.replaceAll('-', '_')}`;
    const admin = neon(stack.project.connectionString);
    await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY)`);
    const acked: number[] = [];
    let stop = false;
    const writer = (async () => {
      let c: pg.Client | null = null;
      for (let id = 1; !stop && id < 100_000; id++) {
        try {
          if (!c) {
            c = new pg.Client({ connectionString: stack.project.connectionString });
            c.on('error', () => {});
            await c.connect();
          }
          await c.query(`INSERT INTO ${table} VALUES ($1)`, [id]);
          acked.push(id);
        } catch {
          // The component died under us: that commit was not acknowledged. Reconnect and go on.
          await c?.end().catch(() => {});
          c = null;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await c?.end().catch(() => {});
    })();
    await new Promise((r) => setTimeout(r, 1500));
    const pid = await servicePid(stack, service);
    process.kill(pid, 'SIGKILL');
    await waitForRestart(stack, service, pid);
    await new Promise((r) => setTimeout(r, 1500)); // writes go on against the restarted service
    stop = true;
    await writer;
    expect(acked.length).toBeGreaterThan(5);
    const rows = (await admin.query(`SELECT id FROM ${table}`)) as { id: number }[];
    const found = new Set(rows.map((r) => r.id));
    const lost = acked.filter((id) => !found.has(id));
    expect(lost, `acknowledged commits lost after kill -9 of the ${service}`).toEqual([]);
  });
});

describe('engines', () => {
  it('asking for the postgres engine where it cannot run answers what to install, and creates nothing', async () => {
    const before = (await stack.api<{ projects: unknown[] }>('GET', '/projects')).projects.length;
    const refused = await stack.api('POST', '/projects', { project: { name: 'needs-pg', pg_version: 15 } }).then(() => 'created', (e: Error) => e.message);
    expect(refused).toMatch(/-> 503: .*ENGINE_UNAVAILABLE/);
    expect(refused).toMatch(/\/nonexistent\/postgresql\/15\/bin\/postgres is missing: apt-get install postgresql-15/);
    expect((await stack.api<{ projects: unknown[] }>('GET', '/projects')).projects.length).toBe(before);
    const other = await stack.api('POST', '/projects', { project: { name: 'v16', pg_version: 16 } }).then(() => 'created', (e: Error) => e.message);
    expect(other).toMatch(/-> 400: .*Postgres 16 is not available here: pg_version may be 18 \(the pglite engine\) and 15 \(the postgres engine\)/);
  });
});

describe('tenants', () => {
  it("one tenant's failure never disturbs another's", async () => {
    interface Created { project: { id: string }; endpoints: { id: string }[]; connection_uris: { connection_uri: string }[] }
    const other = await stack.api<Created>('POST', '/projects', { project: { name: 'other-tenant' } });
    const otherUrl = other.connection_uris[0].connection_uri;
    const mine = new pg.Client({ connectionString: stack.project.connectionString });
    const theirs = new pg.Client({ connectionString: otherUrl });
    const myErrors: string[] = [];
    mine.on('error', (e: Error & { code?: string }) => myErrors.push(e.code ?? e.message));
    await mine.connect();
    await theirs.connect();
    await theirs.query('CREATE TABLE t (v int)');
    // A long statement on my endpoint does not hold theirs up: their query answers while mine still runs.
    const order: string[] = [];
    const busy = mine.query('SELECT pg_sleep(2)').then(() => order.push('mine finished'));
    await theirs.query('INSERT INTO t VALUES (1)');
    order.push('theirs answered');
    await busy;
    expect(order).toEqual(['theirs answered', 'mine finished']);
    // Garbage on the wire ends only the connection that sent it.
    const garbage = await new Promise<string>((resolve) => {
      const sock = net.connect(stack.tcp.port, stack.tcp.host, () => sock.write(randomBytes(64)));
      sock.on('error', () => {});
      sock.on('close', () => resolve('closed'));
    });
    expect(garbage).toBe('closed');
    // My compute is stopped and restarted under my session; theirs never notices: same connection, same data.
    await stack.suspend(stack.project.endpointId);
    await theirs.query('INSERT INTO t VALUES (2)');
    expect((await theirs.query('SELECT sum(v)::int AS s FROM t')).rows[0].s).toBe(3);
    expect(myErrors).toEqual([]);
    await theirs.end();
    await mine.end().catch(() => {});
    await stack.api('DELETE', `/projects/${other.project.id}`);
  });
});

describe('lakebase start, again', () => {
  let projectId = '';

  it('Ctrl-C to its process group stops proxy, control plane, compute host and storage node in that order, every compute cleanly', async () => {
    const sql = neon(stack.project.connectionString);
    await sql`CREATE TABLE kept (v text)`;
    await sql`INSERT INTO kept VALUES ('before restart')`; // the compute is running
    projectId = stack.project.id;
    const logBefore = stack.log().length;
    await stack.stop({ keepDir: true, group: true });
    const log = stack.log().slice(logBefore);
    const lines = log.split('\n');
    const at = (re: RegExp) => {
      const i = lines.findIndex((l) => re.test(l));
      expect(i, `${re} in\n${log}`).toBeGreaterThanOrEqual(0);
      return i;
    };
    const done = [...log.matchAll(/^lakebase: stopping (\S+)\.\.\. done/gm)].map((m) => m[1]);
    expect(done, log).toEqual(['proxy', 'control-plane', 'compute-host-1', 'storage-node-1']);
    // Each one after the previous one's exit: the compute host stops its computes while the storage node still runs.
    const stops = lines.filter((l) => l.includes('"compute stopped"')).map((l) => JSON.parse(l) as { computeId: string; clean: boolean });
    expect(stops.length, log).toBeGreaterThan(0);
    expect(stops.filter((s) => !s.clean), log).toEqual([]);
    expect(at(/stopping compute-host-1\.\.\.$/)).toBeLessThan(at(/"compute stopped"/));
    expect(at(/"compute host stopped"/)).toBeLessThan(at(/stopping compute-host-1\.\.\. done/));
    expect(at(/stopping compute-host-1\.\.\. done/)).toBeLessThan(at(/"component":"storage-node".*"shutting down/));
  });

  it('starts again on the same directory: same data, and local.json and the banner name the ports this start listens on', async () => {
    const dir = stack.dir;
    stack = await startLakebaseStack({ dir, ownGroup: true });
    configureDriver(stack);
    expect(stack.project.id).toBe(projectId);
    // What the new proxy reported when it was listening (auto ports: port 0, any free port).
    const ready = stack.log().split('\n').filter((l) => l.startsWith('{"httpPort"')).map((l) => JSON.parse(l) as { httpPort: number; tcpPort: number });
    expect(ready.length).toBe(1);
    const { tcpPort, httpPort } = ready[0];
    expect(stack.tcp.port).toBe(tcpPort);
    expect(new URL(stack.project.connectionString).port).toBe(String(tcpPort));
    expect(new URL(stack.project.pooledConnectionString).port).toBe(String(tcpPort));
    expect(stack.sqlUrl).toBe(`http://127.0.0.1:${httpPort}/sql`);
    expect(stack.log()).toContain(`connection string  ${stack.project.connectionString}\n`);
    expect(stack.log()).toContain(`SQL over HTTP      ${stack.sqlUrl}\n`);
    const tcp = new pg.Client({ connectionString: stack.project.connectionString });
    await tcp.connect();
    expect((await tcp.query('SELECT v FROM kept')).rows).toEqual([{ v: 'before restart' }]);
    await tcp.end();
    expect(await neon(stack.project.connectionString)`SELECT v FROM kept`).toEqual([{ v: 'before restart' }]);
  });

  it('takes its services down with it when the supervisor itself is killed -9', async () => {
    const pids = JSON.parse(await readFile(join(stack.dir, 'services.json'), 'utf8')) as Record<string, number>;
    expect(Object.keys(pids).sort()).toEqual(['compute-host-1', 'control-plane', 'proxy', 'storage-node-1']);
    process.kill(stack.pid, 'SIGKILL');
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 150 && Object.values(pids).some(alive); i++) await new Promise((r) => setTimeout(r, 100));
    expect(Object.entries(pids).filter(([, pid]) => alive(pid)).map(([name]) => name)).toEqual([]);
  });
});
