// Routes the proxy calls (proxy/directory/http-directory.ts): role verifiers, wake, activity. Guarded by a bearer token
// shared with the proxies, compared in constant time (lib/http-guard.ts); never exposed to users. Errors answer in
// Neon's control-plane shape (internal-errors.ts).
import { Hono } from 'hono';
import { CAPACITY_CODES } from '../../compute/host/host-error.ts';
import { ComputeHostError } from '../compute-host-client.ts';
import { ServiceError } from '../../lib/errors.ts';
import { bearerAuth, limitBody, requireAuth } from '../../lib/http-guard.ts';
import type { Logger } from '../../lib/logger.ts';
import type { EndpointManager } from '../endpoints.ts';
import { EndpointDisabledError, EndpointNotFoundError } from '../endpoints.ts';
import type { Projects } from '../projects.ts';
import { invalidationsFor } from '../role-invalidations.ts';
import { type ErrorReport, reportErrors } from './error-report.ts';
import { ReasonedRefusal, internalErrorHandler, internalErrorResponse, internalRouteNotFound } from './internal-errors.ts';
import { invalidationRoutes } from './invalidation-routes.ts';

/** Its routes take no body or a small one. */
const MAX_BODY = 64 * 1024;

const UNAUTHORIZED = new ServiceError(401, 'UNAUTHORIZED', 'unauthorized');
const TOO_LARGE = new ServiceError(413, 'REQUEST_TOO_LARGE', `request body is over ${MAX_BODY} bytes`);

/** A failed wake as Neon's control plane answers it: its status and reason select the proxy's user-facing text. */
function wakeRefusal(e: unknown): ReasonedRefusal {
  if (e instanceof EndpointNotFoundError) return new ReasonedRefusal(404, 'ENDPOINT_NOT_FOUND', { cause: e });
  if (e instanceof EndpointDisabledError) return new ReasonedRefusal(406, 'ENDPOINT_DISABLED', { kind: 'user', cause: e });
  // a compute host out of room after its start queue waited (compute/host/admission.ts): retrying only queues again
  if (e instanceof ComputeHostError && CAPACITY_CODES.includes(e.code)) {
    return new ReasonedRefusal(423, 'ENDPOINT_UNAVAILABLE', { kind: 'quota', detail: e.message, cause: e });
  }
  const kind = e instanceof ServiceError ? e.kind : 'service';
  return new ReasonedRefusal(503, 'RUNNING_OPERATIONS', { retriable: true, detail: (e as Error | undefined)?.message, kind, cause: e });
}

export function internalApi(projects: Projects, endpoints: EndpointManager, token: string, computePassword: string, log?: Logger, errors?: ErrorReport): Hono {
  const app = new Hono();
  app.onError(internalErrorHandler(reportErrors('internal', errors ?? { log })));
  app.use('*', requireAuth(bearerAuth(token), {
    unauthorized: (c) => internalErrorResponse(c, UNAUTHORIZED),
    onFailure: (f) => log?.warn(f, 'internal API authentication failed'),
  }));
  app.use('*', limitBody(MAX_BODY, (c) => internalErrorResponse(c, TOO_LARGE)));
  app.get('/v1/endpoints/:id/roles/:role', (c) => {
    const verifier = projects.roleVerifier(c.req.param('id'), c.req.param('role'));
    if (!verifier) throw new ServiceError(404, 'ROLE_NOT_FOUND', 'not found');
    return c.json({ verifier });
  });
  app.post('/v1/endpoints/:id/wake', async (c) => {
    try {
      const loc = await endpoints.wake(c.req.param('id'));
      // A postgres compute holds each role's verifier and is logged in to as the client's role: no password for it.
      // `phases`: the steps of a start this wake made (the proxy's Server-Timing); absent when it already ran.
      const phases = loc.phases ? { phases: loc.phases } : {};
      if (loc.engine === 'postgres') return c.json({ host: loc.host, port: loc.port, engine: loc.engine, ...phases });
      return c.json({ host: loc.host, port: loc.port, engine: loc.engine, password: computePassword, ...phases });
    } catch (e) {
      throw wakeRefusal(e);
    }
  });
  app.post('/v1/endpoints/:id/activity', (c) => {
    endpoints.noteActivity(c.req.param('id'));
    return c.body(null, 204);
  });
  app.route('/', invalidationRoutes(invalidationsFor(projects.state)));
  // A catch-all rather than notFound alone: server.ts mounts this app into its own, whose notFound would answer.
  app.all('*', internalRouteNotFound);
  return app;
}
