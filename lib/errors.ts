// The one error model of every service (after Neon's proxy: ReportableError / ErrorKind; and Hono's
// HTTPException). A ServiceError carries an HTTP status, a stable machine-readable code, a message meant for the
// caller, a kind from a closed list (the only thing metrics may label errors by, so label sets stay bounded) and
// the `cause` it came from. Anything thrown that is not a ServiceError is internal: the caller sees a generic
// text, the log sees the real one.
//
// Two body shapes exist on the wire, fixed by contracts this project meets: the internal APIs' and the example
// app's `{"error": {"code", "message"}}`, and the Neon public API's `{"code", "message"}`. Clients decode either.
// No Node imports: the workers (workerd) use this module too.
import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** Why a request failed, coarsely: a closed list, so `kind` is safe as a metric label. */
export const ERROR_KINDS = [
  'user', // the request is wrong (bad input, a state that forbids it)
  'auth', // missing or wrong credentials, not allowed
  'not_found',
  'conflict', // another writer, an existing name, a fence
  'rate_limit',
  'quota', // a configured limit (size, memory, count)
  'protocol', // a malformed wire message or body
  'client_disconnect',
  'control_plane', // the control plane failed or is unreachable
  'compute', // a compute or compute host failed or is unreachable
  'storage', // the storage node or the object store failed or is unreachable
  'postgres', // Postgres itself answered with an error
  'service', // a bug or an unexpected failure of this service
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

/** HTTP statuses a ServiceError may carry (content-bearing ones; 0 means "no answer": unreachable). */
export type ErrorStatus = 0 | 400 | 401 | 403 | 404 | 405 | 406 | 409 | 410 | 411 | 412 | 413 | 415 | 422 | 423 | 429 | 500 | 502 | 503 | 504 | 507;

export interface ServiceErrorOptions {
  kind?: ErrorKind;
  cause?: unknown;
  /** Extra items shown to the caller (e.g. which fields were wrong). */
  details?: string[];
}

const KIND_OF_STATUS: Partial<Record<ErrorStatus, ErrorKind>> = {
  0: 'service',
  401: 'auth',
  403: 'auth',
  404: 'not_found',
  409: 'conflict',
  412: 'conflict',
  413: 'quota',
  429: 'rate_limit',
  507: 'quota',
};

function defaultKind(status: ErrorStatus): ErrorKind {
  return KIND_OF_STATUS[status] ?? (status >= 500 ? 'service' : 'user');
}

export class ServiceError extends Error {
  override name = 'ServiceError';
  readonly status: ErrorStatus;
  readonly code: string;
  readonly kind: ErrorKind;
  readonly details: string[] | undefined;

  constructor(status: ErrorStatus, code: string, message: string, opts: ServiceErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.status = status;
    this.code = code;
    this.kind = opts.kind ?? defaultKind(status);
    this.details = opts.details;
  }

  /** True for failures the caller caused (4xx): logged quietly, never as a service fault. */
  get isUserError(): boolean {
    return this.status >= 400 && this.status < 500;
  }
}

// ---- constructors for the common cases ----

export const badRequest = (code: string, message: string, opts?: ServiceErrorOptions): ServiceError =>
  new ServiceError(400, code, message, opts);
export const unauthorized = (message = 'missing or wrong Authorization: Bearer token'): ServiceError =>
  new ServiceError(401, 'unauthorized', message);
export const notFound = (code: string, message: string, opts?: ServiceErrorOptions): ServiceError =>
  new ServiceError(404, code, message, opts);
export const conflict = (code: string, message: string, opts?: ServiceErrorOptions): ServiceError =>
  new ServiceError(409, code, message, opts);
export const tooLarge = (code: string, message: string): ServiceError => new ServiceError(413, code, message);
/** Well-formed, but the resource's state forbids it. */
export const unprocessable = (code: string, message: string, opts?: ServiceErrorOptions): ServiceError =>
  new ServiceError(422, code, message, opts);
export const unavailable = (code: string, message: string, opts?: ServiceErrorOptions): ServiceError =>
  new ServiceError(503, code, message, opts);

/** Any thrown value as a ServiceError; unknown ones become a 500 that keeps the original as `cause`. */
export function toServiceError(e: unknown): ServiceError {
  if (e instanceof ServiceError) return e;
  // Hono's own refusals (HTTPException: a body limit, a malformed header) keep their status
  const status = (e as { status?: unknown; getResponse?: unknown } | null)?.status;
  if (typeof status === 'number' && typeof (e as { getResponse?: unknown }).getResponse === 'function' && status >= 400 && status < 500) {
    return new ServiceError(status as ErrorStatus, 'bad_request', (e as Error).message, { cause: e });
  }
  const message = e instanceof Error ? e.message : String(e);
  return new ServiceError(500, 'internal_error', message, { kind: 'service', cause: e });
}

// ---- bodies ----

export interface InternalErrorBody {
  error: { code: string; message: string; details?: string[] };
}
export interface NeonErrorBody {
  code: string;
  message: string;
}
export type ErrorBodyShape = 'internal' | 'neon';

export function errorBody(e: ServiceError, shape: 'internal'): InternalErrorBody;
export function errorBody(e: ServiceError, shape: 'neon'): NeonErrorBody;
export function errorBody(e: ServiceError, shape: ErrorBodyShape): InternalErrorBody | NeonErrorBody;
export function errorBody(e: ServiceError, shape: ErrorBodyShape): InternalErrorBody | NeonErrorBody {
  if (shape === 'neon') return { code: e.code, message: e.message };
  return { error: e.details ? { code: e.code, message: e.message, details: e.details } : { code: e.code, message: e.message } };
}

/**
 * A client's view of an error answer: the body's code and message in whichever shape it came, the service's name
 * in front of the message (unless `prefix: false`: callers that show the service's own text). A body that is not JSON is kept as text.
 */
export function decodeErrorResponse(service: string, status: number, text: string, opts: { kind?: ErrorKind; prefix?: boolean } = {}): ServiceError {
  let code = `http_${status}`;
  let message = text.trim() || `HTTP ${status}`;
  let details: string[] | undefined;
  try {
    const parsed = JSON.parse(text) as Partial<InternalErrorBody & NeonErrorBody>;
    const inner = parsed.error && typeof parsed.error === 'object' ? parsed.error : parsed;
    if (typeof inner.code === 'string') code = inner.code;
    if (typeof inner.message === 'string') message = inner.message;
    if (Array.isArray((inner as { details?: unknown }).details)) details = (inner as { details: string[] }).details;
  } catch {
    // not JSON: keep the raw text
  }
  const known = (status >= 400 && status <= 599 ? status : 500) as ErrorStatus;
  return new ServiceError(known, code, opts.prefix === false ? message : `${service}: ${message}`, { kind: opts.kind, details });
}

/** A service that did not answer at all (refused, reset, timed out): status 0, so callers can tell "down" apart. */
export function unreachable(service: string, url: string, cause: unknown, kind: ErrorKind): ServiceError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new ServiceError(0, 'unreachable', `${service} ${url} is unreachable: ${why}`, { kind, cause });
}

