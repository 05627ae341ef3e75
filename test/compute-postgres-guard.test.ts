// lakebase_guard on a real Debian PostgreSQL 15: a CREATEROLE project owner (what the `postgres` engine gives
// `neondb_owner`) cannot reach pg_execute_server_program, pg_read_server_files, pg_write_server_files or
// SUPERUSER by any statement PG15 lets it run, so `COPY ... TO PROGRAM` stays refused; ordinary role
// management still works and the superuser is not restricted. Also: how guardLibrary() builds the module.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync, statSync, symlinkSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardLibrary } from '../compute/postgres/guard.ts';
import { freePort } from '../lib/free-port.ts';

const BIN = '/usr/lib/postgresql/15/bin';
const RESERVED = 'pg_read_server_files|pg_write_server_files|pg_execute_server_program';
const asRoot = process.getuid?.() === 0;

let root: string;
let dataDir: string;
let port: number;
let lib: string;
let started = false;
const clients: pg.Client[] = [];
let own: pg.Client;
let admin: pg.Client;

// Postgres refuses to run as root: run its tools as the `postgres` OS user when we are root.
function pgTool(tool: string, args: string[]): void {
  const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', path.join(BIN, tool), ...args]] : [path.join(BIN, tool), args];
  execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
}

async function connect(user: string): Promise<pg.Client> {
  const c = new pg.Client({ host: root, port, user, database: 'postgres' });
  c.on('error', () => {}); // the server going away in afterAll must not crash the worker
  await c.connect();
  clients.push(c);
  return c;
}

async function reservedMemberships(): Promise<number> {
  const r = await admin.query(`SELECT count(*)::int AS n FROM pg_auth_members WHERE roleid IN (${RESERVED.split('|').map((r) => `'${r}'::regrole`).join(',')})`);
  return r.rows[0].n;
}

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'lakebase-pg-guard-test-'));
  dataDir = path.join(root, 'd');
  if (asRoot) {
    const id = (flag: string): number => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
    chownSync(root, id('-u'), id('-g'));
  }
  lib = await guardLibrary({ buildDir: path.join(root, 'lib') });
  pgTool('initdb', ['-D', dataDir, '-U', 'cloud_admin', '--auth=trust', '-N', '-E', 'UTF8', '--locale=C']);
  port = await freePort();
  const o = `-p ${port} -k ${root} -c listen_addresses='' -c fsync=off -c shared_preload_libraries='${lib}'`;
  pgTool('pg_ctl', ['-D', dataDir, '-o', o, '-l', path.join(root, 'log'), '-w', 'start']);
  started = true;
  admin = await connect('cloud_admin');
  // the project owner as the `postgres` engine makes it: neon_superuser's rights, never SUPERUSER; it owns its
  // database (as neondb_owner owns neondb)
  await admin.query(`CREATE ROLE own LOGIN CREATEROLE CREATEDB BYPASSRLS;
    GRANT pg_read_all_data, pg_write_all_data TO own;
    GRANT pg_monitor, pg_signal_backend TO own WITH ADMIN OPTION;
    ALTER DATABASE postgres OWNER TO own;
    CREATE ROLE victim LOGIN`);
  own = await connect('own');
}, 120_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => {})));
  if (started) pgTool('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('guardLibrary', () => {
  it('builds once into a directory any uid can read, and shares a concurrent build', async () => {
    expect(path.isAbsolute(lib) && lib.endsWith('/lakebase_guard.so')).toBe(true);
    expect(statSync(lib).mode & 0o777).toBe(0o644);
    expect(statSync(path.dirname(lib)).mode & 0o777).toBe(0o755);
    const again = await Promise.all([1, 2, 3].map(() => guardLibrary({ buildDir: path.join(root, 'lib') })));
    expect(new Set(again)).toEqual(new Set([lib]));
  });

  it('rebuilds a library older than its source', async () => {
    utimesSync(lib, 0, 0);
    await guardLibrary({ buildDir: path.join(root, 'lib') });
    expect(statSync(lib).mtimeMs).toBeGreaterThan(0);
  });

  it('refuses a build directory that is a symlink (a planted library)', async () => {
    symlinkSync(path.join(root, 'lib'), path.join(root, 'link'));
    await expect(guardLibrary({ buildDir: path.join(root, 'link') })).rejects.toThrow(/refusing to use/);
  });
});

