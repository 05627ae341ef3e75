// The `lakebase` CLI against a real `lakebase start` as a person runs it (not --verbose): a command run while the
// start is still starting waits for it; global flags go before or after the command; `sql` with several statements
// prints each result; the services log to DIR/logs and `lakebase logs` shows them (the terminal only progress,
// restarts and errors); `lakebase dump` of a pglite and of a postgres project restores with psql, same rows.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLakebaseStack } from './support/lakebase-stack.ts';
import type { LakebaseStack } from './support/lakebase-stack.ts';

type J = Record<string, any>;
interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

const CLI = fileURLToPath(new URL('../cli/lakebase.ts', import.meta.url));
let stack: LakebaseStack;
let dir: string;
let scratch: string;
/** `lakebase --dir DIR --json branches list`, run as soon as the start had marked its directory. */
let early: Ran;

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Ran> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('LAKEBASE_') && !k.startsWith('PG')) base[k] = v;
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: scratch, env: { ...base, ...env }, timeout: 120_000, maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const lakebase = (args: string[], env?: Record<string, string>) => run(process.execPath, [CLI, ...args], env);

async function ok(args: string[]): Promise<string> {
  const r = await lakebase(args);
  expect(r.code, `lakebase ${args.join(' ')}\n${r.stderr}\n${stack?.log().slice(-3000)}`).toBe(0);
  return r.stdout;
}

