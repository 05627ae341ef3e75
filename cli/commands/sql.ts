// lakebase sql "STATEMENTS" [BRANCH options as connection-string]: runs the statements (one simple query, so
// several separated by semicolons run in order, as one implicit transaction) through the proxy with `pg`, and
// prints each one's result.
// The proxy's address comes from local.json (or LAKEBASE_PG_HOST/LAKEBASE_PG_PORT), so names under the base
// domain need not resolve (proxyTarget).
import pg from 'pg';
import type { QueryResult } from 'pg';
import type { CommandContext } from './context.ts';
import { connectionUri, proxyTarget } from './connection-string.ts';
import { CliError } from './errors.ts';
import { table } from './output.ts';

export async function sql(ctx: CommandContext): Promise<void> {
  const [statement, ...rest] = ctx.args;
  if (!statement) throw new CliError('usage: lakebase sql "SELECT 1" [BRANCH] [--role R] [--database D]', 2);
  const target = proxyTarget(ctx, await connectionUri(ctx, rest));
  const { host, port } = target;
  const client = new pg.Client({ ...target, connectionTimeoutMillis: 60_000 });
  try {
    await client.connect();
  } catch (e) {
    throw new CliError(`cannot connect to the proxy at ${host}:${port}: ${(e as Error).message}; is \`lakebase start\` running?`);
  }
  try {
    // `pg` answers a query of several statements with one result per statement.
    const answer: QueryResult | QueryResult[] = await client.query(statement);
    const results = Array.isArray(answer) ? answer : [answer];
    if (ctx.out.json) {
      const shown = results.map((r) => ({ command: r.command, rowCount: r.rowCount, rows: r.rows }));
      ctx.out.write(JSON.stringify(shown.length === 1 ? shown[0] : shown, null, 2));
    } else ctx.out.write(results.map(block).join('\n\n'));
  } catch (e) {
    throw new CliError(`Postgres: ${(e as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** One statement's result for people: its rows as a table, or its command tag (INSERT 0 1). */
function block(r: QueryResult): string {
  if (r.fields?.length) return table(r.rows as Record<string, unknown>[], r.fields.map((f) => f.name));
  return `${r.command ?? ''} ${r.rowCount ?? ''}`.trim();
}
