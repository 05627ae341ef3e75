// How failures become HTTP responses, on the project's one error model (lib/errors.ts: it has no Node imports, so
// it runs in workerd). Every error body has the same shape:
//   { "error": { "code": "invalid_request", "message": "...", "details"?: [...] } }
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { type ErrorStatus, errorBody, ServiceError } from '../../lib/errors.ts';

/** An error the API means to return, with its status and a stable machine-readable code. */
export class ApiError extends ServiceError {
  override name = 'ApiError';
  constructor(status: ErrorStatus, code: string, message: string, details?: string[]) {
    super(status, code, message, { details });
  }
}

export const notFound = (what: string): ApiError => new ApiError(404, 'not_found', `${what} not found`);

/** Fields of a PostgreSQL error as both drivers report them (NeonDbError over HTTP, DatabaseError over WS). */
interface PostgresErrorFields {
  code?: string;
  constraint?: string;
  sourceError?: unknown;
}

/** Maps a PostgreSQL SQLSTATE to what the client did wrong, when it was the client. */
function fromDatabaseError(err: PostgresErrorFields & Error): ApiError | null {
  switch (err.code) {
    case '23505':
      return new ApiError(409, 'conflict', 'already exists', err.constraint ? [err.constraint] : undefined);
    case '23503':
      return new ApiError(422, 'invalid_reference', 'refers to something that does not exist');
    case '23514':
    case '22003':
      return new ApiError(422, 'constraint_violated', 'a value is out of range');
    case '40001':
    case '40P01':
      return new ApiError(409, 'retry', 'the request conflicted with another; retry it');
  }
  // The database could not be reached or went away (proxy down, compute failed to wake, network), as
  // PostgreSQL reports it (class 08, 57P01-57P03) or as the driver does: retryable, so 503.
  const unreachable =
    err.sourceError !== undefined ||
    /^08|^57P0[123]$/.test(err.code ?? '') ||
    /^(Server error \(HTTP status 5|Connection terminated|All attempts to open a WebSocket)/.test(err.message);
  if (unreachable) return new ApiError(503, 'database_unavailable', 'the database is unavailable; retry shortly');
  return null;
}

export function handleError(err: Error, c: Context): Response {
  let apiError: ApiError | null = null;
  if (err instanceof ApiError) apiError = err;
  else if (err instanceof HTTPException) apiError = new ApiError(err.status as ErrorStatus, 'invalid_request', err.message);
  else apiError = fromDatabaseError(err as PostgresErrorFields & Error);
  if (!apiError) {
    // A bug or an unexpected database error: log it, and don't leak its text to the client.
    console.error('unhandled error', c.req.method, c.req.path, err);
    apiError = new ApiError(500, 'internal', 'internal error');
  }
  if (apiError.status === 503) c.header('Retry-After', '1');
  return c.json(errorBody(apiError, 'internal'), apiError.status as ContentfulStatusCode);
}
