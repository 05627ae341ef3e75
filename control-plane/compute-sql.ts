// SQL on a branch's Postgres, for roles and databases, which must exist in Postgres and not only in our records.
// The branch's read-write compute is woken (EndpointManager) and its compute host runs the statements as the
// compute's superuser (POST /v1/computes/{id}/sql): through the compute's own wire server on the pglite engine, over
// the compute's unix socket on the postgres engine. No client path can do this.
import { ComputeHostError } from './compute-host-client.ts';
import { ApiError } from './errors.ts';
import type { EndpointManager } from './endpoints.ts';
import type { ControlPlaneState } from './model.ts';

export { quoteIdent as ident, quoteLiteral as literal } from '../lib/sql-quote.ts';

export class ComputeSql {
  private readonly endpoints: EndpointManager;

  constructor(endpoints: EndpointManager) {
    this.endpoints = endpoints;
  }

  /** Runs the statements in order on the branch's read-write compute (woken if suspended), in `database`. */
  async run(s: ControlPlaneState, branchId: string, statements: string[], database?: string): Promise<void> {
    const ep = Object.values(s.endpoints).find((e) => e.branch_id === branchId && e.type === 'read_write');
    if (!ep) {
      throw new ApiError(409, 'ENDPOINT_REQUIRED',
        `branch ${branchId} has no read-write endpoint, and roles and databases are created in Postgres: create one first (POST /projects/{project_id}/endpoints)`);
    }
    // The pglite compute serves the database it was started with: the branch's first (see EndpointManager.start).
    const db = database ?? s.databases.find((d) => d.branch_id === branchId)?.name ?? 'neondb';
    try {
      await this.endpoints.adminSql(ep.id, db, statements);
    } catch (e) {
      if (e instanceof ComputeHostError && e.code === 'postgres_error') throw new ApiError(400, 'POSTGRES_ERROR', `Postgres refused it: ${e.message.replace(/^compute host \S+: /, '')}`);
      throw new ApiError(503, 'COMPUTE_UNAVAILABLE', `could not run SQL on endpoint ${ep.id}: ${(e as Error).message}; nothing was changed, retry`);
    }
    this.endpoints.noteActivity(ep.id);
  }
}
