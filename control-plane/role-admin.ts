// Roles and databases of a branch. They live in Postgres: each change runs SQL on the branch's compute first
// (compute-sql.ts), and the records change only when Postgres said yes. Passwords are for the proxy, which
// checks the SCRAM verifier; Postgres roles have none (computes are reached with the internal password).
// A password reset or a role deletion is published at once to the proxies' invalidation feed
// (role-invalidations.ts), so their cached verifiers of the role are dropped.
import { makeVerifier } from '../proxy/auth/scram.ts';
import { ident, literal } from './compute-sql.ts';
import { type EngineName, engineOf } from './engines.ts';
import { ApiError, conflict, unprocessable } from './errors.ts';
import { getBranch, getDatabase, getProject, getRole } from './lookup.ts';
import type { DatabaseRecord, OperationRecord, RoleRecord } from './model.ts';
import { operationsOf } from './operations/index.ts';
import type { OperationRunner } from './operations/index.ts';
import { invalidationsFor } from './role-invalidations.ts';
import type { Plane } from './plane.ts';
import { OWNER_ROLE, newPassword } from './projects.ts';

export class RoleAdmin {
  private readonly plane: Plane;
  private readonly ops: OperationRunner;

  constructor(plane: Plane) {
    this.plane = plane;
    this.ops = operationsOf(plane);
  }

  private sealContext(projectId: string, role: string): string {
    return `${projectId}/${role}`;
  }

  private async sql(branchId: string, statements: string[], database?: string): Promise<void> {
    if (this.plane.sql) await this.plane.sql.run(this.plane.state.current, branchId, statements, database);
  }

  private engine(projectId: string): EngineName {
    return engineOf(getProject(this.plane.state.current, projectId));
  }

  listRoles(projectId: string, branchId: string): RoleRecord[] {
    const s = this.plane.state.current;
    getBranch(s, projectId, branchId);
    return s.roles.filter((r) => r.branch_id === branchId);
  }

  getRole(projectId: string, branchId: string, name: string): RoleRecord {
    const s = this.plane.state.current;
    getBranch(s, projectId, branchId);
    return getRole(s, branchId, name);
  }

