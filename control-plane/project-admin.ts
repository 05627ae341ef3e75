// Creating, changing and deleting projects.
import { forgetLakeRecords } from './lake/lake-records.ts';
import { makeVerifier } from '../proxy/auth/scram.ts';
import { badRequest, fromStorageError } from './errors.ts';
import { newBranchId, newEndpointId, newProjectId } from './ids.ts';
import { branchesOf, getProject } from './lookup.ts';
import type { BranchRecord, DatabaseRecord, DefaultEndpointSettings, EndpointRecord, OperationRecord, ProjectRecord, RoleRecord } from './model.ts';
import { operationsOf } from './operations/index.ts';
import type { OperationRunner } from './operations/index.ts';
import type { Plane } from './plane.ts';
import { DEFAULT_DATABASE, OWNER_ROLE, REGION, newPassword } from './projects.ts';
import { ENGINE_PG_VERSION, engineForVersion, unavailableVersion } from './engines.ts';
import type { Projects } from './projects.ts';
import { dropTimelines } from './timelines.ts';

export interface CreateProjectInput {
  name?: string;
  regionId?: string;
  pgVersion?: number;
  branchName?: string;
  roleName?: string;
  databaseName?: string;
  defaultEndpointSettings?: DefaultEndpointSettings;
  historyRetentionSeconds?: number;
}

export interface CreatedProject {
  project: ProjectRecord;
  branch: BranchRecord;
  endpoint: EndpointRecord;
  role: RoleRecord;
  password: string;
  database: DatabaseRecord;
  operations: OperationRecord[];
}

export interface UpdateProjectInput {
  name?: string;
  /** Only its current value is accepted: a project's engine never changes. */
  pgVersion?: number;
  defaultEndpointSettings?: DefaultEndpointSettings;
  historyRetentionSeconds?: number;
}

export class ProjectAdmin {
  private readonly plane: Plane;
  private readonly projects: Projects;
  private readonly ops: OperationRunner;

  constructor(plane: Plane, projects: Projects) {
    this.plane = plane;
    this.projects = projects;
    this.ops = operationsOf(plane);
  }

  async create(input: CreateProjectInput): Promise<CreatedProject> {
    if (input.regionId !== undefined && input.regionId !== REGION) throw badRequest(`region ${input.regionId} is not available here; the only region is "${REGION}"`);
    const engine = input.pgVersion === undefined ? this.plane.defaultEngine : engineForVersion(input.pgVersion);
    if (engine === undefined) throw badRequest(unavailableVersion(input.pgVersion!));
    // The template holds neondb owned by neondb_owner; other names would need a compute at creation time.
    if (input.roleName !== undefined && input.roleName !== OWNER_ROLE) throw badRequest(`projects start with the role ${OWNER_ROLE}; create role ${input.roleName} afterwards (POST .../branches/{branch_id}/roles)`);
    if (input.databaseName !== undefined && input.databaseName !== DEFAULT_DATABASE) throw badRequest(`projects start with the database ${DEFAULT_DATABASE}; create database ${input.databaseName} afterwards (POST .../branches/{branch_id}/databases)`);
    const started = Date.now();
    const template = await this.projects.templateFor(engine, () => this.plane.endpoints.createTemplate(engine));
    const node = this.plane.storage.pick(this.plane.state.current);
    const timeline = await node.client.createTimeline({ ancestorTimelineId: template }).catch((e: unknown) => {
      throw fromStorageError(e);
    });
    const password = newPassword();
    const verifier = await makeVerifier(password);
    const now = new Date().toISOString();
    const projectId = newProjectId();
    const branch: BranchRecord = {
      id: newBranchId(), project_id: projectId, name: input.branchName ?? 'main', parent_id: null, parent_lsn: null, parent_timestamp: null,
      timeline_id: timeline.timelineId, default: true, protected: false, created_at: now, updated_at: now,
    };
    const settings = input.defaultEndpointSettings ?? {};
    const project: ProjectRecord = {
      id: projectId, name: input.name ?? projectId, region_id: REGION, pg_version: ENGINE_PG_VERSION[engine], created_at: now, updated_at: now,
      default_branch_id: branch.id, default_endpoint_settings: settings, history_retention_seconds: input.historyRetentionSeconds ?? 86400,
      storage_node: node.name,
    };
    const endpoint: EndpointRecord = {
      id: newEndpointId(), project_id: projectId, branch_id: branch.id, type: 'read_write',
      suspend_timeout_seconds: settings.suspend_timeout_seconds ?? 0, current_state: 'idle', disabled: false,
      autoscaling_limit_min_cu: settings.autoscaling_limit_min_cu, autoscaling_limit_max_cu: settings.autoscaling_limit_max_cu,
      created_at: now, updated_at: now, last_active: null,
    };
    const role: RoleRecord = {
      branch_id: branch.id, name: OWNER_ROLE, verifier, password_sealed: this.plane.box.seal(password, `${projectId}/${OWNER_ROLE}`),
      protected: false, created_at: now, updated_at: now,
    };
    const operations = await this.plane.state.mutate((s) => {
      const database: DatabaseRecord = { id: s.next_database_id ?? 1, branch_id: branch.id, name: DEFAULT_DATABASE, owner_name: OWNER_ROLE, created_at: now, updated_at: now };
      s.next_database_id = (database.id ?? 0) + 1;
      s.projects[project.id] = project;
      s.branches[branch.id] = branch;
      s.endpoints[endpoint.id] = endpoint;
      s.roles.push(role);
      s.databases.push(database);
      return this.ops.record(s, projectId, started, [
        { action: 'create_timeline', branch_id: branch.id },
        { action: 'start_compute', branch_id: branch.id, endpoint_id: endpoint.id },
      ]);
    });
    const database = this.plane.state.current.databases.find((d) => d.branch_id === branch.id)!;
    return { project, branch, endpoint, role, password, database, operations };
  }

