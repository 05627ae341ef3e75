// list_slow_queries (Neon's): the statements with the highest mean time, from pg_stat_statements. The postgres
// engine preloads it in every compute; PGlite ships it too, but loading it adds about 50 ms to every start of a
// compute (measured: 935 -> 985 ms for a PGlite open), so the pglite engine leaves it out and says so.
import * as v from 'valibot';
import { target, text } from '../args.ts';
import { tool, ToolError } from '../tool.ts';
import type { Tool } from '../tool.ts';

const SLOW = `SELECT s.query, s.calls, round(s.mean_exec_time::numeric, 2)::float8 AS mean_time_ms,
    round(s.max_exec_time::numeric, 2)::float8 AS max_time_ms, round(s.total_exec_time::numeric, 2)::float8 AS total_time_ms, s.rows
  FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
  WHERE d.datname = current_database() AND s.mean_exec_time >= $1
  ORDER BY s.mean_exec_time DESC LIMIT $2`;

export const slowQueryTools: Tool[] = [
  tool({
    name: 'list_slow_queries',
    description: "Lists the slowest statements of a branch's compute since it started (pg_stat_statements): query, calls, mean, max and total time in ms, rows. On the postgres engine (pg_version 15).",
    input: v.object({
      ...target,
      computeId: v.optional(text('computeId', "The ID of the compute (endpoint); the branch's read-write compute if not provided")),
      limit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1000), v.description('Maximum number of slow queries to return')), 10),
      minExecutionTime: v.optional(v.pipe(v.number(), v.minValue(0), v.description('Minimum mean execution time in milliseconds to consider a query as slow')), 1000),
    }),
    run: async (a, ctx) => ctx.sql.withClient(a, async (c) => {
      try {
        return (await c.query(SLOW, [a.minExecutionTime, a.limit])).rows;
      } catch (e) {
        if ((e as { code?: string }).code !== '42P01') throw e;
        const { project } = await ctx.api.call<{ project: { pg_version: number } }>('GET', `/projects/${encodeURIComponent(a.projectId)}`);
        throw new ToolError(project.pg_version === 15
          ? 'pg_stat_statements is not installed in this database: it comes from the template of projects made since lakebase installs it, and only a superuser can add it to an older one'
          : `pg_stat_statements is not loaded on the pglite engine (pg_version ${project.pg_version}): it would add about 50 ms to every start of a compute. Projects created with pg_version 15 (the postgres engine) have it; explain_sql_statement works on both.`);
      }
    }),
  }),
];
