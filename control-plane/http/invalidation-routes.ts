// GET /v1/invalidations?after=N&epoch=E&wait_ms=W on the internal API (mounted behind its token check in
// internal-api.ts): the role-invalidation feed (../role-invalidations.ts) as a long poll. An answer with no news
// is held up to W ms (at most 25 s), and ends early when the control plane stops listening (a held request must
// not delay its shutdown). A bad query answers 400 through the internal API's onError (internal-errors.ts).
import type { Server } from 'node:http';
import { Hono } from 'hono';
import { ServiceError } from '../../lib/errors.ts';
import { queryOf, v } from '../../lib/validate.ts';
import type { RoleInvalidations } from '../role-invalidations.ts';

const MAX_WAIT_MS = 25_000;

/** A parameter given more than once counts with its first value. */
const first = v.pipe(v.union([v.string(), v.array(v.string())]), v.transform((x) => (Array.isArray(x) ? x[0] : x)));

/** `after` (default 0) a sequence number, `wait_ms` (default 0) a time, `epoch` the feed's epoch if known. */
const FeedQuery = v.pipe(
  v.object({ after: v.optional(first, '0'), wait_ms: v.optional(first, '0'), epoch: v.optional(first) }),
  v.transform((q) => ({ after: Number(q.after), waitMs: Number(q.wait_ms), epoch: q.epoch ?? null })),
  v.check((q) => Number.isSafeInteger(q.after) && q.after >= 0 && Number.isFinite(q.waitMs) && q.waitMs >= 0, 'after and wait_ms must be non-negative integers'),
);
const badQuery = (message: string): ServiceError => new ServiceError(400, 'BAD_REQUEST', message);

/** The HTTP server a request arrived on (@hono/node-server puts the Node request in c.env.incoming). */
function serverOf(env: unknown): Server | null {
  const incoming = (env as { incoming?: { socket?: { server?: unknown } } } | undefined)?.incoming;
  const server = incoming?.socket?.server;
  return server && typeof (server as Server).listening === 'boolean' ? (server as Server) : null;
}

export function invalidationRoutes(feed: RoleInvalidations): Hono {
  const app = new Hono();
  app.get('/v1/invalidations', queryOf(FeedQuery, badQuery), async (c) => {
    const q = c.req.valid('query');
    const server = serverOf(c.env);
    const signal = c.req.raw.signal;
    const isOpen = (): boolean => !signal.aborted && (server?.listening ?? true);
    return c.json(await feed.wait(q.after, q.epoch, Math.min(q.waitMs, MAX_WAIT_MS), isOpen));
  });
  return app;
}
