// Storage-node timelines the control plane no longer needs: removed children first. A timeline that another still
// branches from is kept (the storage node refuses with 409) and returned, to be retried later.
import { StorageNodeError } from '../storage-node/client.ts';
import type { StorageClient } from '../storage-node/client.ts';
import type { Plane } from './plane.ts';

export async function dropTimelines(storage: StorageClient, ids: string[]): Promise<string[]> {
  let left = [...new Set(ids)];
  for (;;) {
    const kept: string[] = [];
    for (const id of left) {
      try {
        await storage.deleteTimeline(id);
      } catch (e) {
        if (e instanceof StorageNodeError && e.status === 404) continue; // already gone
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
