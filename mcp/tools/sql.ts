// SQL: run_sql, run_sql_transaction, explain_sql_statement, get_database_tables, describe_table_schema. Every
// statement runs as the branch's database owner through the proxy (sql-runner.ts); Postgres' errors come back
// as tool errors with its message.
import * as v from 'valibot';
import { target, text } from '../args.ts';
import { describeTable, listTables } from '../catalog.ts';
import { results } from '../sql-runner.ts';
import type { StatementResult } from '../sql-runner.ts';
import { tool } from '../tool.ts';
import type { Tool } from '../tool.ts';

const sql = text('sql', 'The SQL to execute');
const oneOrMany = (r: StatementResult[]) => (r.length === 1 ? r[0] : r);

export const sqlTools: Tool[] = [
  tool({
    name: 'run_sql',
    description: 'Runs SQL on a branch and answers its result (command, rowCount, fields, rows; at most 1000 rows shown). Several statements separated by semicolons run as one transaction and each answers its result.',
    input: v.object({ sql, ...target }),
    run: async (a, ctx) => oneOrMany(await ctx.sql.run(a, a.sql)),
  }),
  tool({
    name: 'run_sql_transaction',
    description: 'Runs statements in one transaction on a branch: all of them, or on the first error none (the error names the statement).',
    input: v.object({
      sqlStatements: v.pipe(v.array(v.pipe(v.string(), v.minLength(1, 'a statement must not be empty')), 'sqlStatements must be an array of strings'),
        v.minLength(1, 'sqlStatements must hold at least one statement'), v.description('The SQL statements to execute')),
      ...target,
    }),
    run: async (a, ctx) => ctx.sql.transaction(a, a.sqlStatements),
  }),
  tool({
    name: 'explain_sql_statement',
    description: "Answers a statement's query plan as JSON. With analyze (the default) the statement runs, inside a transaction that is rolled back, so that a write changes nothing.",
    input: v.object({
      sql: text('sql', 'The SQL statement to analyze'),
      ...target,
      analyze: v.optional(v.pipe(v.boolean('analyze must be true or false'), v.description('Whether to include ANALYZE (run it, then roll back)')), true),
    }),
    run: async (a, ctx) => ctx.sql.withClient(a, async (c) => {
      const prefix = a.analyze ? 'EXPLAIN (ANALYZE, VERBOSE, BUFFERS, FORMAT JSON)' : 'EXPLAIN (VERBOSE, FORMAT JSON)';
      await c.query('BEGIN');
      try {
        const [r] = results(await c.query(`${prefix} ${a.sql}`));
        return r.rows[0]?.['QUERY PLAN'];
      } finally {
        await c.query('ROLLBACK').catch(() => undefined);
      }
    }),
  }),
  tool({
    name: 'get_database_tables',
    description: 'Lists the tables and views of a database (schema, name, type).',
    input: v.object(target),
    run: async (a, ctx) => ctx.sql.withClient(a, (c) => listTables(c)),
  }),
  tool({
    name: 'describe_table_schema',
    description: 'Describes a table: its columns (type, nullable, default), constraints, indexes, estimated rows and size, and its CREATE TABLE.',
    input: v.object({ tableName: text('tableName', 'The name of the table, optionally schema-qualified'), ...target }),
    run: async (a, ctx) => ctx.sql.withClient(a, (c) => describeTable(c, a.tableName)),
  }),
];
