// The API's Postgres side on the whole lakebase (`lakebase start`: storage node, compute host, control plane,
// proxy as processes): roles and databases exist in Postgres, a branch at a time between two inserts holds
// exactly the first, a rewind to a checkpoint undoes later changes, and `lakebase sql` runs through the proxy.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLakebaseStack } from './support/lakebase-stack.ts';
import type { LakebaseStack } from './support/lakebase-stack.ts';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- API answers under test

const CLI = fileURLToPath(new URL('../cli/lakebase.ts', import.meta.url));
let stack: LakebaseStack;

beforeAll(async () => {
  stack = await startLakebaseStack();
}, 180_000);
afterAll(async () => {
  await stack?.stop();
});

/** The default project's connection string, for another endpoint, role or database. */
function conn(opts: { endpoint?: string; user?: string; password?: string; database?: string } = {}): string {
  const u = new URL(stack.project.connectionString);
  // the printed string names the endpoint in the password: `endpoint=<id>$<password>`
  const [, endpoint, password] = /^endpoint=([^$]*)\$(.*)$/s.exec(decodeURIComponent(u.password))!;
  if (opts.user) u.username = encodeURIComponent(opts.user);
  u.password = encodeURIComponent(`endpoint=${opts.endpoint ?? endpoint}$${opts.password ?? password}`);
  if (opts.database) u.pathname = '/' + opts.database;
  return u.toString();
}

async function query<T = J>(connectionString: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('control plane on the whole stack', () => {
  it("reports the project's pg_version as the major version its computes really run", async () => {
    const { project } = await stack.api<J>('GET', `/projects/${stack.project.id}`);
    const [{ v }] = await query(conn(), `SELECT current_setting('server_version_num')::int / 10000 AS v`);
    expect(project.pg_version).toBe(v);
  });

  it('creates roles and databases in Postgres; the new role logs in with its password', async () => {
    const p = stack.project;
    const base = `/projects/${p.id}/branches/${p.branchId}`;
    const role = await stack.api<J>('POST', `${base}/roles`, { role: { name: 'alice' } });
    const rows = await query(conn(), `SELECT rolname FROM pg_roles WHERE rolname = 'alice'`);
    expect(rows).toEqual([{ rolname: 'alice' }]);
    const who = await query(conn({ user: 'alice', password: role.role.password }), 'SELECT current_user AS u');
    expect(who[0].u).toBe('alice');
    // pglite serves one database per branch: a second is refused before Postgres is asked
    const refused = await stack.api('POST', `${base}/databases`, { database: { name: 'app', owner_name: 'alice' } }).then(() => null, (e: Error) => e);
    expect(refused?.message).toMatch(/-> 400: .*pglite engine .*pg_version.{1,4}: 15 \(the postgres engine\)/);
    expect(await query(conn(), `SELECT datname FROM pg_database WHERE datname = 'app'`)).toEqual([]);
    await stack.api('DELETE', `${base}/roles/alice`);
    expect(await query(conn(), `SELECT rolname FROM pg_roles WHERE rolname = 'alice'`)).toEqual([]);
  });

  it('a branch at a time between two inserts holds exactly the first', async () => {
    const p = stack.project;
    await query(conn(), 'CREATE TABLE events (id int)');
    await query(conn(), 'INSERT INTO events VALUES (1)');
    await sleep(200);
    const between = new Date().toISOString();
    await sleep(200);
    await query(conn(), 'INSERT INTO events VALUES (2)');
    const br = await stack.api<J>('POST', `/projects/${p.id}/branches`, { branch: { name: 'then', parent_timestamp: between }, endpoints: [{ type: 'read_write' }] });
    const rows = await query(conn({ endpoint: br.endpoints[0].id }), 'SELECT id FROM events ORDER BY id');
    expect(rows).toEqual([{ id: 1 }]);
    expect(await query(conn(), 'SELECT id FROM events ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('checkpoint, change, rewind: the changes are gone', async () => {
    const p = stack.project;
    const base = `/projects/${p.id}/branches/${p.branchId}`;
    await query(conn(), 'CREATE TABLE IF NOT EXISTS notes (t text)');
    await query(conn(), `INSERT INTO notes VALUES ('kept')`);
    await stack.api('POST', `${base}/checkpoints`, { name: 'good' });
    await query(conn(), `INSERT INTO notes VALUES ('oops')`);
    await query(conn(), 'DROP TABLE events');
    const r = await stack.api<J>('POST', `${base}/rewind`, { checkpoint: 'good' });
    expect(r.branch.id).toBe(p.branchId);
    expect(await query(conn(), 'SELECT t FROM notes')).toEqual([{ t: 'kept' }]);
    expect((await query(conn(), `SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'events'`))[0].n).toBe(1);
  });

  it('lakebase sql runs a statement through the proxy, with the settings from local.json', async () => {
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [CLI, 'sql', 'SELECT t FROM notes', '--dir', stack.dir, '--json'], { timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, stdout, stderr }));
    });
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout).rows).toEqual([{ t: 'kept' }]);
  });
});