// ---- Hono ----

export interface ErrorHandlerOptions {
  shape: ErrorBodyShape;
  /** The code unexpected failures answer with ('internal_error'; Neon's API says 'INTERNAL_ERROR'). */
  internalCode?: string;
  /** Called for every error answered; service faults (5xx, status 0) deserve a log line with `cause`. */
  log?: (e: ServiceError, c: Context) => void;
}

/** One `app.onError` for an API: every thrown value answered as a ServiceError in the API's body shape. */
export function errorHandler(opts: ErrorHandlerOptions): ErrorHandler {
  return (thrown, c) => {
    let e = toServiceError(thrown);
    if (e.code === 'internal_error' && opts.internalCode) e = new ServiceError(e.status, opts.internalCode, e.message, { kind: e.kind, cause: e.cause });
    opts.log?.(e, c);
    // status 0 (a dependency did not answer) is this service's 503
    return c.json(errorBody(e, opts.shape), (e.status === 0 ? 503 : e.status) as ContentfulStatusCode);
  };
}

/** One `app.notFound`: the API's 404 for a route it does not have. */
export function routeNotFound(shape: ErrorBodyShape, code = 'not_found'): NotFoundHandler {
  return (c) => c.json(errorBody(new ServiceError(404, code, `no route for ${c.req.method} ${c.req.path}`), shape), 404);
}
