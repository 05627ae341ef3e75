// The jobs of background operations, by action: a typed registry (every JobAction has exactly one executor). A job
// gets all it needs from its input, which is stored in the state document with its operation, and must be
// idempotent: it runs again after a failed attempt and after a control-plane restart.
//
// Per action, whether a job left running by a restart runs again (resumable) or its operation is marked failed
// ("interrupted by a control-plane restart"):
// - delete_timeline: resumable. Deleting a timeline that is already gone answers 404, which counts as done.
// Operations of any other action found `running` at start-up (none is recorded so today; a newer or older control
// plane might have) have no job here and are marked failed.
import { ServiceError, toServiceError } from '../../lib/errors.ts';
import type { StorageClient } from '../../storage-node/client.ts';
import type { StorageNodes } from '../storage/storage-nodes.ts';
import type { JobAction, OperationJobInputs } from '../model.ts';
import { dropTimelines } from '../timelines.ts';

export interface JobDefinition<A extends JobAction> {
  run(input: OperationJobInputs[A]): Promise<void>;
  resumable: boolean;
}

export type JobRegistry = { [A in JobAction]: JobDefinition<A> };

/** A storage-node failure as the operation's error: no answer or 5xx is `storage` (transient, retried); a refusal is not. */
export function storageJobError(e: unknown): ServiceError {
  const status = (e as { status?: unknown } | null)?.status;
  if (typeof status !== 'number') return toServiceError(e);
  const message = `storage node: ${(e as Error).message}`;
  if (status === 0 || status >= 500) return new ServiceError(503, 'STORAGE_UNAVAILABLE', message, { kind: 'storage', cause: e });
  return new ServiceError(500, 'STORAGE_ERROR', message, { kind: 'service', cause: e });
}

/**
 * Why timeline deletion runs in the background: a branch delete used to wait for the storage node to delete every
 * timeline of the branch (its current one and those retired by restores and rewinds), and a storage node that was
 * slow or down made the delete either hang or silently leave garbage. Now the branch is gone from the records at
 * once and its timelines are deleted by a job that is retried, survives restarts, and says when it failed.
 */
async function deleteTimelines(storage: StorageClient, ids: string[]): Promise<void> {
  try {
    await dropTimelines(storage, ids, { strict: true });
  } catch (e) {
    throw storageJobError(e);
  }
}

export function jobRegistry(deps: { storage: StorageNodes }): JobRegistry {
  return {
    delete_timeline: { resumable: true, run: (input) => deleteTimelines(deps.storage.byName(input.storage_node).client, input.timeline_ids) },
  };
}
