// The internal API's error answers, in the shape Neon's control plane gives its proxies and
// proxy/directory/http-directory.ts parses: `{"message", "reason"?, "retriable"?, "detail"?}`. A proxy may show
// `message` to its users, so a refusal with one of Neon's reasons (which select the proxy's own texts and retries)
// and an internal failure both say '' there and put the control plane's text in `detail`.
import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { type ErrorStatus, type ServiceErrorOptions, ServiceError, toServiceError } from '../../lib/errors.ts';
import { asApiError } from '../errors.ts';

export interface InternalErrorBody {
  message: string;
  reason?: string;
  retriable?: boolean;
  detail?: string;
}

/** A refusal with one of Neon's reasons (its `code`), e.g. 404 ENDPOINT_NOT_FOUND; `detail` only if given. */
export class ReasonedRefusal extends ServiceError {
  override name = 'ReasonedRefusal';
  readonly retriable: boolean;
  readonly detail: string | undefined;

  constructor(status: ErrorStatus, reason: string, opts: ServiceErrorOptions & { retriable?: boolean; detail?: string } = {}) {
    super(status, reason, opts.detail ?? reason, opts);
    this.retriable = opts.retriable ?? false;
    this.detail = opts.detail;
  }
}

export function internalErrorBody(e: ServiceError): InternalErrorBody {
  if (e instanceof ReasonedRefusal) {
    return { message: '', reason: e.code, ...(e.retriable ? { retriable: true } : {}), ...(e.detail !== undefined ? { detail: e.detail } : {}) };
  }
  return e.isUserError ? { message: e.message } : { message: '', detail: e.message };
}

/** The answer to an error: its status (503 for a dependency that did not answer) and the body above. */
export function internalErrorResponse(c: Context, e: ServiceError): Response {
  return c.json(internalErrorBody(e), (e.status === 0 ? 503 : e.status) as ContentfulStatusCode);
}

/** The internal API's one `onError`. */
export function internalErrorHandler(log?: (e: ServiceError, c: Context) => void): ErrorHandler {
  return (thrown, c) => {
    const e = toServiceError(asApiError(thrown));
    log?.(e, c);
    return internalErrorResponse(c, e);
  };
}

/** The internal API's 404 for a route it does not have. */
export const internalRouteNotFound: NotFoundHandler = (c) =>
  internalErrorResponse(c, new ServiceError(404, 'NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`));
