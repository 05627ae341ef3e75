// MCP over Streamable HTTP at the control plane's /mcp, behind the API key. Stateless: each POST gets a fresh
// server and transport (JSON answers, no session to keep), so any control plane can answer any request; what
// outlives a request (prepared migrations) lives in the context's MigrationStore.
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { Hono } from 'hono';
import { bearerAuth, limitBody, requireAuth } from '../lib/http-guard.ts';
import { createMcpServer } from './server.ts';
import type { ToolContext } from './tool.ts';

/** Largest JSON-RPC message accepted (a migration's SQL fits many times over). */
const MAX_BODY = 1024 * 1024;

const rpcError = (code: number, message: string) => ({ jsonrpc: '2.0', error: { code, message }, id: null });

export function mcpApp(apiKey: string, context: () => ToolContext): Hono {
  const app = new Hono();
  app.use('*', requireAuth(bearerAuth(apiKey), {
    unauthorized: (c) => c.json(rpcError(-32001, 'authentication required: pass the lakebase API key as "Authorization: Bearer <key>"'), 401),
  }));
  app.use('*', limitBody(MAX_BODY, (c) => c.json(rpcError(-32600, `request body is too large (${MAX_BODY} bytes at most)`), 413)));
  app.all('/', async (c) => {
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    const server = createMcpServer(context());
    await server.connect(transport);
    try {
      return await transport.handleRequest(c.req.raw);
    } finally {
      await server.close();
    }
  });
  return app;
}
