// lakebase dump [BRANCH] [--role R] [--database D] [--file F]: a plain-SQL pg_dump of a branch's database through
// the proxy, by a pg_dump of the server's own major version (pg_dump refuses a newer server): Debian's pg_dump 15
// for a `postgres`-engine project (pg_version 15), PGlite's pg_dump 18 build for a `pglite` one (pg_version 18,
// cli/pg-dump/wasm-dump.ts; it always writes INSERT statements rather than COPY).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { NeonProject } from '../../control-plane/api/neon-types.ts';
import { PG_BIN } from '../../compute/postgres/environment.ts';
import { wasmDump } from '../pg-dump/wasm-dump.ts';
import type { DumpTarget } from '../pg-dump/wasm-dump.ts';
import type { CommandContext } from './context.ts';
import { connectionUri, proxyTarget } from './connection-string.ts';
import { CliError } from './errors.ts';

const USAGE = 'usage: lakebase dump [BRANCH] [--role R] [--database D] [--file F]';

/** Where the dump connects: the branch's connection URI, through the proxy (proxyTarget). */
async function target(ctx: CommandContext, argv: string[]): Promise<DumpTarget> {
  const c = proxyTarget(ctx, await connectionUri(ctx, argv));
  return { host: c.host, port: c.port, user: String(c.user), password: String(c.password), database: String(c.database), options: c.options };
}

/** Debian's pg_dump 15, its output to `file` or to this process's stdout, its errors to stderr. */
async function nativeDump(t: DumpTarget, file: string | undefined): Promise<void> {
  const bin = `${PG_BIN}/pg_dump`;
  if (!existsSync(bin)) throw new CliError(`${bin} is missing: apt-get install postgresql-client-15 (the postgres engine is PostgreSQL 15, and pg_dump refuses a newer server than itself)`);
  const args = ['-h', t.host, '-p', String(t.port), '-U', t.user, '-d', t.database, '--no-password', ...(file ? ['-f', file] : [])];
  const env: NodeJS.ProcessEnv = { ...process.env, PGPASSWORD: t.password };
  if (t.options) env.PGOPTIONS = t.options;
  else delete env.PGOPTIONS;
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
  if (code !== 0) throw new CliError(`pg_dump failed (exit status ${code}); its message is above`);
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The WebAssembly pg_dump's error, readable: its stderr comes as one run of text, each message named after this
 * script (its argv[0]), after a complaint that it cannot find its own binary.
 */
function wasmDumpMessage(message: string): string {
  return message
    .replace(/^pg_dump failed with exit code \d+\.\s*Error message:\s*/, '')
    .replace(/invalid binary "[^"]*": No such file or directory/g, '')
    .replace(new RegExp(`\\s*(?:${escapeRegExp(basename(process.argv[1] ?? ''))}|pg_dump): (error|detail|hint|warning): `, 'g'), '\n  pg_dump: $1: ')
    .trim();
}

export async function dump(ctx: CommandContext): Promise<void> {
  const { values, positionals } = parseArgs({
    args: ctx.args, allowPositionals: true,
    options: { role: { type: 'string' }, database: { type: 'string' }, file: { type: 'string', short: 'f' } },
  });
  if (positionals.length > 1) throw new CliError(USAGE, 2);
  const pid = await ctx.api.projectId();
  const { project } = await ctx.api.call<{ project: NeonProject }>('GET', `/projects/${pid}`);
  const uriArgs = [...positionals, ...(values.role ? ['--role', values.role] : []), ...(values.database ? ['--database', values.database] : [])];
  const t = await target(ctx, uriArgs);
  if (project.pg_version === 15) return nativeDump(t, values.file);
  if (project.pg_version !== 18) throw new CliError(`project ${pid} is Postgres ${project.pg_version}: lakebase dump knows pg_dump for 15 (the postgres engine) and 18 (pglite)`);
  let sql: string;
  try {
    sql = await wasmDump(t);
  } catch (e) {
    throw new CliError(`PGlite's pg_dump failed: ${wasmDumpMessage((e as Error).message)}`);
  }
  if (values.file) await writeFile(values.file, sql);
  else await new Promise<void>((resolve, reject) => process.stdout.write(sql, (err) => (err ? reject(err) : resolve())));
}
