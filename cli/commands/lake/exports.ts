// lakebase lake exports: tables of a branch as of an LSN, a time or the head, written to the project's bucket as
// Iceberg tables or Parquet files (control-plane/api/exports.ts). An export runs in the background; --wait follows
// it to the end (progress on stderr, so that stdout stays the record) and fails the command when the export fails.
import { parseArgs } from 'node:util';
import type { ExportView } from '../../../control-plane/api/exports.ts';
import { point } from '../branches.ts';
import type { CommandContext } from '../context.ts';
import { CliError } from '../errors.ts';
import { type Out, table } from '../output.ts';
import { BRANCH_OPTION, branchPath, idPath, oneOf, positionalsOf, subcommand, usageError } from './common.ts';

export const EXPORTS_USAGE = `  lakebase lake exports [list] [--branch B]
  lakebase lake exports create TABLE [TABLE...] [--at LSN|TIMESTAMP] [--format iceberg|parquet] [--database D]
                               [--wait] [--branch B]                 (--wait: until it finishes; exit 1 if it fails)
  lakebase lake exports get ID [--branch B]`;

const FORMATS = ['iceberg', 'parquet'] as const;
const COLUMNS = ['id', 'format', 'status', 'lsn', 'timestamp', 'tables', 'rows', 'created_at', 'finished_at', 'error'];
const OPTIONS = {
  ...BRANCH_OPTION, at: { type: 'string' }, format: { type: 'string' }, database: { type: 'string' }, wait: { type: 'boolean' },
} as const;
/** How often --wait asks (an export of small tables takes about a second). */
const POLL_MS = 300;

/** An export as one line of a table: its progress as "done/total" tables and rows written. */
const summary = (x: ExportView) => ({ ...x, tables: `${x.progress.tables_done}/${x.progress.tables_total}`, rows: x.progress.rows_written });

/** One export: the record as JSON, or its line then a table of its tables (where each went). */
function showOne(out: Out, x: ExportView): void {
  out.write(out.json ? JSON.stringify(x, null, 2) : `${table([summary(x)], COLUMNS)}\n\n${table(x.tables, ['name', 'status', 'rows', 'location'])}`);
}

/** Polls the export until it is no longer running, saying on stderr how far it got whenever that changes. */
async function settle(ctx: CommandContext, path: string, first: ExportView): Promise<ExportView> {
  let x = first;
  let said = '';
  for (;;) {
    const line = `export ${x.id}: ${x.status}, ${x.progress.tables_done}/${x.progress.tables_total} tables, ${x.progress.rows_written} rows`;
    if (line !== said) process.stderr.write(line + '\n');
    said = line;
    if (x.status !== 'running') return x;
    await new Promise((r) => setTimeout(r, POLL_MS));
    x = (await ctx.api.call<{ export: ExportView }>('GET', path)).export;
  }
}

async function create(ctx: CommandContext, tables: string[], values: { branch?: string; at?: string; format?: string; database?: string; wait?: boolean }): Promise<void> {
  const format = oneOf('format', values.format, FORMATS, EXPORTS_USAGE);
  const body = { export: { tables, ...point(values.at, 'lsn', 'timestamp'), ...(format ? { format } : {}), ...(values.database ? { database: values.database } : {}) } };
  const base = `${await branchPath(ctx.api, values.branch)}/exports`;
  const made = (await ctx.api.call<{ export: ExportView }>('POST', base, body)).export;
  if (!values.wait) return showOne(ctx.out, made);
  const x = await settle(ctx, `${base}/${idPath(made.id)}`, made);
  showOne(ctx.out, x);
  if (x.status === 'failed') throw new CliError(`export ${x.id} failed: ${x.error ?? 'no reason given'}${x.error_code ? ` (${x.error_code})` : ''}`);
}

export async function lakeExports(ctx: CommandContext): Promise<void> {
  const { sub, rest } = subcommand(ctx.args);
  const { values, positionals } = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true });
  const { api, out } = ctx;
  const extra = sub !== 'list' && sub !== 'get' ? undefined : (['at', 'format', 'database', 'wait'] as const).find((k) => values[k] !== undefined);
  if (extra) throw usageError(EXPORTS_USAGE, `exports ${sub} takes no --${extra}`);
  switch (sub) {
    case 'list': {
      positionalsOf(positionals, 0, EXPORTS_USAGE);
      const r = await api.call<{ exports: ExportView[] }>('GET', `${await branchPath(api, values.branch)}/exports`);
      return out.write(out.json ? JSON.stringify(r.exports, null, 2) : table(r.exports.map(summary), COLUMNS));
    }
    case 'create':
      return create(ctx, positionalsOf(positionals, 1, EXPORTS_USAGE, true), values);
    case 'get': {
      const [id] = positionalsOf(positionals, 1, EXPORTS_USAGE);
      const r = await api.call<{ export: ExportView }>('GET', `${await branchPath(api, values.branch)}/exports/${idPath(id)}`);
      return showOne(out, r.export);
    }
    default:
      throw usageError(EXPORTS_USAGE, `unknown subcommand ${JSON.stringify(sub)}`);
  }
}
