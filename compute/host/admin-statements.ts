// The control plane's statements on a compute, with their results as Postgres' text values: one way for both
// engines (the pglite engine's admin session goes through the compute's wire server, the postgres engine's over its
// unix socket). Text values keep what JSON or JS numbers would lose (int8, numeric, timestamps to the microsecond).
import type pg from 'pg';
import type { AdminSqlResult } from './api-types.ts';

const raw = { getTypeParser: () => (value: string) => value };

/** Runs the statements in order on the client; a failing one throws Postgres' error, and later ones do not run. */
export async function runStatements(client: pg.Client, statements: string[]): Promise<AdminSqlResult[]> {
  const results: AdminSqlResult[] = [];
  for (const text of statements) {
    const r: pg.QueryArrayResult | pg.QueryArrayResult[] = await client.query({ text, rowMode: 'array', types: raw } as pg.QueryArrayConfig);
    // a string of several statements answers one result per statement
    for (const one of Array.isArray(r) ? r : [r]) {
      results.push({ fields: (one.fields ?? []).map((f: pg.FieldDef) => f.name), rows: (one.rows ?? []) as (string | null)[][] });
    }
  }
  return results;
}
