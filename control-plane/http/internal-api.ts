// Routes the proxy calls (proxy/directory-http.ts): role verifiers, wake, activity. Guarded by a bearer token
// shared with the proxies; never exposed to users.
import { Hono } from 'hono';
import type { EndpointManager } from '../endpoints.ts';
import { EndpointDisabledError, EndpointNotFoundError } from '../endpoints.ts';
import type { Projects } from '../projects.ts';

export function internalApi(projects: Projects, endpoints: EndpointManager, token: string, computePassword: string): Hono {
  const app = new Hono();
  app.use('*', async (c, next) => {
    if (c.req.header('authorization') !== `Bearer ${token}`) return c.json({ message: 'unauthorized' }, 401);
    await next();
  });
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
  return app;
}
