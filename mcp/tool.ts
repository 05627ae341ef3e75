// What a tool is: a Neon-style name, a description an agent reads, a valibot schema of its arguments (also sent
// as JSON Schema in tools/list), and a function whose answer is JSON an agent can read. A tool throws to fail:
// the server turns the error into a tool error (isError) with the message, never a protocol failure.
import type * as v from 'valibot';
import type { LakebaseApi } from '../lib/lakebase-api.ts';
import type { MigrationStore } from './migrations.ts';
import type { SqlRunner } from './sql-runner.ts';

/** What a tool runs against: the API (as the caller), SQL through the proxy, and the server's own memory. */
export interface ToolContext {
  api: LakebaseApi;
  sql: SqlRunner;
  migrations: MigrationStore;
}

export interface Tool<S extends v.GenericSchema = v.GenericSchema> {
  name: string;
  description: string;
  input: S;
  run(args: v.InferOutput<S>, ctx: ToolContext): Promise<unknown>;
}

/** Declares a tool, keeping its argument type tied to its schema. */
export function tool<S extends v.GenericSchema>(t: Tool<S>): Tool {
  return t as unknown as Tool;
}

/** A failure the agent caused or can act on (wrong name, nothing to compare), said plainly. */
export class ToolError extends Error {
  override name = 'ToolError';
}
