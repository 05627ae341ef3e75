// lakebase lake synced-tables: Iceberg tables or Parquet files in the project's bucket loaded into a read-only
// Postgres table of a branch, refreshed on demand (control-plane/api/synced-tables.ts). Loads finish in the call.
import { parseArgs } from 'node:util';
import type { SyncedTableView } from '../../../control-plane/api/synced-tables.ts';
import type { CommandContext } from '../context.ts';
import { show } from '../output.ts';
import { BRANCH_OPTION, branchPath, idPath, oneOf, positionalsOf, subcommand, usageError } from './common.ts';

export const SYNCED_USAGE = `  lakebase lake synced-tables [list] [--branch B]
  lakebase lake synced-tables create --source URI --target SCHEMA.TABLE [--refresh snapshot|incremental]
                                     [--database D] [--branch B]    load an Iceberg table or Parquet into Postgres
  lakebase lake synced-tables get | refresh | delete ID [--branch B]
                                     (refresh [--refresh snapshot|incremental]: this load's mode, else the table's)`;

const REFRESH = ['snapshot', 'incremental'] as const;
const COLUMNS = ['id', 'target_table', 'source_format', 'refresh', 'status', 'rows_loaded', 'last_refreshed_at', 'source_location'];
const ONE = [...COLUMNS, 'database', 'status_message'];
const OPTIONS = {
  ...BRANCH_OPTION, source: { type: 'string' }, target: { type: 'string' }, refresh: { type: 'string' }, database: { type: 'string' },
} as const;

type Values = { branch?: string; source?: string; target?: string; refresh?: string; database?: string };

/** Options a subcommand does not take are usage errors, not silently ignored. */
function only(values: Values, allowed: (keyof Values)[], sub: string): void {
  const extra = (Object.keys(values) as (keyof Values)[]).find((k) => values[k] !== undefined && !allowed.includes(k));
  if (extra) throw usageError(SYNCED_USAGE, `synced-tables ${sub} takes no --${extra}`);
}

function createBody(values: Values): { synced_table: Record<string, string> } {
  if (!values.source || !values.target) throw usageError(SYNCED_USAGE, 'synced-tables create needs --source URI and --target SCHEMA.TABLE');
  const refresh = oneOf('refresh', values.refresh, REFRESH, SYNCED_USAGE);
  return {
    synced_table: {
      source_location: values.source, target_table: values.target,
      ...(refresh ? { refresh } : {}), ...(values.database ? { database: values.database } : {}),
    },
  };
}

export async function syncedTables(ctx: CommandContext): Promise<void> {
  const { sub, rest } = subcommand(ctx.args);
  const { values, positionals } = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true });
  const { api, out } = ctx;
  switch (sub) {
    case 'list': {
      only(values, ['branch'], sub);
      positionalsOf(positionals, 0, SYNCED_USAGE);
      const r = await api.call<{ synced_tables: SyncedTableView[] }>('GET', `${await branchPath(api, values.branch)}/synced_tables`);
      return show(out, r.synced_tables, r.synced_tables, COLUMNS);
    }
    case 'create': {
      positionalsOf(positionals, 0, SYNCED_USAGE);
      const body = createBody(values);
      const r = await api.call<{ synced_table: SyncedTableView }>('POST', `${await branchPath(api, values.branch)}/synced_tables`, body);
      return show(out, r.synced_table, [r.synced_table], ONE);
    }
    case 'get':
    case 'delete':
    case 'refresh': {
      only(values, sub === 'refresh' ? ['branch', 'refresh'] : ['branch'], sub);
      const [id] = positionalsOf(positionals, 1, SYNCED_USAGE);
      const refresh = oneOf('refresh', values.refresh, REFRESH, SYNCED_USAGE);
      const path = `${await branchPath(api, values.branch)}/synced_tables/${idPath(id)}`;
      const r = sub === 'refresh'
        ? await api.call<{ synced_table: SyncedTableView }>('POST', `${path}/refresh`, refresh ? { synced_table: { refresh } } : {})
        : await api.call<{ synced_table: SyncedTableView }>(sub === 'get' ? 'GET' : 'DELETE', path);
      return show(out, r.synced_table, [r.synced_table], ONE);
    }
    default:
      throw usageError(SYNCED_USAGE, `unknown subcommand ${JSON.stringify(sub)}`);
  }
}
