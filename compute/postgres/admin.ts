// The compute host's own superuser connection to a compute's PostgreSQL: over the compute's unix socket (its
// directory is mode 0700, owned by the compute's uid; pg_hba trusts `cloud_admin` there and refuses it over TCP),
// never through the proxy. The control plane's role and database statements run here, and at each start the
// roles' SCRAM verifiers are made equal to the control plane's (the proxy logs sessions in with them).
import pg from 'pg';
import { quoteIdent as ident, quoteLiteral as literal } from '../../lib/sql-quote.ts';
import type { RoleVerifier } from '../host/api-types.ts';

/** The bootstrap superuser made by initdb; no client can log in as it. */
export const ADMIN_ROLE = 'cloud_admin';

export interface AdminAddress {
  socketDir: string;
  port: number;
}


/** A superuser connection to `database`; the caller ends it. */
export async function connectAdmin(at: AdminAddress, database: string): Promise<pg.Client> {
  const client = new pg.Client({ host: at.socketDir, port: at.port, user: ADMIN_ROLE, database, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined); // a dead server shows on the next query
  await client.connect();
  return client;
}

/** Client sessions, whether one is running or inside a transaction, and when a session last changed state (ms). */
export async function readActivity(c: pg.Client): Promise<{ sessions: number; busy: boolean; lastChange: number }> {
  const r = await c.query<{ sessions: string; busy: boolean | null; last: Date | null }>(
    `SELECT count(*) AS sessions, bool_or(state <> 'idle') AS busy, max(state_change) AS last
       FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename <> '${ADMIN_ROLE}'`);
  const row = r.rows[0];
  return { sessions: Number(row?.sessions ?? 0), busy: row?.busy ?? false, lastChange: row?.last?.getTime() ?? 0 };
}

/** Runs `fn` with a superuser connection to `database`; the connection is closed afterwards. */
export async function withAdmin<T>(at: AdminAddress, database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = await connectAdmin(at, database);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Sets each role's verifier literal where PostgreSQL holds another (or none); returns how many changed. */
export async function syncVerifiers(c: pg.Client, roles: RoleVerifier[]): Promise<number> {
  if (roles.length === 0) return 0;
  const r = await c.query<{ rolname: string; rolpassword: string | null }>('SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1)', [roles.map((x) => x.name)]);
  const held = new Map(r.rows.map((row) => [row.rolname, row.rolpassword]));
  let changed = 0;
  for (const role of roles) {
    if (!held.has(role.name) || held.get(role.name) === role.verifier) continue;
    await c.query(`ALTER ROLE ${ident(role.name)} PASSWORD ${literal(role.verifier)}`);
    changed++;
  }
  return changed;
}
