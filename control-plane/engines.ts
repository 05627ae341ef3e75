// The two compute engines as the API shows them: a project's `pg_version` names its engine, as on Neon, and never
// changes; its branches and endpoints inherit it. PGlite is Postgres 18 in WebAssembly (thousands of small, mostly
// idle databases); the postgres engine is Debian's PostgreSQL 15 on a FUSE data directory (concurrent sessions,
// extensions, every database of a branch reachable).
import { ENGINES, type EngineName } from '../compute/host/api-types.ts';
import type { ProjectRecord } from './model.ts';

export type { EngineName } from '../compute/host/api-types.ts';
export { ENGINES };

/** The major version each engine's server really is (`SHOW server_version`). */
export const ENGINE_PG_VERSION: Record<EngineName, number> = { pglite: 18, postgres: 15 };

export function engineForVersion(version: number): EngineName | undefined {
  return ENGINES.find((e) => ENGINE_PG_VERSION[e] === version);
}

export function engineOf(p: Pick<ProjectRecord, 'pg_version'>): EngineName {
  return engineForVersion(p.pg_version) ?? 'pglite';
}

/** The error text for a pg_version no engine runs. */
export function unavailableVersion(version: number): string {
  const offered = ENGINES.map((e) => `${ENGINE_PG_VERSION[e]} (the ${e} engine)`).join(' and ');
  return `Postgres ${version} is not available here: pg_version may be ${offered}`;
}
