// Operation records in the state document. Every change records its operations inside the same state write as the
// change itself: finished at once when the change was done within the request, or `running` with the job that will
// finish it (runner.ts). Past a bound per project the oldest records are forgotten, but never a running one: its
// job still has to end it, and a client may be polling it.
import { randomUUID } from 'node:crypto';
import type { ServiceError } from '../../lib/errors.ts';
import { plain } from '../lookup.ts';
import type { ControlPlaneState, JobAction, OperationAction, OperationJobInputs, OperationRecord } from '../model.ts';

/** Operations kept per project; older ended ones are forgotten. */
export const KEEP_PER_PROJECT = 200;

export interface OperationSpec {
  action: OperationAction;
  branch_id?: string;
  endpoint_id?: string;
}

function newRecord(projectId: string, started: number, s: OperationSpec, status: 'running' | 'finished'): OperationRecord {
  return {
    id: randomUUID(), project_id: projectId, ...(s.branch_id ? { branch_id: s.branch_id } : {}),
    ...(s.endpoint_id ? { endpoint_id: s.endpoint_id } : {}), action: s.action, status, failures_count: 0,
    created_at: new Date(started).toISOString(), updated_at: new Date().toISOString(), total_duration_ms: Date.now() - started,
  };
}

/** Drops the project's oldest ended operations past KEEP_PER_PROJECT. Running ones are never dropped. */
export function prune(draft: ControlPlaneState, projectId: string): void {
  const all = plain(draft.operations ?? []); // no draft of every operation of every project (lookup.ts `plain`)
  const mine = all.filter((o) => o.project_id === projectId);
  const excess = mine.length - KEEP_PER_PROJECT;
  if (excess <= 0) return;
  const drop = new Set(mine.filter((o) => o.status !== 'running').slice(0, excess).map((o) => o.id));
  draft.operations = all.filter((o) => !drop.has(o.id));
}

/** Operations of a change done within the request: recorded finished. */
export function recordOperations(draft: ControlPlaneState, projectId: string, started: number, specs: OperationSpec[]): OperationRecord[] {
  const ops = specs.map((s) => newRecord(projectId, started, s, 'finished'));
  draft.operations ??= [];
  draft.operations.push(...ops);
  prune(draft, projectId);
  return ops;
}

/** An operation whose job runs after the change is written (runner.ts launches it): recorded running, with its job. */
export function beginOperation<A extends JobAction>(
  draft: ControlPlaneState, projectId: string, started: number, spec: OperationSpec & { action: A }, input: OperationJobInputs[A],
): OperationRecord {
  const op = newRecord(projectId, started, spec, 'running');
  draft.operations ??= [];
  draft.operations.push(op);
  draft.operation_jobs ??= {};
  draft.operation_jobs[op.id] = { action: spec.action, input } as { action: JobAction; input: OperationJobInputs[JobAction] };
  prune(draft, projectId);
  return op;
}

/** Counts a failed attempt of a running operation that will be tried again. */
export function noteFailure(draft: ControlPlaneState, opId: string, failures: number): void {
  const op = draft.operations?.find((o) => o.id === opId);
  if (op?.status !== 'running') return;
  op.failures_count = failures;
  op.updated_at = new Date().toISOString();
}

/**
 * Ends an operation: finished (error null) or failed with its error, and forgets its job. The record of a project
 * deleted meanwhile is dropped with it: nobody can ask for it any more.
 */
export function endOperation(draft: ControlPlaneState, opId: string, failures: number, error: ServiceError | null): void {
  if (draft.operation_jobs) delete draft.operation_jobs[opId];
  const op = draft.operations?.find((o) => o.id === opId);
  if (op?.status !== 'running') return;
  if (!draft.projects[op.project_id]) {
    draft.operations = (draft.operations ?? []).filter((o) => o.id !== opId);
    return;
  }
  const now = new Date();
  op.status = error ? 'failed' : 'finished';
  op.failures_count = failures;
  if (error) {
    op.error = error.message;
    op.error_code = error.code;
  }
  op.updated_at = now.toISOString();
  op.total_duration_ms = Math.max(0, now.getTime() - Date.parse(op.created_at));
}
