// lakebase mcp: the MCP server over stdio, for desktop agents (Claude Desktop, Cursor, ...). It drives the API the
// CLI is configured for (flags, LAKEBASE_*, local.json), so it works against any lakebase. stdout carries the
// protocol only; anything else goes to stderr.
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { MigrationStore } from '../../mcp/migrations.ts';
import { createMcpServer } from '../../mcp/server.ts';
import { SqlRunner } from '../../mcp/sql-runner.ts';
import type { CommandContext } from './context.ts';

export async function mcp(ctx: CommandContext): Promise<void> {
  const api = ctx.api.client;
  const server = createMcpServer({ api, sql: new SqlRunner(api, ctx.pg), migrations: new MigrationStore() });
  const closed = new Promise<void>((resolve) => {
    server.onclose = () => resolve();
  });
  await server.connect(new StdioServerTransport());
  process.stderr.write(`lakebase mcp: serving ${api.apiUrl} over stdio\n`);
  process.stdin.once('end', () => void server.close());
  await closed;
}
