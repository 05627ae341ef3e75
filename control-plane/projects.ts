// Projects: the template every project branches from, and the role verifiers the proxies ask for. A project is a
// branch of the template timeline, so creating one costs a branch (metadata), never an initdb. The API's changes
// live in the *-admin.ts modules.
import { randomBytes } from 'node:crypto';
import type { ControlPlaneState } from './model.ts';
import type { StateStore } from './state-store.ts';
import { ApiError } from './errors.ts';
import { ENGINE_PG_VERSION, type EngineName } from './engines.ts';

export { ApiError } from './errors.ts';

export const OWNER_ROLE = 'neondb_owner';
export const DEFAULT_DATABASE = 'neondb';
/** The Postgres major version of PGlite 0.5.16 (the pglite engine): its server says 18.6 (`SHOW server_version`). */
export const PG_VERSION = ENGINE_PG_VERSION.pglite;
export const REGION = 'local';

/** The statements that make the template look like a new Neon project: database neondb owned by neondb_owner. */
export const TEMPLATE_SETUP_SQL = [
  `CREATE ROLE ${OWNER_ROLE} WITH LOGIN CREATEDB CREATEROLE`,
  `ALTER DATABASE ${DEFAULT_DATABASE} OWNER TO ${OWNER_ROLE}`,
  `ALTER SCHEMA public OWNER TO ${OWNER_ROLE}`,
];

export function newPassword(): string {
  // Neon-style: npg_ followed by random characters.
  return 'npg_' + randomBytes(12).toString('base64url').replace(/[-_]/g, 'x').slice(0, 12);
}

export class Projects {
  readonly state: StateStore;

  constructor(state: StateStore) {
    this.state = state;
  }

  private postgresTemplate: Promise<string> | null = null;

  templateTimeline(): string {
    const t = this.state.current.template_timeline_id;
    if (!t) throw new ApiError(503, 'TEMPLATE_NOT_READY', 'the template timeline is not ready yet; retry in a few seconds');
    return t;
  }

  /**
   * The engine's template timeline. The postgres engine's is made once, on a compute host (initdb needs its
   * binaries), the first time a project needs it; a failure (e.g. the engine cannot run there) is the caller's
   * error and is tried again next time.
   */
  async templateFor(engine: EngineName, make: () => Promise<string>): Promise<string> {
    if (engine === 'pglite') return this.templateTimeline();
    const existing = this.state.current.postgres_template_timeline_id;
    if (existing) return existing;
    this.postgresTemplate ??= (async () => {
      const id = await make();
      await this.state.mutate((s) => {
        s.postgres_template_timeline_id = id;
      });
      return id;
    })().finally(() => {
      this.postgresTemplate = null;
    });
    return this.postgresTemplate;
  }

  /** The role's verifier for an endpoint, or null when the endpoint or the role is unknown (no enumeration). */
  roleVerifier(endpointId: string, role: string): string | null {
    const s: ControlPlaneState = this.state.current;
    const ep = s.endpoints[endpointId];
    if (!ep) return null;
    const r = s.roles.find((x) => x.branch_id === ep.branch_id && x.name === role);
    return r && !r.no_login ? r.verifier : null;
  }

  async ensureTemplate(create: () => Promise<string>): Promise<string> {
    const existing = this.state.current.template_timeline_id;
    if (existing) return existing;
    const id = await create();
    await this.state.mutate((s) => {
      s.template_timeline_id = id;
    });
    return id;
  }
}