  createRole(projectId: string, branchId: string, name: string, noLogin: boolean): Promise<{ role: RoleRecord; password: string | null; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, async () => {
      const s0 = this.plane.state.current;
      getBranch(s0, projectId, branchId);
      if (s0.roles.some((r) => r.branch_id === branchId && r.name === name)) throw conflict('ROLE_EXISTS', `role ${name} already exists on branch ${branchId}`);
      const started = Date.now();
      const password = noLogin ? null : newPassword();
      // A no-login role gets a verifier of a random password nobody knows: the proxy refuses it anyway.
      const verifier = await makeVerifier(password ?? newPassword());
      await this.sql(branchId, [createRoleSql(this.engine(projectId), name, noLogin, verifier)]);
      const now = new Date().toISOString();
      const role: RoleRecord = {
        branch_id: branchId, name, verifier, protected: false, created_at: now, updated_at: now,
        ...(password ? { password_sealed: this.plane.box.seal(password, this.sealContext(projectId, name)) } : { no_login: true }),
      };
      const operations = await this.plane.state.mutate((s) => {
        getBranch(s, projectId, branchId);
        s.roles.push(role);
        return this.ops.record(s, projectId, started, [{ action: 'apply_config', branch_id: branchId }]);
      });
      return { role, password, operations };
    });
  }

  resetPassword(projectId: string, branchId: string, name: string): Promise<{ role: RoleRecord; password: string; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, async () => {
      const r0 = this.getRole(projectId, branchId, name);
      if (r0.no_login) throw unprocessable('ROLE_NO_LOGIN', `role ${name} cannot log in, so it has no password`);
      const started = Date.now();
      const password = newPassword();
      const verifier = await makeVerifier(password);
      // the postgres engine's compute logs sessions in with the verifier itself (SCRAM pass-through)
      if (this.engine(projectId) === 'postgres') await this.sql(branchId, [`ALTER ROLE ${ident(name)} PASSWORD ${literal(verifier)}`]);
      const result = await this.plane.state.mutate((s) => {
        getBranch(s, projectId, branchId);
        const r = getRole(s, branchId, name);
        r.verifier = verifier;
        r.password_sealed = this.plane.box.seal(password, this.sealContext(projectId, name));
        r.updated_at = new Date().toISOString();
        return { role: r, password, operations: this.ops.record(s, projectId, started, [{ action: 'apply_config', branch_id: branchId }]) };
      });
      invalidationsFor(this.plane.state).sync();
      return result;
    });
  }

  revealPassword(projectId: string, branchId: string, name: string): string {
    const r = this.getRole(projectId, branchId, name);
    if (r.no_login) throw unprocessable('ROLE_NO_LOGIN', `role ${name} cannot log in, so it has no password`);
    if (!r.password_sealed) throw unprocessable('PASSWORD_NOT_STORED', `the password of role ${name} was not stored; reset it (POST .../roles/${name}/reset_password)`);
    try {
      return this.plane.box.open(r.password_sealed, this.sealContext(projectId, name));
    } catch (e) {
      throw unprocessable('PASSWORD_NOT_RECOVERABLE', `${(e as Error).message}; reset it (POST .../roles/${name}/reset_password)`);
    }
  }

  deleteRole(projectId: string, branchId: string, name: string): Promise<{ role: RoleRecord; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, async () => {
      const s0 = this.plane.state.current;
      const role = this.getRole(projectId, branchId, name);
      const owned = s0.databases.filter((d) => d.branch_id === branchId && d.owner_name === name);
      if (owned.length > 0) throw unprocessable('ROLE_OWNS_DATABASES', `role ${name} owns database(s) ${owned.map((d) => d.name).join(', ')}; delete them or give them another owner first`);
      const started = Date.now();
      const postgres = this.engine(projectId) === 'postgres';
      const heir = name !== OWNER_ROLE ? OWNER_ROLE : postgres ? 'cloud_admin' : 'postgres';
      const disown = [`REASSIGN OWNED BY ${ident(name)} TO ${ident(heir)}`, `DROP OWNED BY ${ident(name)}`];
      // what a role owns is per database: every database of the branch (the pglite engine has one)
      if (postgres) for (const d of s0.databases.filter((x) => x.branch_id === branchId)) await this.sql(branchId, disown, d.name);
      await this.sql(branchId, [...(postgres ? [] : disown), `DROP ROLE ${ident(name)}`]);
      const operations = await this.plane.state.mutate((s) => {
        s.roles = s.roles.filter((r) => !(r.branch_id === branchId && r.name === name));
        return this.ops.record(s, projectId, started, [{ action: 'apply_config', branch_id: branchId }]);
      });
      invalidationsFor(this.plane.state).sync();
      return { role, operations };
    });
  }

  listDatabases(projectId: string, branchId: string): DatabaseRecord[] {
    const s = this.plane.state.current;
    getBranch(s, projectId, branchId);
    return s.databases.filter((d) => d.branch_id === branchId);
  }

  getDatabase(projectId: string, branchId: string, name: string): DatabaseRecord {
    const s = this.plane.state.current;
    getBranch(s, projectId, branchId);
    return getDatabase(s, branchId, name);
  }

  createDatabase(projectId: string, branchId: string, name: string, owner: string): Promise<{ database: DatabaseRecord; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, async () => {
      const s0 = this.plane.state.current;
      getBranch(s0, projectId, branchId);
      if (s0.databases.some((d) => d.branch_id === branchId && d.name === name)) throw conflict('DATABASE_EXISTS', `database ${name} already exists on branch ${branchId}`);
      if (!s0.roles.some((r) => r.branch_id === branchId && r.name === owner)) throw new ApiError(400, 'BAD_REQUEST', `owner role ${owner} does not exist on branch ${branchId}; create it first`);
      if (this.engine(projectId) === 'pglite') {
        throw new ApiError(400, 'BAD_REQUEST', `a branch of the pglite engine (Postgres 18 in WebAssembly) has one database, ${s0.databases.find((d) => d.branch_id === branchId)?.name ?? 'neondb'}: create the project with "pg_version": 15 (the postgres engine) for more databases`);
      }
      const started = Date.now();
      await this.sql(branchId, [`CREATE DATABASE ${ident(name)} OWNER ${ident(owner)}`], 'postgres');
      return this.plane.state.mutate((s) => {
        const now = new Date().toISOString();
        const database: DatabaseRecord = { id: s.next_database_id ?? 1, branch_id: branchId, name, owner_name: owner, created_at: now, updated_at: now };
        s.next_database_id = (database.id ?? 0) + 1;
        s.databases.push(database);
        return { database, operations: this.ops.record(s, projectId, started, [{ action: 'apply_config', branch_id: branchId }]) };
      });
    });
  }

  updateDatabase(projectId: string, branchId: string, name: string, input: { name?: string; owner?: string }): Promise<{ database: DatabaseRecord; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, async () => {
      const s0 = this.plane.state.current;
      this.getDatabase(projectId, branchId, name);
      if (input.name !== undefined && input.name !== name && s0.databases.some((d) => d.branch_id === branchId && d.name === input.name)) throw conflict('DATABASE_EXISTS', `database ${input.name} already exists on branch ${branchId}`);
      if (input.owner !== undefined && !s0.roles.some((r) => r.branch_id === branchId && r.name === input.owner)) throw new ApiError(400, 'BAD_REQUEST', `owner role ${input.owner} does not exist on branch ${branchId}`);
      const started = Date.now();
      const statements: string[] = [];
      if (input.owner !== undefined) statements.push(`ALTER DATABASE ${ident(name)} OWNER TO ${ident(input.owner)}`);
      if (input.name !== undefined && input.name !== name) statements.push(`ALTER DATABASE ${ident(name)} RENAME TO ${ident(input.name)}`);
      await this.sql(branchId, statements, this.engine(projectId) === 'postgres' ? 'postgres' : undefined);
      return this.plane.state.mutate((s) => {
        const d = getDatabase(s, branchId, name);
        if (input.owner !== undefined) d.owner_name = input.owner;
        if (input.name !== undefined) d.name = input.name;
        d.updated_at = new Date().toISOString();
        return { database: d, operations: this.ops.record(s, projectId, started, [{ action: 'apply_config', branch_id: branchId }]) };
      });
    });
  }

  deleteDatabase(projectId: string, branchId: string, name: string): Promise<{ database: DatabaseRecord; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, async () => {
      const database = this.getDatabase(projectId, branchId, name);
      const started = Date.now();
      const postgres = this.engine(projectId) === 'postgres';
      // its sessions are ended (they would keep it from being dropped), as a Neon user expects of the API
      await this.sql(branchId, [`DROP DATABASE ${ident(name)}${postgres ? ' WITH (FORCE)' : ''}`], postgres ? 'postgres' : undefined);
      return this.plane.state.mutate((s) => {
        s.databases = s.databases.filter((d) => !(d.branch_id === branchId && d.name === name));
        return { database, operations: this.ops.record(s, projectId, started, [{ action: 'apply_config', branch_id: branchId }]) };
      });
    });
  }
}

/** A role as the API makes it; on the postgres engine with its verifier literal and in neon_superuser (template). */
function createRoleSql(engine: EngineName, name: string, noLogin: boolean, verifier: string): string {
  const base = `CREATE ROLE ${ident(name)} WITH ${noLogin ? 'NOLOGIN' : 'LOGIN'} CREATEDB CREATEROLE`;
  return engine === 'postgres' ? `${base} PASSWORD ${literal(verifier)} IN ROLE neon_superuser` : base;
}
