// The MCP server: Neon's tools (and lakebase's checkpoint tools) over any transport, on the official SDK's
// low-level Server so that the arguments are checked by the project's one validator (valibot) and listed as the
// JSON Schema derived from the same schemas. Every failure is a tool error an agent can read, never a crash.
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { CallToolResult, Tool as ListedTool } from '@modelcontextprotocol/sdk/types.js';
import { toJsonSchema } from '@valibot/to-json-schema';
import * as v from 'valibot';
import { ServiceError } from '../lib/errors.ts';
import { issueMessage } from '../lib/validate.ts';
import { StatementFailed } from './sql-runner.ts';
import { ToolError } from './tool.ts';
import type { Tool, ToolContext } from './tool.ts';
import { branchTools } from './tools/branches.ts';
import { checkpointTools } from './tools/checkpoints.ts';
import { compareTools } from './tools/compare.ts';
import { migrationTools } from './tools/migrations.ts';
import { projectTools } from './tools/projects.ts';
import { slowQueryTools } from './tools/slow-queries.ts';
import { sqlTools } from './tools/sql.ts';

export const TOOLS: Tool[] = [...projectTools, ...branchTools, ...sqlTools, ...compareTools, ...migrationTools, ...checkpointTools, ...slowQueryTools];

const INSTRUCTIONS = `Lakebase: serverless Postgres with instant branches. Every project has a default branch; branches are
copy-on-write copies of a whole database made in milliseconds. To experiment safely: create_checkpoint, change
things, compare_branch_data with checkpointName to see what changed, and rewind_to_checkpoint to undo.`;

const listed: ListedTool[] = TOOLS.map((t) => ({
  name: t.name,
  description: t.description,
  inputSchema: withoutDialect(toJsonSchema(t.input)) as ListedTool['inputSchema'],
}));

function withoutDialect(schema: object): object {
  const { $schema: _, ...rest } = schema as { $schema?: string };
  return rest;
}

export function createMcpServer(ctx: ToolContext, version = '0.1.0'): Server {
  const server = new Server({ name: 'lakebase', version }, { capabilities: { tools: {} }, instructions: INSTRUCTIONS });
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: listed }));
  server.setRequestHandler(CallToolRequestSchema, (req) => callTool(req.params.name, req.params.arguments ?? {}, ctx));
  return server;
}

export async function callTool(name: string, args: unknown, ctx: ToolContext): Promise<CallToolResult> {
  const t = TOOLS.find((x) => x.name === name);
  if (!t) return failure(`unknown tool "${name}"; tools/list names them`);
  const parsed = v.safeParse(t.input, args, { abortEarly: true });
  if (!parsed.success) return failure(`invalid arguments for ${name}: ${issueMessage(parsed.issues[0])}`);
  try {
    const out = await t.run(parsed.output, ctx);
    return { content: [{ type: 'text', text: JSON.stringify(out ?? null, jsonValue, 2) }] };
  } catch (e) {
    return failure(describeError(e));
  }
}

const failure = (text: string): CallToolResult => ({ isError: true, content: [{ type: 'text', text }] });

/** What went wrong, as the agent should read it: Postgres' own words for a statement, the API's for a call. */
export function describeError(e: unknown): string {
  if (e instanceof StatementFailed) return `${e.message}: ${describeError(e.cause)}`;
  if (e instanceof ToolError) return e.message;
  if (e instanceof ServiceError) return e.status === 0 ? e.message : `${e.message} (HTTP ${e.status} ${e.code})`;
  const pgErr = e as { severity?: string; code?: string; message?: string; detail?: string; hint?: string };
  if (pgErr && typeof pgErr.code === 'string' && /^[0-9A-Z]{5}$/.test(pgErr.code) && pgErr.severity) {
    const extra = [pgErr.detail && `DETAIL: ${pgErr.detail}`, pgErr.hint && `HINT: ${pgErr.hint}`].filter(Boolean).join(' ');
    return `${pgErr.severity}: ${pgErr.message} (SQLSTATE ${pgErr.code})${extra ? ` ${extra}` : ''}`;
  }
  return e instanceof Error ? e.message : String(e);
}

/** JSON for values pg answers that JSON.stringify does not say well: bytea as Postgres' hex, bigint as text. */
function jsonValue(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  if (Buffer.isBuffer(raw)) return `\\x${raw.toString('hex')}`;
  if (typeof raw === 'bigint') return raw.toString();
  return value;
}
