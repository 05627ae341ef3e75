// The tables an export asks for, as the point in history has them: each one's columns with their Iceberg types and
// field ids (lake/sync/columns.ts, as a lake table gets them), and the names of those that do not exist there, so
// that an export naming one is refused before anything is written.
import type { AdminSqlResult } from '../../compute/host/api-types.ts';
import { type TableName, describeTableSql } from '../capture/capture-sql.ts';
import type { IcebergSchema } from '../iceberg/types.ts';
import { type SyncedColumn, currentSchema, parseDescription, syncedColumn } from '../sync/columns.ts';

/** Runs statements in the source database as its superuser; answers each statement's rows as text. */
export type SqlExec = (statements: string[]) => Promise<AdminSqlResult[]>;

export interface SourceTable {
  table: TableName;
  columns: SyncedColumn[];
  /** The Iceberg schema of the export: key columns required and identifier fields; none for a table without a key. */
  schema: IcebergSchema;
}

export const tableText = (t: TableName): string => `${t.schema}.${t.name}`;

/** Each table's columns, in one round trip; `missing` names the tables that are not there (or are no table). */
export async function describeTables(exec: SqlExec, tables: TableName[]): Promise<{ found: SourceTable[]; missing: string[] }> {
  const results = await exec(tables.map((t) => describeTableSql(null, t)));
  const found: SourceTable[] = [];
  const missing: string[] = [];
  tables.forEach((table, i) => {
    const described = parseDescription(results[i]?.rows ?? []);
    if (described.length === 0) {
      missing.push(tableText(table));
      return;
    }
    let id = 0;
    const columns = described.map((d) => syncedColumn(d, () => ++id));
    found.push({ table, columns, schema: currentSchema(columns, 0) });
  });
  return { found, missing };
}