async function psql(uri: string, args: string[]): Promise<string> {
  const r = await run('psql', ['-X', '-v', 'ON_ERROR_STOP=1', ...args, uri]);
  expect(r.code, `psql ${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

/** A URI for psql with the endpoint in `options` (a local URI may carry it in the password: endpoint=<id>$<password>). */
function forPsql(uri: string): string {
  const u = new URL(uri);
  const m = /^endpoint=([^$;]*)[$;](.*)$/s.exec(decodeURIComponent(u.password));
  if (!m) return uri;
  u.password = encodeURIComponent(m[2]);
  u.searchParams.set('options', `endpoint=${m[1]}`);
  return u.toString();
}

async function newProject(pgVersion?: number): Promise<{ id: string; uri: string }> {
  const r = await stack.api<J>('POST', '/projects', { project: { name: `p${pgVersion ?? ''}`, ...(pgVersion ? { pg_version: pgVersion } : {}) } });
  return { id: r.project.id, uri: forPsql(r.connection_uris[0].connection_uri) };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lakebase-cli-start-'));
  scratch = await mkdtemp(join(tmpdir(), 'lakebase-cli-cwd-'));
  const starting = startLakebaseStack({ dir, verbose: false });
  let settled = false;
  void starting.then(() => (settled = true), () => (settled = true));
  while (!existsSync(join(dir, 'starting.pid')) && !settled) await new Promise((r) => setTimeout(r, 20));
  const command = lakebase(['--dir', dir, '--json', 'branches', 'list']);
  stack = await starting;
  early = await command;
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  for (const d of [dir, scratch]) if (d) await rm(d, { recursive: true, force: true });
});

describe('lakebase commands and lakebase start', () => {
  it('a command run while `lakebase start` is starting waits for it, then succeeds; without a lakebase it fails at once', async () => {
    expect(early.code, `${early.stderr}\n${stack.log().slice(-3000)}`).toBe(0);
    expect(early.stderr).toContain('waiting for `lakebase start`');
    expect((JSON.parse(early.stdout) as J[]).map((b) => b.name)).toEqual(['main']);
    expect(existsSync(join(dir, 'starting.pid'))).toBe(false);

    const none = await lakebase(['--dir', join(scratch, 'nothing'), 'branches', 'list']);
    expect(none.code).toBe(1);
    expect(none.stderr).not.toContain('waiting');
    expect(none.stderr).toContain('no lakebase API configured');
    // A start killed -9 while starting leaves its marker: a pid that is gone means nothing is starting.
    const gone = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => gone.once('exit', r));
    const killed = join(scratch, 'killed');
    await mkdir(killed);
    await writeFile(join(killed, 'starting.pid'), `${gone.pid}\n`);
    const stale = await lakebase(['--dir', killed, 'branches', 'list']);
    expect(stale.code).toBe(1);
    expect(stale.stderr).not.toContain('waiting');
    expect(stale.stderr).toContain('no lakebase API configured');
  });

  it('takes the global flags before or after the command', async () => {
    const before = JSON.parse(await ok(['--json', '--dir', dir, 'branches', 'list'])) as J[];
    const after = JSON.parse(await ok(['branches', 'list', '--dir', dir, '--json'])) as J[];
    expect(before).toEqual(after);
    expect(before[0].project_id).toBe(stack.project.id);
    expect(JSON.parse(await ok([`--dir=${dir}`, '--json', 'sql', 'SELECT 1 AS one']))).toEqual({ command: 'SELECT', rowCount: 1, rows: [{ one: 1 }] });
    expect(await ok(['--dir', dir, 'projects', 'list'])).toMatch(/^id\s+name/);
  });

  it('sql runs every statement of a multi-statement string and prints each result (table and --json)', async () => {
    const text = await ok(['--dir', dir, 'sql', 'CREATE TABLE multi (id int, label text); INSERT INTO multi VALUES (1, $$a$$), (2, $$b$$); SELECT id, label FROM multi ORDER BY id']);
    const blocks = text.trim().split('\n\n');
    expect(blocks[0]).toBe('CREATE'); // pg keeps the first word of a command tag
    expect(blocks[1]).toBe('INSERT 2');
    expect(blocks[2].split('\n').map((l) => l.split(/\s+/))).toEqual([['id', 'label'], [expect.stringMatching(/^-+$/), expect.stringMatching(/^-+$/)], ['1', 'a'], ['2', 'b']]);
    const json = JSON.parse(await ok(['--json', '--dir', dir, 'sql', 'UPDATE multi SET label = $$c$$ WHERE id = 2; SELECT label FROM multi ORDER BY id; DELETE FROM multi']));
    expect(json).toEqual([
      { command: 'UPDATE', rowCount: 1, rows: [] },
      { command: 'SELECT', rowCount: 2, rows: [{ label: 'a' }, { label: 'c' }] },
      { command: 'DELETE', rowCount: 2, rows: [] },
    ]);
  });

  it('lakebase dump of a pglite project (PGlite\'s pg_dump 18) restores with psql into a new project: same rows', async () => {
    await ok(['--dir', dir, 'sql', "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, at timestamptz DEFAULT now()); INSERT INTO items (id, name) SELECT g, 'item ' || g || ' ''quoted''' FROM generate_series(1, 1500) g; CREATE INDEX items_name ON items (name)"]);
    const file = join(scratch, 'pglite.sql');
    await ok(['--dir', dir, 'dump', 'main', '--file', file]);
    const stdout = await ok(['--dir', dir, 'dump']);
    expect(stdout).toContain('-- PostgreSQL database dump');
    expect(stdout).toContain('Dumped from database version 18');
    const target = await newProject();
    await psql(target.uri, ['-q', '-f', file]);
    const count = (uri: string) => psql(uri, ['-tAc', "SELECT count(*) || ' ' || sum(id) || ' ' || count(DISTINCT name) FROM items"]);
    expect(await count(target.uri)).toBe(await count(stack.project.connectionString));
    expect(await psql(target.uri, ['-tAc', "SELECT indexname FROM pg_indexes WHERE tablename = 'items' ORDER BY 1"])).toBe('items_name\nitems_pkey\n');
  }, 180_000);

  it('lakebase dump of a postgres project (Debian\'s pg_dump 15) restores with psql into a new project: same rows', async () => {
    const source = await newProject(15);
    const at = ['--dir', dir, '--project', source.id];
    await ok([...at, 'sql', "CREATE TABLE pg_items (id int PRIMARY KEY, name text); INSERT INTO pg_items SELECT g, 'row ' || g FROM generate_series(1, 1200) g"]);
    const file = join(scratch, 'postgres.sql');
    await ok([...at, 'dump', '--file', file]);
    const target = await newProject(15);
    // every statement of the dump runs as the project's role (the engine's own pg_stat_statements has no comment
    // for the dump to restore, which only its owner could)
    const restore = await run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', file, target.uri]);
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.stderr).not.toContain('ERROR');
    const count = (uri: string) => psql(uri, ['-tAc', "SELECT count(*) || ' ' || sum(id) FROM pg_items"]);
    expect(await count(target.uri)).toBe('1200 720600\n');
    expect(await count(source.uri)).toBe('1200 720600\n');
  }, 180_000);

  it('each service logs to DIR/logs/<service>.log; `lakebase logs` shows them; the terminal has progress and restarts, not log lines', async () => {
    const services = ['compute-host-1', 'control-plane', 'proxy', 'storage-node-1'];
    expect((await readdir(join(dir, 'logs'))).sort()).toEqual(services.map((s) => `${s}.log`));
    const terminal = stack.output();
    for (const s of services) expect(terminal).toMatch(new RegExp(`lakebase: ${s} is up \\(pid \\d+`));
    expect(terminal).toContain('lakebase is running');
    expect(terminal.split('\n').filter((l) => l.startsWith('{'))).toEqual([]);

    const all = (await ok(['logs', '--dir', dir])).trim().split('\n');
    for (const s of services) expect(all.some((l) => new RegExp(`^${s} +\\| \\{`).test(l)), s).toBe(true);
    expect(all.some((l) => /^control-plane +\| .*"control plane listening"/.test(l))).toBe(true);
    const proxy = (await ok(['--dir', dir, 'logs', 'proxy', '--lines', '3'])).trim().split('\n');
    expect(proxy.length).toBe(3);
    for (const l of proxy) expect(l.startsWith('{')).toBe(true);

    // A crash: one line on the terminal naming the log, and the service back; the log file tells it too.
    const pid = JSON.parse(await readFile(join(dir, 'services.json'), 'utf8')).proxy as number;
    const follow = spawn(process.execPath, [CLI, 'logs', 'proxy', '--follow', '--lines', '0', '--dir', dir]);
    let followed = '';
    follow.stdout.on('data', (d: Buffer) => (followed += d.toString()));
    try {
      process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 600 && !stack.output().includes('lakebase: proxy is back'); i++) await new Promise((r) => setTimeout(r, 100));
      expect(stack.output()).toContain(`lakebase: proxy exited (SIGKILL); restarting in 250 ms; its log: ${join(dir, 'logs', 'proxy.log')}`);
      expect(stack.output()).toContain('lakebase: proxy is back');
      for (let i = 0; i < 100 && !followed.includes('restarting proxy'); i++) await new Promise((r) => setTimeout(r, 100));
      expect(followed).toContain('"proxy exited (SIGKILL); restarting in 250 ms"');
      expect(followed).toContain('restarting proxy (attempt 1)');
    } finally {
      follow.kill();
    }
    const after = await ok(['--dir', dir, 'sql', 'SELECT 1 AS back']);
    expect(after).toContain('back');
  }, 120_000);
});

describe('the terminal of lakebase start (cli/service-logs.ts)', () => {
  it('says a service\'s error line, and a burst of plain output (a stack trace), in one line naming the log file', async () => {
    const { ServiceLogs } = await import('../cli/service-logs.ts');
    const said: string[] = [];
    const logs = new ServiceLogs(scratch, 'normal', (s) => said.push(s));
    const file = join(scratch, 'logs', 'compute-host.log');
    logs.line('compute-host', JSON.stringify({ level: 30, time: 1, msg: 'fine' }), 'stdout');
    logs.line('compute-host', JSON.stringify({ level: 50, time: 2, msg: 'compute failed', err: { message: 'disk full' } }), 'stdout');
    for (const l of ['node:internal/x:1', '    throw err;', 'Error: listen EADDRINUSE: address already in use', '    at Server.listen']) logs.line('compute-host', l, 'stderr');
    logs.event({ kind: 'exited', service: 'compute-host', how: '1', wasReady: true, restartInMs: 500 });
    logs.close();
    expect(said).toEqual([
      `lakebase: compute-host: compute failed: disk full (more in ${file})\n`,
      `lakebase: compute-host: Error: listen EADDRINUSE: address already in use (more in ${file})\n`,
      `lakebase: compute-host exited (1); restarting in 500 ms; its log: ${file}\n`,
    ]);
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(lines.length).toBe(7);
    expect(lines[6]).toContain('"compute-host exited (1); restarting in 500 ms"');
  });
});
