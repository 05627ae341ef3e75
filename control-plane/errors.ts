// Errors the API answers as Neon does: `{"code": ..., "message": ...}` with an HTTP status. Messages say what to
// do next where there is something to do.
import { StorageNodeError } from '../storage-node/client.ts';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export const badRequest = (message: string): ApiError => new ApiError(400, 'BAD_REQUEST', message);
export const notFound = (code: string, message: string): ApiError => new ApiError(404, code, message);
export const conflict = (code: string, message: string): ApiError => new ApiError(409, code, message);
/** Well-formed, but the resource's state forbids it (a branch with children, the default branch...). */
export const unprocessable = (code: string, message: string): ApiError => new ApiError(422, code, message);

/** A storage-node refusal in API terms: bad points in history are the caller's; the rest is ours. */
export function fromStorageError(e: unknown): unknown {
  if (!(e instanceof StorageNodeError)) return e;
  if (e.status === 400) return badRequest(e.message);
  if (e.status === 0) return new ApiError(503, 'STORAGE_UNAVAILABLE', e.message);
  return new ApiError(500, 'STORAGE_ERROR', `storage node: ${e.message}`);
}
