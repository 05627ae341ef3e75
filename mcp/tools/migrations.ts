// prepare_database_migration / complete_database_migration, as Neon's MCP server has them: the migration runs first
// on a temporary branch of its target (a copy of the data made in milliseconds), the agent checks the result there,
// then completing applies the same SQL to the target in one transaction and deletes the temporary branch.
import * as v from 'valibot';
import type { NeonBranch } from '../../control-plane/api/neon-types.ts';
import { branchId, databaseName, projectId, text } from '../args.ts';
import { tool, ToolError } from '../tool.ts';
import type { Tool } from '../tool.ts';

export const migrationTools: Tool[] = [
  tool({
    name: 'prepare_database_migration',
    description: 'Runs a migration (DDL and data changes) on a new temporary branch of the target branch, in one transaction, and answers a migrationId. Check the temporary branch, then call complete_database_migration to apply the migration to the target.',
    input: v.object({ migrationSql: text('migrationSql', 'The SQL to execute to create the migration'), projectId, databaseName, branchId }),
    run: async (a, ctx) => {
      const parent = await ctx.api.branch(a.projectId, a.branchId);
      const { branch } = await ctx.api.call<{ branch: NeonBranch }>('POST', `/projects/${encodeURIComponent(a.projectId)}/branches`, {
        branch: { parent_id: parent.id, name: `migration_${new Date().toISOString().replace(/[:.]/g, '-').slice(0, -5)}_${Math.random().toString(36).slice(2, 6)}` },
        endpoints: [{ type: 'read_write' }],
      });
      try {
        const target = { projectId: a.projectId, branchId: branch.id, databaseName: a.databaseName };
        const where = await ctx.sql.resolve(target);
        const migrationResult = await ctx.sql.transaction(target, [a.migrationSql]);
        const m = ctx.migrations.add({ projectId: a.projectId, branchId: branch.id, parentId: parent.id, databaseName: where.databaseName, migrationSql: a.migrationSql });
        return {
          migrationId: m.id, branch: { id: branch.id, name: branch.name }, parentBranch: { id: parent.id, name: parent.name }, migrationResult,
          next: `Check the result on branch ${branch.id} (run_sql, describe_table_schema, compare_database_schema), then call complete_database_migration with migrationId ${m.id} to apply it to ${parent.name}.`,
        };
      } catch (e) {
        // the migration failed on the copy: nothing to keep
        await ctx.api.call('DELETE', `/projects/${encodeURIComponent(a.projectId)}/branches/${branch.id}`).catch(() => undefined);
        throw e;
      }
    },
  }),
  tool({
    name: 'complete_database_migration',
    description: 'Applies a migration prepared by prepare_database_migration to its target branch (in one transaction), then deletes its temporary branch.',
    input: v.object({ migrationId: text('migrationId', 'The migrationId that prepare_database_migration answered') }),
    run: async (a, ctx) => {
      const m = ctx.migrations.get(a.migrationId);
      if (!m) throw new ToolError(`migration ${a.migrationId} not found: prepared migrations are kept in the MCP server's memory until completed (at most a day); prepare it again`);
      const migrationResult = await ctx.sql.transaction({ projectId: m.projectId, branchId: m.parentId, databaseName: m.databaseName }, [m.migrationSql]);
      ctx.migrations.delete(m.id);
      await ctx.api.call('DELETE', `/projects/${encodeURIComponent(m.projectId)}/branches/${m.branchId}`);
      return { appliedTo: m.parentId, deletedBranch: m.branchId, migrationResult };
    },
  }),
];
