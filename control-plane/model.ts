// The control plane's records. Field names follow Neon's public API v2 where the two meet.

export interface ProjectRecord {
  id: string;
  name: string;
  region_id: string;
  pg_version: number;
  created_at: string;
  updated_at: string;
  default_branch_id: string;
}

export interface BranchRecord {
  id: string;
  project_id: string;
  name: string;
  parent_id: string | null;
  /** The storage node's LSN of the branch point (decimal string), as Neon's `parent_lsn`. */
  parent_lsn: string | null;
  parent_timestamp: string | null;
  /** The storage node timeline holding this branch's history. */
  timeline_id: string;
  default: boolean;
  created_at: string;
  updated_at: string;
}

export type EndpointType = 'read_write' | 'read_only';
export type EndpointState = 'idle' | 'active';

export interface EndpointRecord {
  id: string;
  project_id: string;
  branch_id: string;
  type: EndpointType;
  /** Seconds without a query before the compute is stopped; -1 never; 0 means the default (300). */
  suspend_timeout_seconds: number;
  current_state: EndpointState;
  disabled: boolean;
  created_at: string;
  updated_at: string;
  last_active: string | null;
}

export interface RoleRecord {
  branch_id: string;
  name: string;
  /** SCRAM-SHA-256 verifier in Postgres' format: the password itself is never stored in clear. */
  verifier: string;
  protected: boolean;
  created_at: string;
}

export interface DatabaseRecord {
  branch_id: string;
  name: string;
  owner_name: string;
  created_at: string;
}

export interface ControlPlaneState {
  version: 1;
  /** The storage-node timeline holding a freshly initialised data directory; every project branches it. */
  template_timeline_id: string | null;
  projects: Record<string, ProjectRecord>;
  branches: Record<string, BranchRecord>;
  endpoints: Record<string, EndpointRecord>;
  roles: RoleRecord[];
  databases: DatabaseRecord[];
}

export function emptyState(): ControlPlaneState {
  return { version: 1, template_timeline_id: null, projects: {}, branches: {}, endpoints: {}, roles: [], databases: [] };
}

export const DEFAULT_SUSPEND_TIMEOUT_SECONDS = 300;

export function effectiveSuspendTimeout(ep: EndpointRecord): number {
  return ep.suspend_timeout_seconds === 0 ? DEFAULT_SUSPEND_TIMEOUT_SECONDS : ep.suspend_timeout_seconds;
}
