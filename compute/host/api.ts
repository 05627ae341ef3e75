// The compute host's control API (Hono), for the control plane across a network:
//   POST   /v1/computes        {computeId, timelineId, lsn?, readOnly?, database?, username?} -> 201 once it accepts connections
//   GET    /v1/computes        {computes: [ComputeInfo]}
//   GET    /v1/computes/:id    ComputeInfo
//   DELETE /v1/computes/:id    clean stop -> {computeId, stopped, clean, lsn}
//   GET    /metrics            Prometheus text
//   GET    /healthz            {status: "ok", computes, pool}
// Errors: {"error": {"code", "message"}} with 400/401/404/409/413/503. With a token (lib/http-guard.ts), /v1 and
// /metrics require `Authorization: Bearer <token>`; a body over 64 KiB is refused while it is read.
import { Hono } from 'hono';
import type { Context } from 'hono';
import { bearerAuth, limitBody, requireAuth } from '../../lib/http-guard.ts';
import { ComputeHost, HostError } from './host.ts';
import type { StartRequest } from './host.ts';

function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

const COMPUTE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const TIMELINE_ID = /^[0-9a-f]{32}$/;
const NAME = /^[^\0]{1,63}$/;

function invalid(message: string, code = 'invalid_request'): HostError {
  return new HostError(400, code, message);
}

/** Checks a start request's shape; refuses unknown fields. */
export function parseStartRequest(body: unknown): StartRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('request body must be a JSON object');
  const b = body as Record<string, unknown>;
  const allowed = new Set(['computeId', 'timelineId', 'lsn', 'readOnly', 'database', 'username']);
  for (const k of Object.keys(b)) if (!allowed.has(k)) throw invalid(`unknown field ${JSON.stringify(k)}`);
  if (typeof b.computeId !== 'string' || !COMPUTE_ID.test(b.computeId)) {
    throw invalid('computeId must be 1-63 characters of letters, digits, "_", "-" or "." (the endpoint id)', 'invalid_compute_id');
  }
  if (typeof b.timelineId !== 'string' || !TIMELINE_ID.test(b.timelineId)) throw invalid('timelineId must be 32 lowercase hex characters', 'invalid_timeline_id');
  const req: StartRequest = { computeId: b.computeId, timelineId: b.timelineId };
  if (b.lsn !== undefined && b.lsn !== null) {
    if (typeof b.lsn !== 'number' || !Number.isSafeInteger(b.lsn) || b.lsn < 0) throw invalid('lsn must be a non-negative integer', 'invalid_lsn');
    req.lsn = b.lsn;
  }
  if (b.readOnly !== undefined) {
    if (typeof b.readOnly !== 'boolean') throw invalid('readOnly must be a boolean');
    req.readOnly = b.readOnly;
  }
  for (const k of ['database', 'username'] as const) {
    const v = b[k];
    if (v === undefined) continue;
    if (typeof v !== 'string' || !NAME.test(v)) throw invalid(`${k} must be a name of 1-63 characters`);
    req[k] = v;
  }
  return req;
}

const MAX_BODY = 64 * 1024;

export function createHostApp(host: ComputeHost, opts: { apiToken?: string } = {}): Hono {
  const app = new Hono();

  app.onError((e, c) => {
    if (e instanceof HostError) return c.json(errorBody(e.code, e.message), e.status);
    host.opts.log.error({ err: String((e as Error)?.stack ?? e) }, 'request failed');
    return c.json(errorBody('internal_error', (e as Error)?.message ?? String(e)), 500);
  });
  app.notFound((c) => c.json(errorBody('not_found', `no route for ${c.req.method} ${c.req.path}`), 404));

  app.get('/healthz', (c) => c.json({ status: 'ok', computes: host.computeCount, pool: host.poolStatus() }));
  // everything else (/v1, /metrics) needs the token, then bodies are limited while they are read
  app.use('*', requireAuth(opts.apiToken ? bearerAuth(opts.apiToken) : undefined, {
    unauthorized: (c) => c.json(errorBody('unauthorized', 'missing or wrong Authorization: Bearer token'), 401),
    onFailure: (f) => host.opts.log.warn(f, 'compute host API authentication failed'),
  }));
  app.use('*', limitBody(MAX_BODY, (c) => c.json(errorBody('body_too_large', 'request body is over 64 KiB'), 413)));

  app.post(
    '/v1/computes',
    async (c: Context) => {
      const text = await c.req.text();
      let body: unknown;
      try {
        body = JSON.parse(text) as unknown;
      } catch (e) {
        throw invalid(`request body is not valid JSON: ${(e as Error).message}`, 'malformed_json');
      }
      const answer = await host.start(parseStartRequest(body));
      return c.json(answer, 201);
    },
  );

  app.get('/v1/computes', async (c) => c.json({ computes: await host.list() }));
  app.get('/v1/computes/:id', async (c) => c.json(await host.get(c.req.param('id'))));
  app.delete('/v1/computes/:id', async (c) => c.json(await host.stop(c.req.param('id'))));

  app.get('/metrics', async (c) => {
    const text = await host.metrics.registry.metrics();
    return c.text(text, 200, { 'content-type': host.metrics.registry.contentType });
  });
  return app;
}
