// Operations: Neon's clients (neonctl among them) poll the operations a change returns until they finish. Our
// changes are done when the request returns, so each is recorded finished, inside the same state write as the
// change itself.
import { randomUUID } from 'node:crypto';
import type { ControlPlaneState, OperationAction, OperationRecord } from './model.ts';

/** Operations kept per project; older ones are forgotten. */
const KEEP_PER_PROJECT = 200;

export interface OperationSpec {
  action: OperationAction;
  branch_id?: string;
  endpoint_id?: string;
}

export function recordOperations(draft: ControlPlaneState, projectId: string, started: number, specs: OperationSpec[]): OperationRecord[] {
  const now = new Date().toISOString();
  const ops: OperationRecord[] = specs.map((s) => ({
    id: randomUUID(), project_id: projectId, ...(s.branch_id ? { branch_id: s.branch_id } : {}),
    ...(s.endpoint_id ? { endpoint_id: s.endpoint_id } : {}), action: s.action, status: 'finished', failures_count: 0,
    created_at: new Date(started).toISOString(), updated_at: now, total_duration_ms: Date.now() - started,
  }));
  const all = (draft.operations ??= []);
  all.push(...ops);
  const mine = all.filter((o) => o.project_id === projectId);
  if (mine.length > KEEP_PER_PROJECT) {
    const drop = new Set(mine.slice(0, mine.length - KEEP_PER_PROJECT).map((o) => o.id));
    draft.operations = all.filter((o) => !drop.has(o.id));
  }
  return ops;
}
