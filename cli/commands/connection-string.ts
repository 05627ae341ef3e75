// lakebase connection-string [BRANCH] [--role R] [--database D] [--pooled]
import { parseArgs } from 'node:util';
import type { CommandContext } from './context.ts';

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
