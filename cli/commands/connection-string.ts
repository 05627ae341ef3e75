// lakebase connection-string [BRANCH] [--role R] [--database D] [--pooled]
import { parseArgs } from 'node:util';
import type { ClientConfig } from 'pg';
import { dialableHost, pgConfigFromUri } from '../../lib/pg-target.ts';
import type { CommandContext } from './context.ts';
import { CliError } from './errors.ts';

export async function connectionUri(ctx: CommandContext, argv: string[]): Promise<string> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { role: { type: 'string' }, database: { type: 'string' }, pooled: { type: 'boolean' }, branch: { type: 'string' } },
  });
  const pid = await ctx.api.projectId();
  const b = await ctx.api.branch(pid, positionals[0] ?? values.branch);
  const q = new URLSearchParams({ branch_id: b.id, role_name: values.role ?? 'neondb_owner', database_name: values.database ?? 'neondb', pooled: String(values.pooled ?? false) });
  return (await ctx.api.call<{ uri: string }>('GET', `/projects/${pid}/connection_uri?${q}`)).uri;
}

export async function connectionString(ctx: CommandContext): Promise<void> {
  const uri = await connectionUri(ctx, ctx.args);
  ctx.out.write(ctx.out.json ? JSON.stringify({ uri }) : uri);
}

/**
 * Where `sql` and `dump` connect for a branch's connection URI: the proxy's address from local.json (or
 * LAKEBASE_PG_HOST/PORT) when the URI's host does not resolve here, with the endpoint in `options` and the password
 * proper (lib/pg-target.ts): the proxy then authenticates with SCRAM, which needs no TLS (PGlite's pg_dump has none).
 */
export function proxyTarget(ctx: CommandContext, uri: string): ClientConfig & { host: string; port: number } {
  if (!ctx.pg && !dialableHost(new URL(uri))) {
    throw new CliError('where is the proxy? run `lakebase start` here (local.json), or set LAKEBASE_PG_HOST and LAKEBASE_PG_PORT');
  }
  const c = pgConfigFromUri(uri, ctx.pg);
  return { ...c, host: String(c.host), port: Number(c.port) };
}
