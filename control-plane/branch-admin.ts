// Branches: create (from a parent at its head, an LSN or a time), change, delete, restore. Every one of them is
// metadata on the storage node (a timeline with an ancestor), so its cost never depends on the data.
import { forgetLakeRecords, pauseLakeTables } from './lake/lake-records.ts';
import { StorageNodeError } from '../storage-node/client.ts';
import { badRequest, conflict, fromStorageError, unprocessable } from './errors.ts';
import { newBranchId, newEndpointId } from './ids.ts';
import { childrenOf, endpointsOfBranch, findCheckpoint, getBranch, getProject, plain } from './lookup.ts';
import { formatLsn } from './lsn.ts';
import type { BranchRecord, CheckpointRecord, ControlPlaneState, EndpointRecord, EndpointType, OperationRecord } from './model.ts';
import { operationsOf } from './operations/index.ts';
import type { OperationRunner, OperationSpec } from './operations/index.ts';
import type { Plane } from './plane.ts';
import { dropTimelines, withComputesStopped } from './timelines.ts';

/** Where in a branch's history: its head, an LSN, or the state as of a time. */
/** The most a branch's creation waits for its parent's checkpoint (a busy compute's may take longer: it goes on). */
const CHECKPOINT_WAIT_MS = 2000;

export type PointInTime = { lsn: number } | { timestamp: string } | Record<string, never>;

export interface NewEndpointSpec {
  type: EndpointType;
  suspend_timeout_seconds?: number;
  autoscaling_limit_min_cu?: number;
  autoscaling_limit_max_cu?: number;
}

export interface CreateBranchInput {
  name?: string;
  parentId?: string;
  at: PointInTime;
  /** Beyond Neon: the branch starts at this checkpoint of its parent (its data, roles and databases as then). */
  fromCheckpoint?: string;
  protected?: boolean;
  expiresAt?: string;
  endpoints: NewEndpointSpec[];
}

export interface RestoreInput {
  sourceBranchId: string;
  at: PointInTime;
  preserveUnderName?: string;
}

export function assertNameFree(s: ControlPlaneState, projectId: string, name: string, except?: string): void {
  const taken = Object.values(plain(s.branches)).some((b) => b.project_id === projectId && b.name === name && b.id !== except);
  if (taken) throw conflict('BRANCH_NAME_TAKEN', `a branch named ${JSON.stringify(name)} already exists in project ${projectId}; pick another name`);
}

/** Copies a branch's roles and databases to another: they are part of the copied data, as in Neon. */
function copyRolesAndDatabases(s: ControlPlaneState, from: string, to: string): void {
  // plain scans (lookup.ts `plain`): a draft of every role and database of every project would cost each change O(n)
  if (plain(s.roles).some((r) => r.branch_id === to)) s.roles = plain(s.roles).filter((r) => r.branch_id !== to);
  if (plain(s.databases).some((d) => d.branch_id === to)) s.databases = plain(s.databases).filter((d) => d.branch_id !== to);
  for (const r of plain(s.roles).filter((x) => x.branch_id === from)) s.roles.push({ ...r, branch_id: to });
  for (const d of plain(s.databases).filter((x) => x.branch_id === from)) {
    s.databases.push({ ...d, id: s.next_database_id ?? 1, branch_id: to });
    s.next_database_id = (s.next_database_id ?? 1) + 1;
  }
}

/** A checkpoint's roles and databases, as they were when it was taken, to a new branch. */
function copyRolesAndDatabasesOf(s: ControlPlaneState, c: CheckpointRecord, to: string): void {
  for (const r of c.roles) s.roles.push({ ...r, branch_id: to });
  for (const d of c.databases) {
    s.databases.push({ ...d, id: s.next_database_id ?? 1, branch_id: to });
    s.next_database_id = (s.next_database_id ?? 1) + 1;
  }
}

/**
 * The storage node's refusal of a Postgres LSN, in the API's words: past the branch's head (Neon refuses a
 * parent_lsn its pageserver has not reached), or before its history (garbage-collected, or before its own start).
 */
export function lsnError(e: unknown, lsn: number | undefined): unknown {
  if (lsn !== undefined && e instanceof StorageNodeError && e.status === 400) {
    if (e.code === 'lsn_ahead') {
      const head = /last WAL position (\S+)$/.exec(e.message)?.[1];
      return badRequest(`LSN ${formatLsn(lsn)} is ahead of the branch's last LSN${head ? ` ${head}` : ''}: nothing has been written there yet`);
    }
    if (e.code === 'lsn_out_of_range') return badRequest(`LSN ${formatLsn(lsn)} is outside the branch's retained history: ${e.message}`);
  }
  return fromStorageError(e);
}

