// `lakebase lake ...` against a real `lakebase start`, through the CLI only (plus `pg` to make and read tables):
// a table with rows becomes a lake table (its location printed), is exported to Parquet (--wait follows it to the
// end), and the Parquet file becomes a synced table in Postgres with the same rows; bad usage exits 2 with a message.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLakebaseStack } from './support/lakebase-stack.ts';
import type { LakebaseStack } from './support/lakebase-stack.ts';
import type { J } from './support/neonctl.ts';

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

const CLI = fileURLToPath(new URL('../cli/lakebase.ts', import.meta.url));
let stack: LakebaseStack;

beforeAll(async () => {
  stack = await startLakebaseStack({ verbose: false });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

/** `lakebase --dir <the stack> ARGS`: the API and the project from its local.json, no LAKEBASE_* variable. */
function lakebase(args: string[]): Promise<Ran> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('LAKEBASE_')) env[k] = v;
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, '--dir', stack.dir, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

async function ok(args: string[]): Promise<Ran> {
  const r = await lakebase(args);
  expect(r.code, `lakebase ${args.join(' ')}\n${r.stderr}\n${stack.log().slice(-3000)}`).toBe(0);
  return r;
}

const json = async (args: string[]): Promise<J> => JSON.parse((await ok([...args, '--json'])).stdout) as J;

describe('lakebase lake', () => {
  it('lake table, Parquet export (--wait), synced table with the same rows, delete', async () => {
    const c = new pg.Client({ connectionString: stack.project.connectionString });
    await c.connect();
    try {
      await c.query('CREATE TABLE t (id int PRIMARY KEY, name text)');
      await c.query(`INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, NULL)`);

      const made = await json(['lake', 'tables', 'create', 'public.t']);
      expect(made).toMatchObject({ source_table: 'public.t', location: expect.stringMatching(/^file:\/\/\//) });
      const shown = await ok(['lake', 'tables', 'get', made.id]);
      expect(shown.stdout).toContain(made.location);
      expect((await json(['lake', 'tables', 'list', '--branch', 'main'])).map((t: J) => t.id)).toEqual([made.id]);

      const exp = await lakebase(['lake', 'exports', 'create', 'public.t', '--wait', '--format', 'parquet', '--json']);
      expect(exp.code, exp.stderr).toBe(0);
      expect(exp.stderr).toMatch(/export \S+: finished, 1\/1 tables, 3 rows/);
      const x = JSON.parse(exp.stdout) as J;
      expect(x).toMatchObject({ status: 'finished', format: 'parquet', progress: { rows_written: 3 } });
      const parquet = x.tables[0].location as string;
      expect(parquet).toMatch(/\.parquet$/);
      expect((await json(['lake', 'exports'])).map((e: J) => e.id)).toEqual([x.id]);
      expect((await ok(['lake', 'exports', 'get', x.id])).stdout).toContain(parquet);

      const synced = await json(['lake', 'synced-tables', 'create', '--source', parquet, '--target', 'public.t_copy']);
      expect(synced).toMatchObject({ status: 'ready', source_format: 'parquet', rows_loaded: 3 });
      const copy = await c.query<{ id: number; name: string | null }>('SELECT id, name FROM public.t_copy ORDER BY id');
      expect(copy.rows.map((r) => [Number(r.id), r.name])).toEqual([[1, 'one'], [2, 'two'], [3, null]]);
      expect((await json(['lake', 'synced-tables'])).map((s: J) => s.id)).toEqual([synced.id]);

      await json(['lake', 'tables', 'delete', made.id]);
      expect(await json(['lake', 'tables'])).toEqual([]);
    } finally {
      await c.end();
    }
  });

  it('bad usage exits 2 with a message, before asking the API', async () => {
    const cases: [string[], RegExp][] = [
      [['lake'], /usage:/],
      [['lake', 'lakes'], /unknown lake command "lakes"/],
      [['lake', 'tables', 'create'], /lake tables create SCHEMA\.TABLE/],
      [['lake', 'tables', 'get', 'a', 'b'], /usage:/],
      [['lake', 'tables', 'frob'], /unknown subcommand "frob"/],
      [['lake', 'synced-tables', 'create', '--source', 'file:///x.parquet'], /needs --source URI and --target/],
      [['lake', 'synced-tables', 'get', 'x', '--refresh', 'sometimes'], /takes no --refresh/],
      [['lake', 'exports', 'create'], /exports create TABLE/],
      [['lake', 'exports', 'create', 't', '--format', 'csv'], /--format must be iceberg or parquet/],
      [['lake', 'exports', 'create', 't', '--at', 'yesterday'], /neither an LSN/],
      [['lake', 'exports', 'get', 'x', '--wait'], /takes no --wait/],
      [['lake', 'tables', '--bogus'], /Unknown option '--bogus'/],
    ];
    const ran = await Promise.all(cases.map(([args]) => lakebase(args)));
    cases.forEach(([args, message], i) => {
      expect(ran[i].code, `lakebase ${args.join(' ')}: ${ran[i].stderr}`).toBe(2);
      expect(ran[i].stderr).toMatch(message);
    });
  });
});
