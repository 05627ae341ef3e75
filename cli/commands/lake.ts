// lakebase lake tables | synced-tables | exports: the lakehouse API (docs/lakehouse.md) from the command line, one
// module per kind of record (cli/commands/lake/), each on a branch (--branch, default: the project's default).
import type { CommandContext } from './context.ts';
import { usageError } from './lake/common.ts';
import { EXPORTS_USAGE, lakeExports } from './lake/exports.ts';
import { SYNCED_USAGE, syncedTables } from './lake/synced-tables.ts';
import { lakeTables, TABLES_USAGE } from './lake/tables.ts';

const GROUPS: Record<string, (ctx: CommandContext) => Promise<void>> = {
  tables: lakeTables,
  'synced-tables': syncedTables,
  exports: lakeExports,
};
const ALIASES: Record<string, string> = { table: 'tables', 'synced-table': 'synced-tables', synced: 'synced-tables', export: 'exports' };

export const LAKE_USAGE = [TABLES_USAGE, SYNCED_USAGE, EXPORTS_USAGE].join('\n');

export async function lake(ctx: CommandContext): Promise<void> {
  const [word, ...args] = ctx.args;
  const group = word === undefined ? undefined : GROUPS[ALIASES[word] ?? word];
  if (!group) throw usageError(LAKE_USAGE, word === undefined ? undefined : `unknown lake command ${JSON.stringify(word)}`);
  return group({ ...ctx, args });
}
