// Projects, branches, endpoints and roles: the operations behind the API. A project is a branch of the template
// timeline, so creating one costs a branch (metadata), never an initdb.
import { randomBytes } from 'node:crypto';
import { StorageClient } from '../storage-node/client.ts';
import { makeVerifier } from '../proxy/scram.ts';
import { newBranchId, newEndpointId, newProjectId } from './ids.ts';
import type { BranchRecord, ControlPlaneState, DatabaseRecord, EndpointRecord, EndpointType, ProjectRecord, RoleRecord } from './model.ts';
import type { StateStore } from './state-store.ts';

export const OWNER_ROLE = 'neondb_owner';
export const DEFAULT_DATABASE = 'neondb';

/** The statements that make the template look like a new Neon project: database neondb owned by neondb_owner. */
export const TEMPLATE_SETUP_SQL = [
  `CREATE ROLE ${OWNER_ROLE} WITH LOGIN CREATEDB CREATEROLE`,
  `ALTER DATABASE ${DEFAULT_DATABASE} OWNER TO ${OWNER_ROLE}`,
  `ALTER SCHEMA public OWNER TO ${OWNER_ROLE}`,
];

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export function newPassword(): string {
  // Neon-style: npg_ followed by random characters.
  return 'npg_' + randomBytes(12).toString('base64url').replace(/[-_]/g, 'x').slice(0, 12);
}

export interface CreatedProject {
  project: ProjectRecord;
  branch: BranchRecord;
  endpoint: EndpointRecord;
  role: RoleRecord;
  password: string;
  database: DatabaseRecord;
}

export class Projects {
  private readonly state: StateStore;
  private readonly storage: StorageClient;

  constructor(state: StateStore, storageUrl: string) {
    this.state = state;
    this.storage = new StorageClient(storageUrl);
  }

  private templateTimeline(): string {
    const t = this.state.current.template_timeline_id;
    if (!t) throw new ApiError(503, 'TEMPLATE_NOT_READY', 'the template timeline is not ready yet; retry in a few seconds');
    return t;
  }

  async createProject(opts: { name?: string; suspendTimeoutSeconds?: number } = {}): Promise<CreatedProject> {
    const timeline = await this.storage.createTimeline({ ancestorTimelineId: this.templateTimeline() });
    const password = newPassword();
    const verifier = await makeVerifier(password);
    const now = new Date().toISOString();
    const projectId = newProjectId();
    const branch: BranchRecord = {
      id: newBranchId(), project_id: projectId, name: 'main', parent_id: null, parent_lsn: null, parent_timestamp: null,
      timeline_id: timeline.timelineId, default: true, created_at: now, updated_at: now,
    };
    const project: ProjectRecord = {
      id: projectId, name: opts.name ?? projectId, region_id: 'local', pg_version: 18, created_at: now, updated_at: now,
      default_branch_id: branch.id,
    };
    const endpoint: EndpointRecord = {
      id: newEndpointId(), project_id: projectId, branch_id: branch.id, type: 'read_write',
      suspend_timeout_seconds: opts.suspendTimeoutSeconds ?? 0, current_state: 'idle', disabled: false,
      created_at: now, updated_at: now, last_active: null,
    };
    const role: RoleRecord = { branch_id: branch.id, name: OWNER_ROLE, verifier, protected: false, created_at: now };
    const database: DatabaseRecord = { branch_id: branch.id, name: DEFAULT_DATABASE, owner_name: OWNER_ROLE, created_at: now };
    await this.state.mutate((s) => {
      s.projects[project.id] = project;
      s.branches[branch.id] = branch;
      s.endpoints[endpoint.id] = endpoint;
      s.roles.push(role);
      s.databases.push(database);
    });
    return { project, branch, endpoint, role, password, database };
  }

  async createBranch(projectId: string, opts: { name?: string; parentId?: string; parentLsn?: number; parentTimestamp?: string; endpointType?: EndpointType } = {}): Promise<{ branch: BranchRecord; endpoint: EndpointRecord | null }> {
    const s = this.state.current;
    const project = s.projects[projectId];
    if (!project) throw new ApiError(404, 'PROJECT_NOT_FOUND', `project ${projectId} not found`);
    const parent = s.branches[opts.parentId ?? project.default_branch_id];
    if (!parent || parent.project_id !== projectId) throw new ApiError(404, 'BRANCH_NOT_FOUND', `branch ${opts.parentId} not found in project ${projectId}`);
    const timeline = await this.storage.createTimeline({
      ancestorTimelineId: parent.timeline_id,
      ...(opts.parentLsn !== undefined ? { ancestorLsn: opts.parentLsn } : {}),
      ...(opts.parentTimestamp !== undefined ? { ancestorTimestamp: opts.parentTimestamp } : {}),
    });
    const now = new Date().toISOString();
    const branch: BranchRecord = {
      id: newBranchId(), project_id: projectId, name: opts.name ?? `br-${Date.now().toString(36)}`, parent_id: parent.id,
      parent_lsn: String(timeline.ancestorLsn), parent_timestamp: opts.parentTimestamp ?? null, timeline_id: timeline.timelineId,
      default: false, created_at: now, updated_at: now,
    };
    const endpoint: EndpointRecord | null = opts.endpointType
      ? {
          id: newEndpointId(), project_id: projectId, branch_id: branch.id, type: opts.endpointType, suspend_timeout_seconds: 0,
          current_state: 'idle', disabled: false, created_at: now, updated_at: now, last_active: null,
        }
      : null;
    await this.state.mutate((d) => {
      d.branches[branch.id] = branch;
      if (endpoint) d.endpoints[endpoint.id] = endpoint;
      // A branch inherits its parent's roles and databases, as in Neon: they are part of the copied data.
      for (const r of d.roles.filter((x) => x.branch_id === parent.id)) d.roles.push({ ...r, branch_id: branch.id });
      for (const db of d.databases.filter((x) => x.branch_id === parent.id)) d.databases.push({ ...db, branch_id: branch.id });
    });
    return { branch, endpoint };
  }

  /** The role's verifier for an endpoint, or null when the endpoint or the role is unknown (no enumeration). */
  roleVerifier(endpointId: string, role: string): string | null {
    const s: ControlPlaneState = this.state.current;
    const ep = s.endpoints[endpointId];
    if (!ep) return null;
    return s.roles.find((r) => r.branch_id === ep.branch_id && r.name === role)?.verifier ?? null;
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
