// lakebase lake tables: a branch's tables kept as Apache Iceberg tables in the project's bucket, as they change
// (control-plane/api/lake-tables.ts). Creation prints the record with its location, which other engines open.
import { parseArgs } from 'node:util';
import type { LakeTableView } from '../../../control-plane/api/lake-tables.ts';
import type { CommandContext } from '../context.ts';
import { show } from '../output.ts';
import { BRANCH_OPTION, branchPath, idPath, positionalsOf, subcommand, usageError } from './common.ts';

export const TABLES_USAGE = `  lakebase lake tables [list] [--branch B]
  lakebase lake tables create SCHEMA.TABLE [--branch B]             keep the table in Iceberg, as it changes
  lakebase lake tables get ID [--branch B]
  lakebase lake tables delete ID [--branch B]`;

const COLUMNS = ['id', 'source_table', 'status', 'last_synced_lsn', 'last_synced_at', 'location'];
const ONE = [...COLUMNS, 'history_location', 'status_message'];

export async function lakeTables(ctx: CommandContext): Promise<void> {
  const { sub, rest } = subcommand(ctx.args);
  const { values, positionals } = parseArgs({ args: rest, options: BRANCH_OPTION, allowPositionals: true });
  const { api, out } = ctx;
  switch (sub) {
    case 'list': {
      positionalsOf(positionals, 0, TABLES_USAGE);
      const r = await api.call<{ lake_tables: LakeTableView[] }>('GET', `${await branchPath(api, values.branch)}/lake_tables`);
      return show(out, r.lake_tables, r.lake_tables, COLUMNS);
    }
    case 'create': {
      const [table] = positionalsOf(positionals, 1, TABLES_USAGE);
      const r = await api.call<{ lake_table: LakeTableView }>('POST', `${await branchPath(api, values.branch)}/lake_tables`, { lake_table: { source_table: table } });
      return show(out, r.lake_table, [r.lake_table], ONE);
    }
    case 'get':
    case 'delete': {
      const [id] = positionalsOf(positionals, 1, TABLES_USAGE);
      const path = `${await branchPath(api, values.branch)}/lake_tables/${idPath(id)}`;
      const r = await api.call<{ lake_table: LakeTableView }>(sub === 'get' ? 'GET' : 'DELETE', path);
      return show(out, r.lake_table, [r.lake_table], ONE);
    }
    default:
      throw usageError(TABLES_USAGE, `unknown subcommand ${JSON.stringify(sub)}`);
  }
}
