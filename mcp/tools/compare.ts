// compare_database_schema (Neon's: a branch's schema against its parent's) and, beyond Neon, compare_branch_data:
// the rows added, removed and changed between two branches, or between a branch and one of its checkpoints.
import * as v from 'valibot';
import type { NeonBranch } from '../../control-plane/api/neon-types.ts';
import { branchId, databaseName, projectId, requiredBranchId, text } from '../args.ts';
import { quoteIdent, schemaSnapshot } from '../catalog.ts';
import { diffData } from '../data-diff.ts';
import { diffSchemas } from '../schema-diff.ts';
import type { SqlTarget } from '../sql-runner.ts';
import { tool, ToolError } from '../tool.ts';
import type { Tool, ToolContext } from '../tool.ts';

const branchesOf = (id: string) => `/projects/${encodeURIComponent(id)}/branches`;

/** Runs `fn` with a temporary branch at a checkpoint of `branch`, deleted afterwards. */
async function atCheckpoint<T>(ctx: ToolContext, projectId: string, branch: NeonBranch, name: string, fn: (b: NeonBranch) => Promise<T>): Promise<T> {
  const { branch: temp } = await ctx.api.call<{ branch: NeonBranch }>('POST', branchesOf(projectId), {
    branch: { parent_id: branch.id, parent_checkpoint: name, name: `compare_${name}_${Math.random().toString(36).slice(2, 8)}` },
    endpoints: [{ type: 'read_write' }],
  });
  try {
    return await fn(temp);
  } finally {
    await ctx.api.call('DELETE', `${branchesOf(projectId)}/${temp.id}`).catch(() => undefined);
  }
}

/** The table name as catalog.ts keys it: schema-qualified and quoted, `public` when unqualified. */
function tableKey(name: string): string {
  const parts = name.split('.');
  return (parts.length === 1 ? ['public', parts[0]] : parts).map((p) => quoteIdent(p.replace(/^"|"$/g, ''))).join('.');
}

export const compareTools: Tool[] = [
  tool({
    name: 'compare_database_schema',
    description: "The schema diff of a branch against its parent's current schema: tables, columns, constraints, indexes, views, sequences, functions, types and triggers added, removed or changed, with a text diff.",
    input: v.object({ projectId, branchId: requiredBranchId, databaseName }),
    run: async (a, ctx) => {
      const b = await ctx.api.branch(a.projectId, a.branchId);
      if (!b.parent_id) throw new ToolError(`branch ${b.name} has no parent to compare with`);
      const parent = await ctx.api.branch(a.projectId, b.parent_id);
      const on = (id: string): SqlTarget => ({ projectId: a.projectId, branchId: id, databaseName: a.databaseName });
      const [before, after] = await Promise.all([ctx.sql.withClient(on(parent.id), schemaSnapshot), ctx.sql.withClient(on(b.id), schemaSnapshot)]);
      return { branch: { id: b.id, name: b.name }, parentBranch: { id: parent.id, name: parent.name }, ...diffSchemas(before, after) };
    },
  }),
  tool({
    name: 'compare_branch_data',
    description: "Compares a branch's rows with another branch (otherBranchId; its parent by default) or with one of its own checkpoints (checkpointName): per table, how many rows were added, removed and changed, with a sample of each. Rows are matched by primary key.",
    input: v.object({
      projectId, branchId, databaseName,
      otherBranchId: v.optional(text('otherBranchId', "The ID or name of the branch to compare with; the branch's parent if neither this nor checkpointName is given")),
      checkpointName: v.optional(text('checkpointName', 'A checkpoint of the branch to compare with instead')),
      tableName: v.optional(text('tableName', 'Only this table (optionally schema-qualified)')),
      sampleSize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(100), v.description('Rows shown per kind of change, 0 to 100 (default 5)')), 5),
    }),
    run: async (a, ctx) => {
      if (a.otherBranchId && a.checkpointName) throw new ToolError('give otherBranchId or checkpointName, not both');
      const b = await ctx.api.branch(a.projectId, a.branchId);
      const compare = async (base: NeonBranch, label: string) => {
        const on = (id: string): SqlTarget => ({ projectId: a.projectId, branchId: id, databaseName: a.databaseName });
        const tables = await ctx.sql.withClient(on(base.id), (baseClient) =>
          ctx.sql.withClient(on(b.id), (branchClient) => diffData(baseClient, branchClient, { sampleSize: a.sampleSize, only: a.tableName && tableKey(a.tableName) })));
        return {
          branch: { id: b.id, name: b.name }, comparedWith: label,
          identical: tables.every((t) => t.status === 'same'), tables,
        };
      };
      if (a.checkpointName) return atCheckpoint(ctx, a.projectId, b, a.checkpointName, (temp) => compare(temp, `checkpoint ${a.checkpointName} of ${b.name}`));
      const otherId = a.otherBranchId ?? b.parent_id;
      if (!otherId) throw new ToolError(`branch ${b.name} has no parent: give otherBranchId or checkpointName`);
      const other = await ctx.api.branch(a.projectId, otherId);
      return compare(other, `branch ${other.name} (${other.id})`);
    },
  }),
];
