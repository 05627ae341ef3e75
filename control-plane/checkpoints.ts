// Beyond Neon, for agents: named checkpoints of a branch (a name for a point of its history) and rewind to one in
// a single call. Both are O(1): a checkpoint is a record (timeline, LSN); a rewind points the branch at a new
// timeline branched from the checkpoint's timeline at its LSN, and restarts the branch's computes.
import { pauseLakeTables } from './lake/lake-records.ts';
import { lsnError } from './branch-admin.ts';
import type { BranchAdmin } from './branch-admin.ts';
import { conflict, fromStorageError } from './errors.ts';
import { findCheckpoint, getBranch } from './lookup.ts';
import type { CheckpointRecord, OperationRecord } from './model.ts';
import { operationsOf } from './operations/index.ts';
import type { OperationRunner } from './operations/index.ts';
import type { Plane } from './plane.ts';
import { withComputesStopped } from './timelines.ts';

export class CheckpointAdmin {
  private readonly plane: Plane;
  private readonly branches: BranchAdmin;
  private readonly ops: OperationRunner;

  constructor(plane: Plane, branches: BranchAdmin) {
    this.plane = plane;
    this.branches = branches;
    this.ops = operationsOf(plane);
  }

  list(projectId: string, branchId: string): CheckpointRecord[] {
    const s = this.plane.state.current;
    getBranch(s, projectId, branchId);
    return (s.checkpoints ?? []).filter((c) => c.branch_id === branchId);
  }

  get(projectId: string, branchId: string, name: string): CheckpointRecord {
    const s = this.plane.state.current;
    getBranch(s, projectId, branchId);
    return findCheckpoint(s, branchId, name);
  }

  /** Names the branch's head (or `lsn`, a point of its current timeline). Every acknowledged commit is at or before the head. */
  create(projectId: string, branchId: string, name: string, lsn?: number): Promise<CheckpointRecord> {
    return this.plane.lock.run(projectId, async () => {
      const b = getBranch(this.plane.state.current, projectId, branchId);
      if ((this.plane.state.current.checkpoints ?? []).some((c) => c.branch_id === branchId && c.name === name)) {
        throw conflict('CHECKPOINT_EXISTS', `branch ${branchId} already has a checkpoint named ${JSON.stringify(name)}; delete it first or pick another name`);
      }
      // the point as the storage node numbers it, and as Postgres does (the API's `lsn`)
      const point = await this.storagePoint(b.timeline_id, lsn);
      return this.plane.state.mutate((s) => {
        const cur = getBranch(s, projectId, branchId);
        const c: CheckpointRecord = {
          project_id: projectId, branch_id: branchId, name, timeline_id: cur.timeline_id, lsn: point.lsn, wal_lsn: point.walLsn,
          created_at: new Date().toISOString(),
          roles: s.roles.filter((r) => r.branch_id === branchId).map((r) => ({ ...r })),
          databases: s.databases.filter((d) => d.branch_id === branchId).map((d) => ({ ...d })),
        };
        s.checkpoints ??= [];
        s.checkpoints.push(c);
        return c;
      });
    });
  }

  /** The head of a timeline, or its batch where Postgres' WAL reached `walLsn`: the storage LSN and the WAL one. */
  private async storagePoint(timelineId: string, walLsn: number | undefined): Promise<{ lsn: number; walLsn: number | undefined }> {
    try {
      if (walLsn === undefined) {
        const info = await this.plane.storage.ofTimeline(this.plane.state.current, timelineId).getTimeline(timelineId);
        return { lsn: info.lastLsn, walLsn: info.lastWalLsn ?? undefined };
      }
      const at = await this.plane.storage.ofTimeline(this.plane.state.current, timelineId).lsnAtWal(timelineId, walLsn);
      return { lsn: at.lsn, walLsn };
    } catch (e) {
      throw lsnError(e, walLsn);
    }
  }

  delete(projectId: string, branchId: string, name: string): Promise<CheckpointRecord> {
    return this.plane.lock.run(projectId, async () => {
      const c = await this.plane.state.mutate((s) => {
        getBranch(s, projectId, branchId);
        const found = findCheckpoint(s, branchId, name);
        s.checkpoints = (s.checkpoints ?? []).filter((x) => x !== found && !(x.branch_id === branchId && x.name === name));
        return found;
      });
      await this.branches.collectRetired(projectId, branchId);
      return c;
    });
  }

  /** The branch as it was at the checkpoint: later changes are gone (its old timeline stays for other checkpoints). */
  rewind(projectId: string, branchId: string, name: string): Promise<{ checkpoint: CheckpointRecord; operations: OperationRecord[] }> {
    return this.plane.lock.run(projectId, async () => {
      const s0 = this.plane.state.current;
      getBranch(s0, projectId, branchId);
      const c = findCheckpoint(s0, branchId, name);
      const started = Date.now();
      let timelineId: string;
      try {
        timelineId = (await this.plane.storage.of(s0, projectId).createTimeline({ ancestorTimelineId: c.timeline_id, ancestorLsn: c.lsn })).timelineId;
      } catch (e) {
        throw fromStorageError(e);
      }
      let operations!: OperationRecord[];
      await withComputesStopped(this.plane, branchId, async () => {
        operations = await this.plane.state.mutate((s) => {
          const cur = getBranch(s, projectId, branchId);
          cur.retired_timelines = [...(cur.retired_timelines ?? []), cur.timeline_id];
          cur.timeline_id = timelineId;
          pauseLakeTables(s, branchId, 'rewound to a checkpoint');
          cur.last_reset_at = new Date().toISOString();
          cur.updated_at = cur.last_reset_at;
          // Roles and databases as they were: those made after the checkpoint no longer exist in Postgres. Current
          // verifiers are kept for roles that survive, so a password reset since still holds.
          const now = new Map(s.roles.filter((r) => r.branch_id === branchId).map((r) => [r.name, r]));
          s.roles = s.roles.filter((r) => r.branch_id !== branchId);
          for (const r of c.roles) s.roles.push({ ...r, ...(now.has(r.name) ? { verifier: now.get(r.name)!.verifier, password_sealed: now.get(r.name)!.password_sealed } : {}) });
          s.databases = s.databases.filter((d) => d.branch_id !== branchId);
          for (const d of c.databases) s.databases.push({ ...d });
          return this.ops.record(s, projectId, started, [
            { action: 'create_timeline', branch_id: branchId },
            ...Object.values(s.endpoints).filter((e) => e.branch_id === branchId).map((e) => ({ action: 'start_compute' as const, branch_id: branchId, endpoint_id: e.id })),
          ]);
        });
      });
      await this.branches.collectRetired(projectId, branchId);
      return { checkpoint: c, operations };
    });
  }
}
