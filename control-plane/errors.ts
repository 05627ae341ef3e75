// The control plane's errors are lib/errors.ts' ServiceError, with the codes of Neon's API ('BAD_REQUEST',
// 'BRANCH_NOT_FOUND'...): the public API answers them as `{"code": ..., "message": ...}` with their status
// (http/public-api.ts). Messages say what to do next where there is something to do.
import { ServiceError } from '../lib/errors.ts';
import { StorageNodeError } from '../storage-node/client.ts';
import { ComputeHostError } from './compute-host-client.ts';

/** The control plane's name for ServiceError: `new ApiError(status, code, message)` and `instanceof` both work. */
export const ApiError = ServiceError;
export type ApiError = ServiceError;

export const badRequest = (message: string): ServiceError => new ServiceError(400, 'BAD_REQUEST', message);
export const notFound = (code: string, message: string): ServiceError => new ServiceError(404, code, message);
export const conflict = (code: string, message: string): ServiceError => new ServiceError(409, code, message);
/** Well-formed, but the resource's state forbids it (a branch with children, the default branch...). */
export const unprocessable = (code: string, message: string): ServiceError => new ServiceError(422, code, message);

/** A storage-node refusal in API terms: bad points in history are the caller's; the rest is ours. */
export function fromStorageError(e: unknown): unknown {
  if (!(e instanceof StorageNodeError)) return e;
  if (e.status === 400) return new ServiceError(400, 'BAD_REQUEST', e.message, { cause: e });
  if (e.status === 0) return new ServiceError(503, 'STORAGE_UNAVAILABLE', e.message, { kind: 'storage', cause: e });
  return new ServiceError(500, 'STORAGE_ERROR', `storage node: ${e.message}`, { kind: 'storage', cause: e });
}

/**
 * What an API answers for a thrown value: a dependency's own error that no caller turned into an API error (a
 * compute host's, a storage node's) is this service's internal error (500), never the dependency's status.
 */
export function asApiError<E>(e: E): E | ServiceError {
  if (e instanceof ComputeHostError) return new ServiceError(500, 'internal_error', e.message, { kind: 'compute', cause: e });
  if (e instanceof StorageNodeError) return new ServiceError(500, 'internal_error', e.message, { kind: 'storage', cause: e });
  return e;
}
