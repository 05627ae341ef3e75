// The arguments tools share, with Neon's MCP names (projectId, branchId, databaseName, ...) and descriptions.
import * as v from 'valibot';

/** A non-empty string argument. */
export const text = (name: string, description: string) =>
  v.pipe(v.string(`${name} must be a string`), v.minLength(1, `${name} must not be empty`), v.description(description));

export const projectId = text('projectId', 'The ID of the project');
export const branchId = v.optional(text('branchId', "The ID or name of the branch. If not provided, the project's default branch is used."));
export const requiredBranchId = text('branchId', 'The ID or name of the branch');
export const databaseName = v.optional(text('databaseName', "The name of the database. If not provided, neondb or the branch's first database is used."));
export const roleName = v.optional(text('roleName', 'The name of the role to connect with. If not provided, the database owner is used.'));

/** Where a statement runs: a project, a branch, a database. */
export const target = { projectId, branchId, databaseName };
