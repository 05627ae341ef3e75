// SQL on a branch's Postgres, for roles and databases, which must exist in Postgres and not only in our records.
// The branch's read-write compute is woken (EndpointManager) and reached directly on the compute host's wire port
// with the internal password, as the proxy reaches it.
import pg from 'pg';
import { ApiError } from './errors.ts';
import type { EndpointManager } from './endpoints.ts';
import type { ControlPlaneState } from './model.ts';

/** Quotes a Postgres identifier. */
export function ident(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

export class ComputeSql {
  private readonly endpoints: EndpointManager;
  private readonly password: string;

  constructor(endpoints: EndpointManager, password: string) {
    this.endpoints = endpoints;
    this.password = password;
  }

  /** Runs the statements in order on the branch's read-write compute (woken if suspended). */
  async run(s: ControlPlaneState, branchId: string, statements: string[]): Promise<void> {
    const ep = Object.values(s.endpoints).find((e) => e.branch_id === branchId && e.type === 'read_write');
    if (!ep) {
      throw new ApiError(409, 'ENDPOINT_REQUIRED',
        `branch ${branchId} has no read-write endpoint, and roles and databases are created in Postgres: create one first (POST /projects/{project_id}/endpoints)`);
    }
    // The compute serves the database it was started with: the branch's first (see EndpointManager.start).
    const database = s.databases.find((d) => d.branch_id === branchId)?.name ?? 'neondb';
    let loc: Awaited<ReturnType<typeof this.endpoints.wake>>;
    try {
      loc = await this.endpoints.wake(ep.id);
    } catch (e) {
      throw new ApiError(503, 'COMPUTE_UNAVAILABLE', `could not start the compute of endpoint ${ep.id}: ${(e as Error).message}; nothing was changed, retry`);
    }
    const client = new pg.Client({ host: loc.host, port: loc.port, user: 'postgres', password: this.password, database, connectionTimeoutMillis: 10_000 });
    try {
      await client.connect();
      for (const sql of statements) await client.query(sql);
    } catch (e) {
      const err = e as { code?: string; message: string };
      if (err.code && /^[0-9A-Z]{5}$/.test(err.code)) throw new ApiError(400, 'POSTGRES_ERROR', `Postgres refused it: ${err.message} (SQLSTATE ${err.code})`);
      throw new ApiError(503, 'COMPUTE_UNAVAILABLE', `could not run SQL on endpoint ${ep.id}: ${err.message}; retry`);
    } finally {
      await client.end().catch(() => undefined);
    }
    this.endpoints.noteActivity(ep.id);
  }
}
