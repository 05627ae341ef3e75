// The control plane's records. Field names follow Neon's public API v2 where the two meet. Fields added after the
// first release are optional, so a state written by an older control plane still loads.

import type { SyncedColumn } from '../lake/sync/columns.ts';
import type { ExportRecord } from './lake/exports.ts';
import type { SyncedTableRecord } from './lake/synced-tables.ts';

export interface DefaultEndpointSettings {
  /** Seconds without a query before a compute is stopped; -1 never; 0 the default (300). */
  suspend_timeout_seconds?: number;
  autoscaling_limit_min_cu?: number;
  autoscaling_limit_max_cu?: number;
}

export interface ProjectRecord {
  id: string;
  name: string;
  region_id: string;
  pg_version: number;
  created_at: string;
  updated_at: string;
  default_branch_id: string;
  default_endpoint_settings?: DefaultEndpointSettings;
  history_retention_seconds?: number;
  /** The storage node holding the project's timelines (storage/storage-nodes.ts); absent: the first. Never shown to tenants. */
  storage_node?: string;
}

export interface BranchRecord {
  id: string;
  project_id: string;
  name: string;
  parent_id: string | null;
  /** The branch point on the parent, as the API shows it ("0/3E8"; see lsn.ts). Older states: decimal. */
  parent_lsn: string | null;
  parent_timestamp: string | null;
  /** The storage node timeline holding this branch's history. */
  timeline_id: string;
  /**
   * Timelines this branch used before a restore or rewind that the storage node still keeps (the current timeline
   * branched from them, or a checkpoint points into them). Deleted with the branch, newest first.
   */
  retired_timelines?: string[];
  default: boolean;
  protected?: boolean;
  expires_at?: string | null;
  last_reset_at?: string | null;
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
  name?: string | null;
  /** Seconds without a query before the compute is stopped; -1 never; 0 means the default (300). */
  suspend_timeout_seconds: number;
  autoscaling_limit_min_cu?: number;
  autoscaling_limit_max_cu?: number;
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
  /** The password sealed with the control plane's secret (password-box.ts), for reveal_password. */
  password_sealed?: string;
  no_login?: boolean;
  protected: boolean;
  created_at: string;
  updated_at?: string;
}

export interface DatabaseRecord {
  id?: number;
  branch_id: string;
  name: string;
  owner_name: string;
  created_at: string;
  updated_at?: string;
}

/** Beyond Neon: a name for a point of a branch's history, to rewind to in O(1). */
export interface CheckpointRecord {
  project_id: string;
  branch_id: string;
  name: string;
  /** The point: an LSN of `timeline_id` (the branch's timeline when the checkpoint was taken). */
  timeline_id: string;
  lsn: number;
  /** The same point as Postgres numbers it (pg_current_wal_lsn() there), what the API shows; absent in older states. */
  wal_lsn?: number;
  created_at: string;
  /** The branch's roles and databases at that point, given back by a rewind. */
  roles: RoleRecord[];
  databases: DatabaseRecord[];
}

/** A table of a branch synced into the lake (lake/): two Iceberg tables in the bucket, the current state and every change. */
export interface LakeTableRecord {
  id: string;
  project_id: string;
  branch_id: string;
  /** `schema.table` as Postgres names it. */
  source_table: string;
  database: string;
  /** Key prefixes in the bucket of the current-state and the history tables. */
  current_prefix: string;
  history_prefix: string;
  /** initializing (first copy), syncing, paused (DDL the lake cannot follow: `status_message` says what). */
  status: 'initializing' | 'syncing' | 'paused';
  status_message?: string;
  /** The source's columns as the lake holds them (lake/sync/columns.ts SyncedColumn). */
  columns: SyncedColumn[];
  last_synced_lsn: string | null;
  last_synced_at: string | null;
  created_at: string;
}

export type OperationAction =
  | 'create_timeline' | 'create_branch' | 'delete_timeline' | 'start_compute' | 'suspend_compute' | 'create_compute'
  | 'apply_config' | 'apply_storage_config' | 'sync_lake_table' | 'load_synced_table' | 'export_branch';
export type OperationStatus = 'running' | 'finished' | 'failed';

/** What the job of a background operation needs, by action: all of it, so the job can run again after a restart. */
export interface OperationJobInputs {
  /** Storage-node timelines to delete, children first (a deleted branch's current and retired timelines). */
  delete_timeline: { timeline_ids: string[]; /** The node holding them; absent: the first. */ storage_node?: string };
}
export type JobAction = keyof OperationJobInputs & OperationAction;
export type OperationJob = { [A in JobAction]: { action: A; input: OperationJobInputs[A] } }[JobAction];

export interface OperationRecord {
  id: string;
  project_id: string;
  branch_id?: string;
  endpoint_id?: string;
  action: OperationAction;
  status: OperationStatus;
  /** Why a `failed` operation failed: the message (Neon's field) and its stable code. */
  error?: string;
  error_code?: string;
  /** Attempts of its job that failed (a retried job that then finished keeps its count). */
  failures_count: number;
  created_at: string;
  updated_at: string;
  total_duration_ms: number;
}

export interface ControlPlaneState {
  version: 1;
  /** The storage-node timeline holding a freshly initialised data directory; every project branches it. */
  template_timeline_id: string | null;
  /** The postgres engine's template timeline, made on a compute host the first time a project needs it. */
  postgres_template_timeline_id?: string | null;
  projects: Record<string, ProjectRecord>;
  branches: Record<string, BranchRecord>;
  endpoints: Record<string, EndpointRecord>;
  roles: RoleRecord[];
  databases: DatabaseRecord[];
  checkpoints?: CheckpointRecord[];
  /** Newest last; the oldest ended ones are dropped past a bound per project (operations/records.ts). */
  operations?: OperationRecord[];
  /** The jobs of `running` operations, by operation id (operations/runner.ts); removed when the operation ends. */
  operation_jobs?: Record<string, OperationJob>;
  lake_tables?: Record<string, LakeTableRecord>;
  synced_tables?: Record<string, SyncedTableRecord>;
  lake_exports?: Record<string, ExportRecord>;
  next_database_id?: number;
}

export function emptyState(): ControlPlaneState {
  return { version: 1, template_timeline_id: null, projects: {}, branches: {}, endpoints: {}, roles: [], databases: [], checkpoints: [], operations: [], next_database_id: 1 };
}

export const DEFAULT_SUSPEND_TIMEOUT_SECONDS = 300;

export function effectiveSuspendTimeout(ep: EndpointRecord): number {
  return ep.suspend_timeout_seconds === 0 ? DEFAULT_SUSPEND_TIMEOUT_SECONDS : ep.suspend_timeout_seconds;
}