describe('a CREATEROLE owner cannot reach the reserved roles', () => {
  // each adds a membership in a reserved role: PG15 allows it, the guard undoes it with 42501
  const caughtByGuard = [
    'GRANT pg_execute_server_program TO own',
    'GRANT pg_execute_server_program TO own WITH ADMIN OPTION',
    'GRANT pg_read_server_files TO own',
    'GRANT pg_monitor, pg_write_server_files TO own',
    'GRANT pg_execute_server_program TO victim',
    'CREATE ROLE esc1 IN ROLE pg_execute_server_program LOGIN',
    'CREATE USER esc2 IN GROUP pg_write_server_files',
    'CREATE GROUP esc3 IN ROLE pg_read_server_files',
  ];
  it.each(caughtByGuard)('%s', async (sql) => {
    await expect(own.query(sql)).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(new RegExp(`^permission denied to grant role "(${RESERVED})"$`)),
      hint: expect.stringContaining('reserved on Lakebase'),
    });
    expect(await reservedMemberships()).toBe(0);
  });

  // paths PG15 itself refuses; kept here so that a change of server or patch level that opens one shows up
  const refusedByPostgres: [string, string][] = [
    ['ALTER GROUP pg_execute_server_program ADD USER own', '42939'], // "role name is reserved"
    ["ALTER ROLE pg_execute_server_program LOGIN PASSWORD 'x'", '42939'],
    ['ALTER ROLE pg_execute_server_program RENAME TO esc', '42939'],
    ['GRANT pg_execute_server_program TO own GRANTED BY cloud_admin', '42501'],
    ['ALTER ROLE own SUPERUSER', '42501'],
    ['CREATE ROLE esc4 SUPERUSER', '42501'],
    ['CREATE ROLE esc5 REPLICATION', '42501'],
    ["ALTER ROLE cloud_admin PASSWORD 'x'", '42501'],
    ['SET ROLE pg_execute_server_program', '42501'],
    ['SET ROLE cloud_admin', '42501'],
    ['SET SESSION AUTHORIZATION cloud_admin', '42501'],
    ["UPDATE pg_authid SET rolsuper = true WHERE rolname = 'own'", '42501'], // pg_write_all_data skips catalogs
    ["INSERT INTO pg_auth_members VALUES ('pg_execute_server_program'::regrole, 'own'::regrole, 10, false)", '42501'],
    ["ALTER ROLE own SET session_preload_libraries = 'x'", '42501'],
    ["ALTER SYSTEM SET shared_preload_libraries = ''", '42501'],
  ];
  it.each(refusedByPostgres)('%s', async (sql, code) => {
    await expect(own.query(sql)).rejects.toMatchObject({ code });
    expect(await reservedMemberships()).toBe(0);
  });

  it('a grant in a function, a caught exception or a transaction is undone too', async () => {
    await own.query(`DO $$ BEGIN
      EXECUTE 'GRANT pg_execute_server_program TO own';
    EXCEPTION WHEN insufficient_privilege THEN NULL; END $$`);
    await own.query(`CREATE FUNCTION own_grant() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
      AS $$ BEGIN GRANT pg_execute_server_program TO own; END $$`);
    await expect(own.query('SELECT own_grant()')).rejects.toMatchObject({ code: '42501' });
    await own.query('BEGIN');
    await expect(own.query('GRANT pg_write_server_files TO own')).rejects.toMatchObject({ code: '42501' });
    await own.query('COMMIT'); // answers ROLLBACK
    expect(await reservedMemberships()).toBe(0);
  });

  it('COPY to or from a program or a server file stays refused', async () => {
    const marker = path.join(root, 'pwned');
    for (const sql of [
      `COPY (SELECT 1) TO PROGRAM 'id > ${marker}'`,
      `COPY pg_class FROM PROGRAM 'id > ${marker}'`,
      `COPY (SELECT 1) TO '${marker}'`,
      `SELECT pg_read_file('${path.join(dataDir, 'postgresql.conf')}')`,
    ]) {
      await expect(own.query(sql), sql).rejects.toMatchObject({ code: '42501' });
    }
    expect(existsSync(marker)).toBe(false);
  });
});

describe('what the owner and the superuser may still do', () => {
  it('ordinary role management works for the owner', async () => {
    await own.query('CREATE ROLE app LOGIN');
    await own.query('GRANT app TO own');
    await own.query('GRANT pg_monitor TO app');
    await own.query('CREATE ROLE helper ROLE own'); // makes own a member of helper: harmless
    await own.query('ALTER GROUP helper ADD USER app');
    await own.query("ALTER ROLE app PASSWORD 'app-secret' CONNECTION LIMIT 5");
    await own.query('REVOKE pg_monitor FROM app');
    const r = await own.query(`SELECT pg_has_role('own', 'app', 'MEMBER') AS a, pg_has_role('app', 'helper', 'MEMBER') AS h`);
    expect(r.rows[0]).toEqual({ a: true, h: true });
    const app = await connect('app');
    expect((await app.query('SELECT current_user AS u')).rows[0].u).toBe('app');
  });

  it('the superuser is not restricted; while a reserved membership exists, owner role DDL fails closed', async () => {
    await admin.query('GRANT pg_execute_server_program TO victim');
    await admin.query(`COPY (SELECT 1) TO PROGRAM 'cat > /dev/null'`);
    expect(await reservedMemberships()).toBe(1);
    await expect(own.query('CREATE ROLE later')).rejects.toMatchObject({ code: '42501' });
    await admin.query('REVOKE pg_execute_server_program FROM victim');
    await own.query('CREATE ROLE later');
  });
});
