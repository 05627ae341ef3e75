// What the control plane's APIs do with an error they answer, besides answering it: count it by API and kind
// (ErrorKind, a closed list, so the metric's labels stay bounded) and log the service's own faults (5xx, or a
// dependency that did not answer) with their cause; a caller's mistakes (4xx) are logged at debug only.
import type { Context } from 'hono';
import type { ServiceError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';

export type ApiName = 'public' | 'internal' | 'hosts' | 'admin';

export interface ErrorReport {
  log?: Logger;
  /** Counts answered errors: e.g. a prom-client Counter's `inc` with labels {api, kind}. */
  count?: (labels: { api: ApiName; kind: string }) => void;
}

/** The `log` option of lib/errors.ts' errorHandler for one API. */
export function reportErrors(api: ApiName, report: ErrorReport = {}): (e: ServiceError, c: Context) => void {
  return (e, c) => {
    report.count?.({ api, kind: e.kind });
    const fields = { api, status: e.status, code: e.code, kind: e.kind, method: c.req.method, path: c.req.path };
    if (e.isUserError) report.log?.debug(fields, e.message);
    else report.log?.error({ ...fields, err: e.cause ?? e }, `request failed: ${e.message}`);
  };
}
