// Storage-node timelines the control plane no longer needs: removed children first. A timeline that another still
// branches from is kept (the storage node refuses with 409) and returned, to be retried later.
import { StorageNodeError } from '../storage-node/client.ts';
import type { StorageClient } from '../storage-node/client.ts';
import type { Plane } from './plane.ts';

const statusOf = (e: unknown): number | undefined => (e instanceof StorageNodeError ? e.status : undefined);

/**
 * Deletes the timelines it can and returns those still needed. By default any failure counts as "still needed"
 * (best effort, inline); `strict` (a job, which is retried) throws failures other than 404 (gone) and 409 (needed).
 */
export async function dropTimelines(storage: StorageClient, ids: string[], opts: { strict?: boolean } = {}): Promise<string[]> {
  let left = [...new Set(ids)];
  for (;;) {
    const kept: string[] = [];
    for (const id of left) {
      try {
        await storage.deleteTimeline(id);
      } catch (e) {
        if (statusOf(e) === 404) continue; // already gone
        if (opts.strict && statusOf(e) !== 409) throw e;
        kept.push(id);
      }
    }
    if (kept.length === left.length) return kept; // no progress: the rest is still needed
    left = kept;
  }
}

/**
 * Runs `fn` with the branch's computes stopped (a compute must never keep writing to a timeline the branch left),
 * then starts again those that ran: the "restart" of a restore or rewind. A failed restart is left to the next
 * connection, which wakes the endpoint anyway.
 */
export async function withComputesStopped<T>(plane: Plane, branchId: string, fn: () => Promise<T>): Promise<T> {
  const eps = Object.values(plane.state.current.endpoints).filter((e) => e.branch_id === branchId);
  const running = eps.filter((e) => plane.endpoints.location(e.id) !== undefined).map((e) => e.id);
  for (const e of eps) await plane.endpoints.suspend(e.id);
  const result = await fn();
  for (const id of running) await plane.endpoints.wake(id).catch(() => undefined);
  return result;
}
