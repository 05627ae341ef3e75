// GET /v1/invalidations?after=N&epoch=E&wait_ms=W on the internal API (mounted behind its token check in
// internal-api.ts): the role-invalidation feed (../role-invalidations.ts) as a long poll. An answer with no news
// is held up to W ms (at most 25 s), and ends early when the control plane stops listening (a held request must
// not delay its shutdown).
import type { Server } from 'node:http';
import { Hono } from 'hono';
import type { RoleInvalidations } from '../role-invalidations.ts';

const MAX_WAIT_MS = 25_000;

/** The HTTP server a request arrived on (@hono/node-server puts the Node request in c.env.incoming). */
function serverOf(env: unknown): Server | null {
  const incoming = (env as { incoming?: { socket?: { server?: unknown } } } | undefined)?.incoming;
  const server = incoming?.socket?.server;
  return server && typeof (server as Server).listening === 'boolean' ? (server as Server) : null;
}

export function invalidationRoutes(feed: RoleInvalidations): Hono {
  const app = new Hono();
  app.get('/v1/invalidations', async (c) => {
    const after = Number(c.req.query('after') ?? '0');
    const waitMs = Number(c.req.query('wait_ms') ?? '0');
    if (!Number.isSafeInteger(after) || after < 0 || !Number.isFinite(waitMs) || waitMs < 0) {
      return c.json({ message: 'after and wait_ms must be non-negative integers' }, 400);
    }
    const server = serverOf(c.env);
    const signal = c.req.raw.signal;
    const isOpen = (): boolean => !signal.aborted && (server?.listening ?? true);
    return c.json(await feed.wait(after, c.req.query('epoch') ?? null, Math.min(waitMs, MAX_WAIT_MS), isOpen));
  });
  return app;
}
