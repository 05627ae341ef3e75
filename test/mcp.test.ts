// The MCP server as agents reach it: the official SDK client over stdio (`lakebase mcp`, a real process) and over
// Streamable HTTP (the control plane's /mcp behind the API key), against a whole lakebase (`lakebase start`).
// The agent's loop is played on each: branch, write, checkpoint, delete, see the difference, rewind, rows back.
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLakebaseStack } from './support/lakebase-stack.ts';
import type { LakebaseStack } from './support/lakebase-stack.ts';

const CLI = fileURLToPath(new URL('../cli/lakebase.ts', import.meta.url));

let stack: LakebaseStack;
const clients: Client[] = [];

beforeAll(async () => {
  stack = await startLakebaseStack();
}, 120_000);

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await stack?.stop();
});

async function overStdio(): Promise<Client> {
  const client = new Client({ name: 'lakebase-test', version: '1' });
  // only what the server needs: where local.json is (API URL, key, proxy address)
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--dir', stack.dir], env: { PATH: process.env.PATH ?? '' }, stderr: 'ignore' }));
  clients.push(client);
  return client;
}

async function overHttp(key = stack.apiKey): Promise<Client> {
  const client = new Client({ name: 'lakebase-test', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${stack.controlPlaneUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${key}` } } }));
  clients.push(client);
  return client;
}

function textOf(r: CallToolResult): string {
  return r.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
}

/** A tool's JSON answer; a tool error fails the test with its text. */
async function call<T = Record<string, unknown>>(c: Client, name: string, args: Record<string, unknown>): Promise<T> {
  const r = (await c.callTool({ name, arguments: args })) as CallToolResult;
  if (r.isError) throw new Error(`${name} failed: ${textOf(r)}`);
  return JSON.parse(textOf(r)) as T;
}

/** A tool error's text (the call must fail as a tool error, not as a protocol error). */
async function callError(c: Client, name: string, args: Record<string, unknown>): Promise<string> {
  const r = (await c.callTool({ name, arguments: args })) as CallToolResult;
  expect(r.isError, `${name} should have failed: ${textOf(r)}`).toBe(true);
  return textOf(r);
}

interface Statement {
  command: string;
  rowCount: number | null;
  rows: Record<string, unknown>[];
}

interface TableDiff {
  table: string;
  status: string;
  added: number;
  removed: number;
  changed: number;
  sample?: { added: Record<string, unknown>[]; removed: Record<string, unknown>[]; changed: { before: Record<string, unknown>; after: Record<string, unknown> }[] };
}

const NEON_TOOLS = [
  'list_projects', 'create_project', 'delete_project', 'describe_project', 'run_sql', 'run_sql_transaction', 'get_database_tables',
  'describe_table_schema', 'explain_sql_statement', 'create_branch', 'delete_branch', 'describe_branch', 'reset_from_parent',
  'get_connection_string', 'compare_database_schema', 'prepare_database_migration', 'complete_database_migration',
];
const OUR_TOOLS = ['create_checkpoint', 'list_checkpoints', 'rewind_to_checkpoint', 'branch_from_checkpoint', 'compare_branch_data'];

describe.each([
  ['stdio', overStdio],
  ['Streamable HTTP', () => overHttp()],
])('MCP over %s', (transport, connect) => {
  let c: Client;
  let projectId: string;
  let branchId: string;
  const on = () => ({ projectId, branchId });

  beforeAll(async () => {
    c = await connect();
    projectId = stack.project.id;
  }, 60_000);

  it("lists Neon's tools with their argument names, and the checkpoint tools", async () => {
    const { tools } = await c.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining([...NEON_TOOLS, ...OUR_TOOLS]));
    const runSql = tools.find((t) => t.name === 'run_sql')!;
    expect(Object.keys(runSql.inputSchema.properties ?? {})).toEqual(expect.arrayContaining(['sql', 'projectId', 'branchId', 'databaseName']));
    expect(runSql.inputSchema.required).toEqual(expect.arrayContaining(['sql', 'projectId']));
    expect(tools.find((t) => t.name === 'run_sql_transaction')!.inputSchema.properties).toHaveProperty('sqlStatements');
  });

  it('creates a branch and writes to it in one transaction, then describes the table', async () => {
    const created = await call<{ branch: { id: string; name: string; parent_id: string } }>(c, 'create_branch', { projectId, branchName: `agent-${transport.split(' ')[0]}` });
    branchId = created.branch.id;
    expect(created.branch.parent_id).toBe(stack.project.branchId);
    const results = await call<Statement[]>(c, 'run_sql_transaction', {
      ...on(),
      sqlStatements: [
        'CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int DEFAULT 0)',
        "INSERT INTO items SELECT g, 'item ' || g, g * 10 FROM generate_series(1, 50) g",
      ],
    });
    expect(results.map((r) => r.command)).toEqual(['CREATE', 'INSERT']);
    expect(results[1].rowCount).toBe(50);
    const table = await call<{ columns: { name: string; type: string; nullable: boolean; default: string | null }[]; constraints: { type: string; definition: string }[]; ddl: string }>(
      c, 'describe_table_schema', { ...on(), tableName: 'items' });
    expect(table.columns).toEqual([
      { name: 'id', type: 'integer', nullable: false, default: null },
      { name: 'name', type: 'text', nullable: false, default: null },
      { name: 'qty', type: 'integer', nullable: true, default: '0' },
    ]);
    expect(table.constraints).toEqual([expect.objectContaining({ type: 'primary key', definition: 'PRIMARY KEY (id)' })]);
    expect(table.ddl).toContain('CREATE TABLE public.items (');
    // the default branch has no such table: the write went to the new branch only
    expect(await callError(c, 'run_sql', { projectId, sql: 'SELECT count(*) FROM items' })).toMatch(/relation "items" does not exist \(SQLSTATE 42P01\)/);
  });

  it('checkpoints, deletes and changes rows, sees the difference, rewinds: the rows are back', async () => {
    await call(c, 'create_checkpoint', { ...on(), name: 'before-cleanup' });
    const listed = await call<{ checkpoints: { name: string; lsn: string }[] }>(c, 'list_checkpoints', on());
    expect(listed.checkpoints.map((x) => x.name)).toEqual(['before-cleanup']);
    const del = await call<Statement>(c, 'run_sql', { ...on(), sql: 'DELETE FROM items WHERE id <= 10' });
    expect(del).toMatchObject({ command: 'DELETE', rowCount: 10 });
    await call(c, 'run_sql', { ...on(), sql: "UPDATE items SET qty = -1 WHERE id = 20; INSERT INTO items VALUES (100, 'new', 1)" });

    const diff = await call<{ identical: boolean; tables: TableDiff[] }>(c, 'compare_branch_data', { ...on(), checkpointName: 'before-cleanup', sampleSize: 3 });
    expect(diff.identical).toBe(false);
    const items = diff.tables.find((t) => t.table === 'public.items')!;
    expect(items).toMatchObject({ status: 'changed', added: 1, removed: 10, changed: 1 });
    expect(items.sample!.added).toEqual([{ id: 100, name: 'new', qty: 1 }]);
    expect(items.sample!.removed).toHaveLength(3);
    expect(items.sample!.changed).toEqual([{ before: { id: 20, name: 'item 20', qty: 200 }, after: { id: 20, name: 'item 20', qty: -1 } }]);

    const schema = await call<{ identical: boolean; added: { object: string; ddl: string }[]; diff: string }>(c, 'compare_database_schema', on());
    expect(schema.identical).toBe(false);
    expect(schema.added.map((x) => x.object)).toContain('table public.items');
    expect(schema.diff).toContain('+  id integer NOT NULL');

    await call(c, 'rewind_to_checkpoint', { ...on(), name: 'before-cleanup' });
    const back = await call<Statement>(c, 'run_sql', { ...on(), sql: 'SELECT count(*)::int AS n, sum(qty)::int AS qty, bool_or(id = 100) AS new_row FROM items' });
    expect(back.rows).toEqual([{ n: 50, qty: 12750, new_row: false }]);
    const same = await call<{ identical: boolean }>(c, 'compare_branch_data', { ...on(), checkpointName: 'before-cleanup' });
    expect(same.identical).toBe(true);
  });

  it("a bad statement is a tool error with Postgres' message, and a failed transaction leaves nothing", async () => {
    expect(await callError(c, 'run_sql', { ...on(), sql: 'SELEC 1' })).toMatch(/syntax error at or near "SELEC" \(SQLSTATE 42601\)/);
    const failed = await callError(c, 'run_sql_transaction', { ...on(), sqlStatements: ["INSERT INTO items VALUES (500, 'x', 1)", 'INSERT INTO items VALUES (1, \'dup\', 1)'] });
    expect(failed).toMatch(/statement 2 of 2 failed.*rolled back.*duplicate key value violates unique constraint "items_pkey" \(SQLSTATE 23505\)/);
    const r = await call<Statement>(c, 'run_sql', { ...on(), sql: 'SELECT count(*)::int AS n FROM items WHERE id = 500' });
    expect(r.rows).toEqual([{ n: 0 }]);
    expect(await callError(c, 'run_sql', { projectId })).toMatch(/invalid arguments for run_sql: .*sql/i);
    expect(await callError(c, 'describe_branch', { projectId, branchId: 'no-such-branch' })).toMatch(/no branch "no-such-branch"/);
  });
});

describe('MCP over HTTP: the other tools', () => {
  let c: Client;
  let projectId: string;

  beforeAll(async () => {
    c = await overHttp();
    projectId = stack.project.id;
  }, 60_000);

  it('refuses a wrong API key on /mcp', async () => {
    await expect(overHttp('wrong-key')).rejects.toThrow(/401|authentication required/i);
    const res = await fetch(`${stack.controlPlaneUrl}/mcp`, {
      method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(res.status).toBe(401);
  });

  it('prepares a migration on a temporary branch and completes it on the parent', async () => {
    const prepared = await call<{ migrationId: string; branch: { id: string } }>(c, 'prepare_database_migration', {
      projectId, migrationSql: 'CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10,2)); CREATE INDEX orders_total ON orders (total)',
    });
    const onTemp = await call<{ table_name: string }[]>(c, 'get_database_tables', { projectId, branchId: prepared.branch.id });
    expect(onTemp.map((t) => t.table_name)).toContain('orders');
    const onMain = await call<{ table_name: string }[]>(c, 'get_database_tables', { projectId });
    expect(onMain.map((t) => t.table_name)).not.toContain('orders');
    const done = await call<{ deletedBranch: string }>(c, 'complete_database_migration', { migrationId: prepared.migrationId });
    expect(done.deletedBranch).toBe(prepared.branch.id);
    const after = await call<{ indexes: { name: string }[] }>(c, 'describe_table_schema', { projectId, tableName: 'public.orders' });
    expect(after.indexes.map((i) => i.name).sort()).toEqual(['orders_pkey', 'orders_total']);
    const { branches } = await call<{ branches: { id: string }[] }>(c, 'describe_project', { projectId });
    expect(branches.map((b) => b.id)).not.toContain(prepared.branch.id);
    expect(await callError(c, 'complete_database_migration', { migrationId: prepared.migrationId })).toMatch(/not found/);
  });

  it('explains with ANALYZE without changing anything, and hands out a connection string that works', async () => {
    await call(c, 'run_sql', { projectId, sql: 'INSERT INTO orders VALUES (1, 9.99), (2, 20)' });
    const plan = await call<{ Plan: { 'Node Type': string } }[]>(c, 'explain_sql_statement', { projectId, sql: 'DELETE FROM orders' });
    expect(plan[0].Plan['Node Type']).toBe('ModifyTable');
    const { uri } = await call<{ uri: string }>(c, 'get_connection_string', { projectId });
    const client = new pg.Client({ connectionString: uri });
    await client.connect();
    try {
      expect((await client.query('SELECT count(*)::int AS n, sum(total)::text AS s FROM orders')).rows).toEqual([{ n: 2, s: '29.99' }]);
    } finally {
      await client.end();
    }
  });

  it('branches from a checkpoint, resets a branch from its parent, and manages projects', async () => {
    const main = stack.project.branchId;
    await call(c, 'create_checkpoint', { projectId, branchId: main, name: 'two-orders' });
    await call(c, 'run_sql', { projectId, sql: 'DELETE FROM orders' });
    const fromCp = await call<{ branch: { id: string } }>(c, 'branch_from_checkpoint', { projectId, branchId: main, name: 'two-orders', branchName: 'from-two-orders' });
    const r = await call<Statement>(c, 'run_sql', { projectId, branchId: 'from-two-orders', sql: 'SELECT count(*)::int AS n FROM orders' });
    expect(r.rows).toEqual([{ n: 2 }]);
    const d = await call<{ tables: { table_name: string }[]; databases: { name: string }[] }>(c, 'describe_branch', { projectId, branchId: fromCp.branch.id });
    expect(d.tables.map((t) => t.table_name)).toContain('orders');
    const vsMain = await call<{ tables: TableDiff[] }>(c, 'compare_branch_data', { projectId, branchId: fromCp.branch.id, otherBranchId: main, tableName: 'orders' });
    expect(vsMain.tables).toEqual([expect.objectContaining({ table: 'public.orders', added: 2, removed: 0, changed: 0 })]);

    await call(c, 'run_sql', { projectId, branchId: fromCp.branch.id, sql: 'DELETE FROM orders WHERE id = 1' });
    const reset = await call<{ parentBranch: { id: string } }>(c, 'reset_from_parent', { projectId, branchIdOrName: 'from-two-orders' });
    expect(reset.parentBranch.id).toBe(main);
    const afterReset = await call<Statement>(c, 'run_sql', { projectId, branchId: fromCp.branch.id, sql: 'SELECT count(*)::int AS n FROM orders' });
    expect(afterReset.rows).toEqual([{ n: 0 }]);
    await call(c, 'delete_branch', { projectId, branchId: 'from-two-orders' });

    const made = await call<{ project: { id: string }; connectionString: string }>(c, 'create_project', { name: 'agent-scratch' });
    expect(made.connectionString).toMatch(/^postgres(ql)?:\/\//);
    const listed = await call<{ projects: { id: string }[] }>(c, 'list_projects', { search: 'agent-scratch' });
    expect(listed.projects.map((p) => p.id)).toEqual([made.project.id]);
    await call(c, 'delete_project', { projectId: made.project.id });
    expect(await callError(c, 'describe_project', { projectId: made.project.id })).toMatch(/not found \(HTTP 404/);
  });
});

describe('MCP on the postgres engine', () => {
  it('compares schemas and lists slow queries from pg_stat_statements (the pglite engine says why it cannot)', async () => {
    const c = await overHttp();
    const made = await stack.api<{ project: { id: string } }>('POST', '/projects', { project: { name: 'pg15-agent', pg_version: 15 } });
    const projectId = made.project.id;
    const { branch } = await call<{ branch: { id: string } }>(c, 'create_branch', { projectId, branchName: 'feature' });
    const on = { projectId, branchId: branch.id };
    await call(c, 'run_sql_transaction', { ...on, sqlStatements: ['CREATE TABLE t (id serial PRIMARY KEY, v text)', "INSERT INTO t (v) VALUES ('a'), ('b')"] });
    const schema = await call<{ added: { object: string }[]; removed: unknown[]; changed: unknown[] }>(c, 'compare_database_schema', on);
    expect(schema.added.map((x) => x.object).sort()).toEqual(['sequence public.t_id_seq', 'table public.t']);
    expect(schema.removed).toEqual([]);
    expect(schema.changed).toEqual([]);

    await call(c, 'run_sql', { ...on, sql: 'SELECT pg_sleep(0.25)' });
    const slow = await call<{ query: string; calls: string; mean_time_ms: number }[]>(c, 'list_slow_queries', { ...on, minExecutionTime: 200 });
    expect(slow.map((q) => q.query)).toContain('SELECT pg_sleep($1)');
    expect(slow.find((q) => q.query === 'SELECT pg_sleep($1)')!.mean_time_ms).toBeGreaterThanOrEqual(200);
    expect(await callError(c, 'list_slow_queries', { projectId: stack.project.id })).toMatch(/not loaded on the pglite engine/);
    await call(c, 'delete_project', { projectId });
  });
});
