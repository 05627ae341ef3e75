// lakebase sql "STATEMENT" [BRANCH options as connection-string]: runs one statement through the proxy with `pg`.
// The proxy's address comes from local.json (or LAKEBASE_PG_HOST/LAKEBASE_PG_PORT); the endpoint goes in
// `options`, which the proxy reads for IP hosts, so names under the base domain need not resolve.
import pg from 'pg';
import type { CommandContext } from './context.ts';
import { connectionUri } from './connection-string.ts';
import { CliError } from './errors.ts';
import { table } from './output.ts';
import { dialableHost, pgConfigFromUri } from '../../lib/pg-target.ts';

export async function sql(ctx: CommandContext): Promise<void> {
  const [statement, ...rest] = ctx.args;
  if (!statement) throw new CliError('usage: lakebase sql "SELECT 1" [BRANCH] [--role R] [--database D]', 2);
  const uri = await connectionUri(ctx, rest);
  if (!ctx.pg && !dialableHost(new URL(uri))) {
    throw new CliError('where is the proxy? run `lakebase start` here (local.json), or set LAKEBASE_PG_HOST and LAKEBASE_PG_PORT');
  }
  const target = pgConfigFromUri(uri, ctx.pg);
  const { host, port } = target;
  const client = new pg.Client({ ...target, connectionTimeoutMillis: 60_000 });
  try {
    await client.connect();
  } catch (e) {
    throw new CliError(`cannot connect to the proxy at ${host}:${port}: ${(e as Error).message}; is \`lakebase start\` running?`);
  }
  try {
    const r = await client.query(statement);
    if (ctx.out.json) ctx.out.write(JSON.stringify({ command: r.command, rowCount: r.rowCount, rows: r.rows }, null, 2));
    else ctx.out.write(r.fields.length ? table(r.rows as Record<string, unknown>[], r.fields.map((f) => f.name)) : `${r.command} ${r.rowCount ?? ''}`.trim());
  } catch (e) {
    throw new CliError(`Postgres: ${(e as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
