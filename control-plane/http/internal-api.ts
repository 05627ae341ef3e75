// Routes the proxy calls (proxy/directory/http-directory.ts): role verifiers, wake, activity. Guarded by a bearer token
// shared with the proxies, compared in constant time (lib/http-guard.ts); never exposed to users.
import { Hono } from 'hono';
import { bearerAuth, limitBody, requireAuth } from '../../lib/http-guard.ts';
import type { Logger } from '../../lib/logger.ts';
import type { EndpointManager } from '../endpoints.ts';
import { EndpointDisabledError, EndpointNotFoundError } from '../endpoints.ts';
import type { Projects } from '../projects.ts';
import { invalidationsFor } from '../role-invalidations.ts';
import { invalidationRoutes } from './invalidation-routes.ts';

/** Its routes take no body or a small one. */
const MAX_BODY = 64 * 1024;

export function internalApi(projects: Projects, endpoints: EndpointManager, token: string, computePassword: string, log?: Logger): Hono {
  const app = new Hono();
  app.use('*', requireAuth(bearerAuth(token), {
    unauthorized: (c) => c.json({ message: 'unauthorized' }, 401),
    onFailure: (f) => log?.warn(f, 'internal API authentication failed'),
  }));
  app.use('*', limitBody(MAX_BODY, (c) => c.json({ message: `request body is over ${MAX_BODY} bytes` }, 413)));
  app.get('/v1/endpoints/:id/roles/:role', (c) => {
    const verifier = projects.roleVerifier(c.req.param('id'), c.req.param('role'));
    return verifier ? c.json({ verifier }) : c.json({ message: 'not found' }, 404);
  });
  app.post('/v1/endpoints/:id/wake', async (c) => {
    try {
      const loc = await endpoints.wake(c.req.param('id'));
      return c.json({ host: loc.host, port: loc.port, password: computePassword });
    } catch (e) {
      // Neon's control-plane statuses select the proxy's user-facing texts (404 not found, 406 disabled).
      if (e instanceof EndpointNotFoundError) return c.json({ message: '', reason: 'ENDPOINT_NOT_FOUND' }, 404);
      if (e instanceof EndpointDisabledError) return c.json({ message: '', reason: 'ENDPOINT_DISABLED' }, 406);
      return c.json({ message: '', reason: 'RUNNING_OPERATIONS', retriable: true, detail: (e as Error).message }, 503);
    }
  });
  app.post('/v1/endpoints/:id/activity', (c) => {
    endpoints.noteActivity(c.req.param('id'));
    return c.body(null, 204);
  });
  app.route('/', invalidationRoutes(invalidationsFor(projects.state)));
  return app;
}