export class BranchAdmin {
  private readonly plane: Plane;
  private readonly ops: OperationRunner;

  constructor(plane: Plane) {
    this.plane = plane;
    this.ops = operationsOf(plane);
  }

  /**
   * A new timeline of `source` at `at` (a Postgres LSN, a time, the head) or at a storage-node LSN of its own (a
   * checkpoint's): the one storage-node call behind create and restore. Answers the branch point as Postgres
   * says it (`pg_current_wal_lsn()` there), the API's `parent_lsn`.
   */
  private async branchTimeline(sourceTimeline: string, at: PointInTime | { storageLsn: number }): Promise<{ timelineId: string; walLsn: string }> {
    try {
      const t = await this.plane.storage.ofTimeline(this.plane.state.current, sourceTimeline).createTimeline({
        ancestorTimelineId: sourceTimeline,
        ...('storageLsn' in at ? { ancestorLsn: at.storageLsn } : {}),
        ...('lsn' in at ? { ancestorWalLsn: at.lsn } : {}),
        ...('timestamp' in at ? { ancestorTimestamp: at.timestamp } : {}),
      });
      // an LSN asked for is the branch point as Neon shows it; the batch found may end a few zero bytes short of it
      return { timelineId: t.timelineId, walLsn: formatLsn('lsn' in at ? at.lsn : (t.ancestorWalLsn ?? 0)) };
    } catch (e) {
      throw lsnError(e, 'lsn' in at ? at.lsn : undefined);
    }
  }

  /** A branch at the head: the parent's running read-write compute checkpoints first (EndpointManager.checkpointIfRunning). */
  private async checkpointParent(parentId: string): Promise<void> {
    const s = this.plane.state.current;
    const writer = Object.values(s.endpoints).find((e) => e.branch_id === parentId && e.type === 'read_write');
    if (!writer) return;
    const database = s.databases.find((d) => d.branch_id === parentId)?.name ?? 'neondb';
    await this.plane.endpoints.checkpointIfRunning(writer.id, database, CHECKPOINT_WAIT_MS);
  }