  update(projectId: string, input: UpdateProjectInput): Promise<{ project: ProjectRecord; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, async () => {
      const current = getProject(this.plane.state.current, projectId);
      if (input.pgVersion !== undefined && input.pgVersion !== current.pg_version) {
        throw badRequest(`the pg_version of a project (its engine) cannot change: it is ${current.pg_version}; create a project with "pg_version": ${input.pgVersion} and move the data with pg_dump and pg_restore`);
      }
      const started = Date.now();
      return this.plane.state.mutate((s) => {
        const p = getProject(s, projectId);
        if (input.name !== undefined) p.name = input.name;
        if (input.historyRetentionSeconds !== undefined) p.history_retention_seconds = input.historyRetentionSeconds;
        const ops: OperationRecord[] = [];
        if (input.defaultEndpointSettings) {
          p.default_endpoint_settings = { ...(p.default_endpoint_settings ?? {}), ...input.defaultEndpointSettings };
          // As in Neon, the project's default suspend timeout applies to its endpoints.
          const timeout = input.defaultEndpointSettings.suspend_timeout_seconds;
          if (timeout !== undefined) {
            for (const e of Object.values(s.endpoints).filter((x) => x.project_id === projectId)) {
              e.suspend_timeout_seconds = timeout;
              e.updated_at = new Date().toISOString();
              ops.push(...this.ops.record(s, projectId, started, [{ action: 'apply_config', branch_id: e.branch_id, endpoint_id: e.id }]));
            }
          }
        }
        p.updated_at = new Date().toISOString();
        return { project: p, operations: ops };
      });
    });
  }

  /** Stops the project's computes, forgets it, then deletes its timelines. */
  delete(projectId: string): Promise<{ project: ProjectRecord; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, async () => {
      const s0 = this.plane.state.current;
      const project = getProject(s0, projectId);
      const started = Date.now();
      // Jobs of the project still deleting timelines first: their timelines are children of the project's (a
      // parent is only deleted after its children), and an operation of a gone project cannot be polled.
      await this.ops.settle(projectId);
      const endpoints = Object.values(s0.endpoints).filter((e) => e.project_id === projectId);
      for (const e of endpoints) await this.plane.endpoints.suspend(e.id);
      const branches = branchesOf(this.plane.state.current, projectId);
      const timelines = branches.flatMap((b) => [b.timeline_id, ...[...(b.retired_timelines ?? [])].reverse()]);
      const storage = this.plane.storage.of(s0, projectId);
      const operations = await this.plane.state.mutate((s) => {
        const ops = this.ops.record(s, projectId, started, [
          ...endpoints.map((e) => ({ action: 'suspend_compute' as const, branch_id: e.branch_id, endpoint_id: e.id })),
          ...branches.map((b) => ({ action: 'delete_timeline' as const, branch_id: b.id })),
        ]);
        const ids = new Set(branches.map((b) => b.id));
        delete s.projects[projectId];
        for (const b of branches) delete s.branches[b.id];
        for (const e of endpoints) delete s.endpoints[e.id];
        s.roles = s.roles.filter((r) => !ids.has(r.branch_id));
        s.databases = s.databases.filter((d) => !ids.has(d.branch_id));
        s.checkpoints = (s.checkpoints ?? []).filter((c) => c.project_id !== projectId);
        forgetLakeRecords(s, ids);
        // A running operation stays until its job ends it (its record then goes: operations/records.ts).
        s.operations = (s.operations ?? []).filter((o) => o.project_id !== projectId || o.status === 'running');
        return ops;
      });
      // After the state: a crash here leaves unreferenced timelines (garbage), never records without timelines.
      await dropTimelines(storage, timelines);
      return { project, operations };
    });
  }
}
