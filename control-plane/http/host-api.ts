// POST /hosts/v1/heartbeat: the compute hosts' door (compute/host/heartbeat.ts). A host registers with its first
// heartbeat and keeps sending one every second; the answer names the computes it must stop (it lost them while
// taken out, or they run elsewhere now). Guarded by the compute hosts' API token, the same credential the control
// plane presents to them: a host that can register is one the control plane may drive. Without that token
// configured, registration is refused (only --compute-host's static hosts are used).
import { Hono } from 'hono';
import { ServiceError } from '../../lib/errors.ts';
import { bearerAuth, limitBody, requireAuth } from '../../lib/http-guard.ts';
import type { Logger } from '../../lib/logger.ts';
import { jsonBody, v } from '../../lib/validate.ts';
import { ENGINES } from '../engines.ts';
import type { EndpointManager } from '../endpoints.ts';
import { internalErrorHandler, internalErrorResponse, internalRouteNotFound } from './internal-errors.ts';
import { type ErrorReport, reportErrors } from './error-report.ts';

/** A heartbeat lists every compute of the host: thousands fit. */
const MAX_BODY = 4 * 1024 * 1024;
const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

const Heartbeat = v.object({
  name: v.pipe(v.string(), v.regex(NAME, 'name must be 1-63 characters: lowercase letters, digits, ".", "_" or "-"')),
  url: v.pipe(v.string(), v.url('url must be the host API URL, e.g. http://10.0.0.5:9872')),
  engines: v.pipe(v.array(v.picklist(ENGINES)), v.minLength(1, 'engines must name at least one engine')),
  unavailable: v.optional(v.record(v.picklist(ENGINES), v.pipe(v.string(), v.maxLength(2000))), {}),
  memoryBudgetBytes: v.pipe(v.number(), v.integer(), v.minValue(0)),
  memoryUsedBytes: v.pipe(v.number(), v.integer(), v.minValue(0)),
  computes: v.array(v.object({ id: v.pipe(v.string(), v.minLength(1)), host: v.string(), port: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535)), engine: v.picklist(ENGINES) })),
});

const badRequest = (message: string): ServiceError => new ServiceError(400, 'BAD_REQUEST', message);

export function hostApi(endpoints: EndpointManager, token: string | undefined, log: Logger, errors?: ErrorReport): Hono {
  const app = new Hono();
  app.onError(internalErrorHandler(reportErrors('hosts', errors ?? { log })));
  if (!token) {
    app.all('*', (c) => internalErrorResponse(c, new ServiceError(403, 'REGISTRATION_DISABLED', 'this control plane takes no host registrations: start it with --compute-api-token (LAKEBASE_COMPUTE_API_TOKEN)')));
    return app;
  }
  app.use('*', requireAuth(bearerAuth(token), {
    unauthorized: (c) => internalErrorResponse(c, new ServiceError(401, 'UNAUTHORIZED', 'unauthorized')),
    onFailure: (f) => log.warn(f, 'compute host API authentication failed'),
  }));
  app.use('*', limitBody(MAX_BODY, (c) => internalErrorResponse(c, new ServiceError(413, 'REQUEST_TOO_LARGE', `request body is over ${MAX_BODY} bytes`))));
  app.post('/v1/heartbeat', jsonBody(Heartbeat, { fail: badRequest }), (c) => c.json(endpoints.heartbeat(c.req.valid('json'))));
  app.all('*', internalRouteNotFound);
  return app;
}
