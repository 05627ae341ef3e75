// Branches: create_branch, delete_branch, describe_branch, reset_from_parent, get_connection_string.
import * as v from 'valibot';
import type { NeonBranch } from '../../control-plane/api/neon-types.ts';
import { databaseName, projectId, requiredBranchId, roleName, target, text } from '../args.ts';
import { listTables } from '../catalog.ts';
import { tool, ToolError } from '../tool.ts';
import type { Tool } from '../tool.ts';

const branchesOf = (id: string) => `/projects/${encodeURIComponent(id)}/branches`;

export const branchTools: Tool[] = [
  tool({
    name: 'create_branch',
    description: "Creates a branch of the project's default branch at its current state (a copy-on-write copy of the whole database, made in milliseconds) with a read-write compute. Answers the branch and its connection string.",
    input: v.object({ projectId, branchName: v.optional(text('branchName', 'An optional name for the branch')) }),
    run: async (a, { api }) => {
      const r = await api.call<{ branch: NeonBranch; endpoints: unknown[]; connection_uris?: { connection_uri: string }[] }>(
        'POST', branchesOf(a.projectId), { branch: a.branchName ? { name: a.branchName } : {}, endpoints: [{ type: 'read_write' }] });
      return { branch: r.branch, endpoints: r.endpoints, connectionString: r.connection_uris?.[0]?.connection_uri };
    },
  }),
  tool({
    name: 'delete_branch',
    description: 'Deletes a branch, its computes and its checkpoints.',
    input: v.object({ projectId, branchId: text('branchId', 'The ID or name of the branch to delete') }),
    run: async (a, { api }) => {
      const b = await api.branch(a.projectId, a.branchId);
      return api.call('DELETE', `${branchesOf(a.projectId)}/${b.id}`);
    },
  }),
  tool({
    name: 'describe_branch',
    description: 'Describes a branch: its parent and LSN, its computes, databases and roles, and the tables of a database.',
    input: v.object({ projectId, branchId: requiredBranchId, databaseName }),
    run: async (a, ctx) => {
      const b = await ctx.api.branch(a.projectId, a.branchId);
      const base = `${branchesOf(a.projectId)}/${b.id}`;
      const [endpoints, databases, roles] = await Promise.all(['endpoints', 'databases', 'roles'].map((x) => ctx.api.call('GET', `${base}/${x}`)));
      const tables = await ctx.sql.withClient({ ...a, branchId: b.id }, (c) => listTables(c));
      return { branch: b, ...endpoints, ...databases, ...roles, tables };
    },
  }),
  tool({
    name: 'reset_from_parent',
    description: "Resets a branch to its parent's current state: everything written on the branch since is gone (preserveUnderName keeps it as a new branch first).",
    input: v.object({
      projectId,
      branchIdOrName: text('branchIdOrName', 'The name or ID of the branch to reset from its parent'),
      preserveUnderName: v.optional(text('preserveUnderName', 'A name to keep the current state under, as a new branch, before the reset')),
    }),
    run: async (a, { api }) => {
      const { branches } = await api.call<{ branches: NeonBranch[] }>('GET', branchesOf(a.projectId));
      const b = branches.find((x) => x.id === a.branchIdOrName) ?? branches.find((x) => x.name === a.branchIdOrName);
      if (!b) throw new ToolError(`branch "${a.branchIdOrName}" not found in project ${a.projectId}`);
      const parent = branches.find((x) => x.id === b.parent_id);
      if (!parent) throw new ToolError(`branch "${b.name}" has no parent branch and cannot be reset`);
      // As Neon: a branch with children keeps its old state under a generated name unless one was given.
      const hasChildren = branches.some((x) => x.parent_id === b.id);
      const preserve = a.preserveUnderName ?? (hasChildren ? `${b.name}_old_${new Date().toISOString().replace(/[:.]/g, '-').slice(0, -5)}` : undefined);
      const r = await api.call<{ branch: NeonBranch }>('POST', `${branchesOf(a.projectId)}/${b.id}/restore`, {
        source_branch_id: parent.id, ...(preserve ? { preserve_under_name: preserve } : {}),
      });
      return { branch: r.branch, parentBranch: { id: parent.id, name: parent.name }, preservedBranchName: preserve };
    },
  }),
  tool({
    name: 'get_connection_string',
    description: 'The Postgres connection string of a branch (its read-write compute, the database owner, by default), for psql, pg or the Neon serverless driver.',
    input: v.object({ ...target, computeId: v.optional(text('computeId', "The ID of the compute (endpoint); the branch's read-write compute if not provided")), roleName }),
    run: async (a, ctx) => {
      const r = await ctx.sql.resolve(a);
      return { uri: r.uri, projectId: a.projectId, branchId: r.branch.id, databaseName: r.databaseName, roleName: r.roleName };
    },
  }),
];