  create(projectId: string, input: CreateBranchInput): Promise<{ branch: BranchRecord; endpoints: EndpointRecord[]; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, async () => {
      const s0 = this.plane.state.current;
      const project = getProject(s0, projectId);
      const parent = getBranch(s0, projectId, input.parentId ?? project.default_branch_id);
      if (input.name !== undefined) assertNameFree(s0, projectId, input.name);
      if (input.endpoints.filter((e) => e.type === 'read_write').length > 1) throw badRequest('a branch can have at most one read_write endpoint');
      const started = Date.now();
      const checkpoint = input.fromCheckpoint === undefined ? undefined : findCheckpoint(s0, parent.id, input.fromCheckpoint);
      const atHead = !checkpoint && !('lsn' in input.at) && !('timestamp' in input.at);
      if (atHead) await this.checkpointParent(parent.id);
      const t = checkpoint
        ? await this.branchTimeline(checkpoint.timeline_id, { storageLsn: checkpoint.lsn })
        : await this.branchTimeline(parent.timeline_id, input.at);
      const now = new Date().toISOString();
      const id = newBranchId();
      const branch: BranchRecord = {
        id, project_id: projectId, name: input.name ?? id, parent_id: parent.id, parent_lsn: t.walLsn,
        parent_timestamp: 'timestamp' in input.at ? new Date(input.at.timestamp).toISOString() : null, timeline_id: t.timelineId,
        default: false, protected: input.protected ?? false, expires_at: input.expiresAt ?? null, created_at: now, updated_at: now,
      };
      const defaults = project.default_endpoint_settings ?? {};
      const endpoints: EndpointRecord[] = input.endpoints.map((e) => ({
        id: newEndpointId(), project_id: projectId, branch_id: id, type: e.type,
        suspend_timeout_seconds: e.suspend_timeout_seconds ?? defaults.suspend_timeout_seconds ?? 0,
        autoscaling_limit_min_cu: e.autoscaling_limit_min_cu ?? defaults.autoscaling_limit_min_cu,
        autoscaling_limit_max_cu: e.autoscaling_limit_max_cu ?? defaults.autoscaling_limit_max_cu,
        current_state: 'idle', disabled: false, created_at: now, updated_at: now, last_active: null,
      }));
      try {
        const operations = await this.plane.state.mutate((s) => {
          assertNameFree(s, projectId, branch.name);
          getBranch(s, projectId, parent.id);
          s.branches[id] = branch;
          for (const e of endpoints) s.endpoints[e.id] = e;
          if (checkpoint) copyRolesAndDatabasesOf(s, checkpoint, id);
          else copyRolesAndDatabases(s, parent.id, id);
          return this.ops.record(s, projectId, started, [
            { action: 'create_branch', branch_id: id },
            ...endpoints.map((e): OperationSpec => ({ action: 'start_compute', branch_id: id, endpoint_id: e.id })),
          ]);
        });
        return { branch, endpoints, operations };
      } catch (e) {
        await dropTimelines(this.plane.storage.of(this.plane.state.current, projectId), [t.timelineId]);
        throw e;
      }
    });
  }

  update(projectId: string, branchId: string, input: { name?: string; protected?: boolean; expiresAt?: string | null }): Promise<{ branch: BranchRecord; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, () => this.plane.state.mutate((s) => {
      const b = getBranch(s, projectId, branchId);
      if (input.name !== undefined) {
        assertNameFree(s, projectId, input.name, branchId);
        b.name = input.name;
      }
      if (input.protected !== undefined) b.protected = input.protected;
      if (input.expiresAt !== undefined) b.expires_at = input.expiresAt;
      b.updated_at = new Date().toISOString();
      return { branch: b, operations: [] };
    }));
  }

  setDefault(projectId: string, branchId: string): Promise<{ branch: BranchRecord; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, () => this.plane.state.mutate((s) => {
      const b = getBranch(s, projectId, branchId);
      const p = getProject(s, projectId);
      const old = s.branches[p.default_branch_id];
      if (old) old.default = false;
      b.default = true;
      p.default_branch_id = b.id;
      return { branch: b, operations: [] };
    }));
  }

  delete(projectId: string, branchId: string): Promise<{ branch: BranchRecord; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, async () => {
      const s0 = this.plane.state.current;
      const branch = getBranch(s0, projectId, branchId);
      if (branch.default) throw unprocessable('BRANCH_IS_DEFAULT', `branch ${branchId} is the project's default branch and cannot be deleted; make another branch the default first (POST .../branches/{branch_id}/set_as_default)`);
      if (branch.protected) throw unprocessable('BRANCH_PROTECTED', `branch ${branchId} is protected; unprotect it first (PATCH with {"branch": {"protected": false}})`);
      const children = childrenOf(s0, branchId);
      if (children.length > 0) throw unprocessable('BRANCH_HAS_CHILDREN', `branch ${branchId} has child branches (${children.map((c) => c.id).join(', ')}) and cannot be deleted; delete them first`);
      const started = Date.now();
      const endpoints = endpointsOfBranch(s0, branchId);
      for (const e of endpoints) await this.plane.endpoints.suspend(e.id);
      // The timelines are deleted by a background job (operations/jobs.ts): its operation answers `running`.
      const timelines = [branch.timeline_id, ...[...(branch.retired_timelines ?? [])].reverse()];
      const operations = await this.plane.state.mutate((s) => {
        const ops = [
          ...this.ops.record(s, projectId, started, endpoints.map((e): OperationSpec => ({ action: 'suspend_compute', branch_id: branchId, endpoint_id: e.id }))),
          this.ops.begin(s, projectId, started, { action: 'delete_timeline', branch_id: branchId }, { timeline_ids: timelines, storage_node: this.plane.storage.nodeOf(s0, projectId).name }),
        ];
        delete s.branches[branchId];
        for (const e of endpoints) delete s.endpoints[e.id];
        s.roles = s.roles.filter((r) => r.branch_id !== branchId);
        s.databases = s.databases.filter((d) => d.branch_id !== branchId);
        s.checkpoints = (s.checkpoints ?? []).filter((c) => c.branch_id !== branchId);
        forgetLakeRecords(s, new Set([branchId]));
        return ops;
      });
      this.ops.launch(operations);
      return { branch, operations };
    });
  }

  /**
   * Neon's restore: the branch takes the state of `source` (itself, its parent or another branch) at its head, an
   * LSN or a time. Its old state is kept as a new branch named `preserveUnderName`, which then becomes its parent
   * and adopts its children; without that name, the old state goes.
   */
  restore(projectId: string, branchId: string, input: RestoreInput): Promise<{ branch: BranchRecord; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, async () => {
      const s0 = this.plane.state.current;
      const target = getBranch(s0, projectId, branchId);
      const source = getBranch(s0, projectId, input.sourceBranchId);
      const self = source.id === target.id;
      const keep = input.preserveUnderName;
      if (self && !('lsn' in input.at) && !('timestamp' in input.at)) throw badRequest('restoring a branch from itself needs source_lsn or source_timestamp');
      if (self && keep === undefined) throw badRequest('restoring a branch from its own history needs preserve_under_name, the name that keeps its current state');
      if (childrenOf(s0, branchId).length > 0 && keep === undefined) throw badRequest(`branch ${branchId} has child branches: give preserve_under_name, the branch that keeps its current state and adopts them`);
      if (keep !== undefined) assertNameFree(s0, projectId, keep);
      if (target.protected) throw unprocessable('BRANCH_PROTECTED', `branch ${branchId} is protected; unprotect it first`);
      const started = Date.now();
      const t = await this.branchTimeline(source.timeline_id, input.at);
      const oldTimeline = target.timeline_id;
      const oldRetired = target.retired_timelines ?? [];
      let result!: { branch: BranchRecord; operations: OperationRecord[] };
      await withComputesStopped(this.plane, branchId, async () => {
        result = await this.plane.state.mutate((s) => {
          const b = getBranch(s, projectId, branchId);
          const now = new Date().toISOString();
          const specs: OperationSpec[] = [{ action: 'create_timeline', branch_id: branchId }];
          let preservedId: string | null = null;
          if (keep !== undefined) {
            assertNameFree(s, projectId, keep);
            preservedId = newBranchId();
            s.branches[preservedId] = {
              ...b, id: preservedId, name: keep, default: false, protected: false, timeline_id: oldTimeline,
              retired_timelines: oldRetired, created_at: now, updated_at: now, last_reset_at: null,
            };
            for (const c of childrenOf(s, branchId)) c.parent_id = preservedId;
            copyRolesAndDatabases(s, branchId, preservedId);
            for (const c of s.checkpoints ?? []) if (c.branch_id === branchId) c.branch_id = preservedId;
            b.retired_timelines = [];
            specs.push({ action: 'create_branch', branch_id: preservedId });
          } else {
            b.retired_timelines = [...oldRetired, oldTimeline];
          }
          b.timeline_id = t.timelineId;
          pauseLakeTables(s, branchId, self ? 'restored to an earlier point of itself' : 'reset or restored from another branch');
          b.parent_id = self ? preservedId : source.id;
          b.parent_lsn = t.walLsn;
          b.parent_timestamp = 'timestamp' in input.at ? new Date(input.at.timestamp).toISOString() : null;
          b.last_reset_at = now;
          b.updated_at = now;
          if (!self) copyRolesAndDatabases(s, source.id, branchId);
          for (const e of endpointsOfBranch(s, branchId)) specs.push({ action: 'start_compute', branch_id: branchId, endpoint_id: e.id });
          return { branch: b, operations: this.ops.record(s, projectId, started, specs) };
        });
      });
      if (keep === undefined) await this.collectRetired(projectId, branchId);
      return { branch: this.plane.state.current.branches[branchId] ?? result.branch, operations: result.operations };
    });
  }

  /** Deletes the retired timelines of a branch that nothing needs any more (no checkpoint, no branch on them). */
  async collectRetired(projectId: string, branchId: string): Promise<void> {
    const b = this.plane.state.current.branches[branchId];
    if (!b || b.project_id !== projectId || !b.retired_timelines?.length) return;
    const pinned = new Set((this.plane.state.current.checkpoints ?? []).map((c) => c.timeline_id));
    const candidates = [...b.retired_timelines].reverse().filter((t) => !pinned.has(t));
    const kept = new Set(await dropTimelines(this.plane.storage.of(this.plane.state.current, projectId), candidates));
    const gone = new Set(candidates.filter((t) => !kept.has(t)));
    if (gone.size === 0) return;
    await this.plane.state.mutate((s) => {
      const x = s.branches[branchId];
      if (x) x.retired_timelines = (x.retired_timelines ?? []).filter((t) => !gone.has(t));
    });
  }
}
