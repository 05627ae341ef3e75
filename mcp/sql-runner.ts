// Runs SQL for the tools the way any client would: it asks the API for the branch's connection URI (a role of the
// project, never a superuser), then speaks to the proxy with `pg`. One connection per tool call; results are
// capped so that one SELECT cannot fill the server's memory or an agent's context.
import pg from 'pg';
import type { NeonBranch, NeonDatabase } from '../control-plane/api/neon-types.ts';
import type { LakebaseApi } from '../lib/lakebase-api.ts';
import { pgConfigFromUri } from '../lib/pg-target.ts';
import type { PgAddress } from '../lib/pg-target.ts';
import { ToolError } from './tool.ts';

/** Rows a statement's result shows at most (the rest is counted, not sent). */
export const MAX_ROWS = 1000;

export interface SqlTarget {
  projectId: string;
  /** A branch id or name; the default branch if absent. */
  branchId?: string;
  databaseName?: string;
  roleName?: string;
  /** An endpoint of the branch; its read-write endpoint if absent. */
  computeId?: string;
}

export interface Resolved {
  branch: NeonBranch;
  databaseName: string;
  roleName: string;
  uri: string;
}

export interface StatementResult {
  command: string;
  rowCount: number | null;
  fields: string[];
  rows: Record<string, unknown>[];
  /** Set when more rows came than MAX_ROWS: how many there were. */
  truncatedFrom?: number;
}

export class SqlRunner {
  private readonly api: LakebaseApi;
  private readonly via: PgAddress | undefined;

  constructor(api: LakebaseApi, via?: PgAddress) {
    this.api = api;
    this.via = via;
  }

  /** The branch, database, role and connection URI a target names. */
  async resolve(t: SqlTarget): Promise<Resolved> {
    const branch = await this.api.branch(t.projectId, t.branchId);
    const base = `/projects/${encodeURIComponent(t.projectId)}`;
    const { databases } = await this.api.call<{ databases: NeonDatabase[] }>('GET', `${base}/branches/${branch.id}/databases`);
    const db = t.databaseName ? databases.find((d) => d.name === t.databaseName) : databases.find((d) => d.name === 'neondb') ?? databases[0];
    if (!db) {
      throw new ToolError(t.databaseName
        ? `database "${t.databaseName}" does not exist on branch ${branch.name}; its databases: ${databases.map((d) => d.name).join(', ') || 'none'}`
        : `branch ${branch.name} has no database`);
    }
    const roleName = t.roleName ?? db.owner_name;
    const q = new URLSearchParams({ branch_id: branch.id, database_name: db.name, role_name: roleName });
    if (t.computeId) q.set('endpoint_id', t.computeId);
    const { uri } = await this.api.call<{ uri: string }>('GET', `${base}/connection_uri?${q}`);
    return { branch, databaseName: db.name, roleName, uri };
  }

  /** A connected client for the target, ended after `fn`. */
  async withClient<T>(t: SqlTarget, fn: (client: pg.Client, where: Resolved) => Promise<T>): Promise<T> {
    const where = await this.resolve(t);
    const client = new pg.Client({ ...pgConfigFromUri(where.uri, this.via), connectionTimeoutMillis: 60_000, application_name: 'lakebase-mcp' });
    client.on('error', () => {}); // a connection lost between calls is reported by the call that meets it
    await client.connect();
    try {
      return await fn(client, where);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** One or more statements in one simple query (Postgres runs them as one implicit transaction). */
  async run(t: SqlTarget, sql: string): Promise<StatementResult[]> {
    return this.withClient(t, async (c) => results(await c.query(sql)));
  }

  /** Statements in BEGIN ... COMMIT; the first failure rolls back and names the statement. */
  async transaction(t: SqlTarget, statements: string[]): Promise<StatementResult[]> {
    return this.withClient(t, (c) => inTransaction(c, statements));
  }
}

export async function inTransaction(c: pg.Client, statements: string[]): Promise<StatementResult[]> {
  const out: StatementResult[] = [];
  await c.query('BEGIN');
  for (const [i, s] of statements.entries()) {
    try {
      out.push(...results(await c.query(s)));
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw new StatementFailed(i, statements.length, e);
    }
  }
  await c.query('COMMIT');
  return out;
}

/** A statement of a transaction failed: which one, with Postgres' error as the cause. */
export class StatementFailed extends Error {
  override name = 'StatementFailed';
  constructor(index: number, of: number, cause: unknown) {
    super(`statement ${index + 1} of ${of} failed, and the transaction was rolled back`, { cause });
  }
}

/** pg answers one Result, or an array of them for several statements. */
export function results(r: pg.QueryResult | pg.QueryResult[]): StatementResult[] {
  return (Array.isArray(r) ? r : [r]).map((x) => {
    const rows = x.rows as Record<string, unknown>[];
    const shown: StatementResult = { command: x.command, rowCount: x.rowCount, fields: (x.fields ?? []).map((f) => f.name), rows: rows.slice(0, MAX_ROWS) };
    if (rows.length > MAX_ROWS) shown.truncatedFrom = rows.length;
    return shown;
  });
}
