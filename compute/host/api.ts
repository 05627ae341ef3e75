// The compute host's control API (Hono), for the control plane across a network:
//   POST   /v1/computes        {computeId, timelineId, lsn?, readOnly?, database?, username?, engine?, roles?, evictable?,
//                                storageUrl?} -> 201 once it accepts connections (having waited, if need be, for memory)
//   GET    /v1/computes        {computes: [ComputeInfo]}
//   GET    /v1/computes/:id    ComputeInfo
//   DELETE /v1/computes/:id    clean stop -> {computeId, stopped, clean, lsn}
//   POST   /v1/computes/:id/sql {database, statements} -> runs them as the compute's superuser (roles, databases)
//   POST   /v1/templates       {engine: "postgres"} -> 201 {engine, timelineId, lsn, initdbMs}: initdb once
//   GET    /metrics            Prometheus text
//   GET    /healthz            {status: "ok", computes, pool, startsWaiting}
// Errors: {"error": {"code", "message"}} with 400/401/404/409/413/503 (lib/errors.ts). With a token
// (lib/http-guard.ts), /v1 and /metrics require `Authorization: Bearer <token>`; a body over 64 KiB is refused
// while it is read, except on the admin SQL route: 16 MiB there, with statements of up to 8 MiB, as a synced table's
// load sends its rows through it in one transaction (control-plane/lake/synced-tables.ts). Wire types: api-types.ts;
// the start request is checked by a valibot schema (lib/validate.ts).
import { Hono } from 'hono';
import { bearerAuth, limitBody, requireAuth } from '../../lib/http-guard.ts';
import { ServiceError, errorBody, errorHandler, routeNotFound, tooLarge, unauthorized } from '../../lib/errors.ts';
import { type Failure, issuePath, jsonBody, parse, v } from '../../lib/validate.ts';
import { ENGINES, type StartRequest } from './api-types.ts';
import { type ComputeHost, HostError } from './host.ts';

const COMPUTE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const TIMELINE_ID = /^[0-9a-f]{32}$/;
const NAME = /^[^\0]{1,63}$/;

const FIELDS = ['computeId', 'timelineId', 'lsn', 'readOnly', 'database', 'username', 'engine', 'roles', 'evictable', 'storageUrl'] as const;
const MESSAGES: Record<(typeof FIELDS)[number], string> = {
  computeId: 'computeId must be 1-63 characters of letters, digits, "_", "-" or "." (the endpoint id)',
  timelineId: 'timelineId must be 32 lowercase hex characters',
  lsn: 'lsn must be a non-negative integer',
  readOnly: 'readOnly must be a boolean',
  database: 'database must be a name of 1-63 characters',
  username: 'username must be a name of 1-63 characters',
  engine: 'engine must be "pglite" or "postgres"',
  roles: 'roles must be a list of {"name", "verifier"} with a SCRAM-SHA-256 verifier',
  evictable: 'evictable must be a boolean',
  storageUrl: 'storageUrl must be an http or https URL (the storage node serving the timeline)',
};
/** The code of a bad field (the rest are `invalid_request`). */
const FIELD_CODES: Partial<Record<string, string>> = { computeId: 'invalid_compute_id', timelineId: 'invalid_timeline_id', lsn: 'invalid_lsn' };

/** An absolute http(s) URL: what a StorageClient can talk to (no credentials in it: the token goes apart). */
const isHttpUrl = (s: string): boolean => {
  if (!URL.canParse(s)) return false;
  const u = new URL(s);
  return (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.password === '' && u.search === '' && u.hash === '';
};

const firstUnknownField = (body: Record<string, unknown>): string | undefined =>
  Object.keys(body).find((k) => !(FIELDS as readonly string[]).includes(k));

const name = (field: 'database' | 'username') => v.pipe(v.string(MESSAGES[field]), v.regex(NAME, MESSAGES[field]));

const RoleSchema = v.object({
  name: v.pipe(v.string(MESSAGES.roles), v.regex(NAME, MESSAGES.roles)),
  verifier: v.pipe(v.string(MESSAGES.roles), v.regex(/^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/, MESSAGES.roles)),
}, MESSAGES.roles);

const TemplateRequestSchema = v.object({ engine: v.picklist(ENGINES, MESSAGES.engine) }, MESSAGES.engine);
/** A statement of admin SQL: a synced table's load sends rows as a few MiB of JSON per statement. */
const MAX_STATEMENT = 8 * 1024 * 1024;
const AdminSqlSchema = v.object({
  database: v.pipe(v.string('database must be a name'), v.regex(NAME, 'database must be a name of 1-63 characters')),
  statements: v.pipe(v.array(v.pipe(v.string('statements must be strings'), v.maxLength(MAX_STATEMENT, 'a statement is over 8 MiB')), 'statements must be a list of strings'), v.minLength(1, 'statements must not be empty'), v.maxLength(64, 'at most 64 statements')),
  background: v.optional(v.boolean('background must be true or false')),
}, 'the body must be {"database", "statements", "background"?}');

/** The start request; unknown fields are refused (checked first), `lsn: null` is no LSN. */
export const StartRequestSchema = v.pipe(
  v.custom<Record<string, unknown>>((b) => typeof b === 'object' && b !== null && !Array.isArray(b), 'request body must be a JSON object'),
  v.check(
    (b) => firstUnknownField(b) === undefined,
    (issue) => `unknown field ${JSON.stringify(firstUnknownField(issue.input as Record<string, unknown>))}`,
  ),
  v.object(
    {
      computeId: v.pipe(v.string(MESSAGES.computeId), v.regex(COMPUTE_ID, MESSAGES.computeId)),
      timelineId: v.pipe(v.string(MESSAGES.timelineId), v.regex(TIMELINE_ID, MESSAGES.timelineId)),
      lsn: v.nullish(v.pipe(v.number(MESSAGES.lsn), v.safeInteger(MESSAGES.lsn), v.minValue(0, MESSAGES.lsn))),
      readOnly: v.optional(v.boolean(MESSAGES.readOnly)),
      database: v.optional(name('database')),
      username: v.optional(name('username')),
      engine: v.optional(v.picklist(ENGINES, MESSAGES.engine)),
      roles: v.optional(v.pipe(v.array(RoleSchema, MESSAGES.roles), v.maxLength(1000, MESSAGES.roles))),
      evictable: v.optional(v.boolean(MESSAGES.evictable)),
      storageUrl: v.optional(v.pipe(v.string(MESSAGES.storageUrl), v.maxLength(2048, MESSAGES.storageUrl), v.check(isHttpUrl, MESSAGES.storageUrl))),
    },
    // a missing required field reads like a wrong one
    (issue) => MESSAGES[issuePath(issue) as 'computeId' | 'timelineId'],
  ),
  v.transform((b): StartRequest => {
    const req: StartRequest = { computeId: b.computeId, timelineId: b.timelineId };
    if (b.lsn !== undefined && b.lsn !== null) req.lsn = b.lsn;
    if (b.readOnly !== undefined) req.readOnly = b.readOnly;
    if (b.database !== undefined) req.database = b.database;
    if (b.username !== undefined) req.username = b.username;
    if (b.engine !== undefined) req.engine = b.engine;
    if (b.roles !== undefined) req.roles = b.roles;
    if (b.evictable !== undefined) req.evictable = b.evictable;
    if (b.storageUrl !== undefined) req.storageUrl = b.storageUrl;
    return req;
  }),
);

const invalidStart: Failure = (message, issue) => new HostError(400, (issue && FIELD_CODES[issuePath(issue).split(/[.[]/)[0]]) ?? 'invalid_request', message);
const notJson = (reason: string): HostError => new HostError(400, 'malformed_json', `request body is not valid JSON: ${reason}`);

/** Checks a start request's shape; refuses unknown fields. */
export function parseStartRequest(body: unknown): StartRequest {
  return parse(StartRequestSchema, body, invalidStart);
}

const MAX_BODY = 64 * 1024;
/** The admin SQL route's body: behind the host's token, and a synced table's rows come through it. */
const MAX_SQL_BODY = 16 * 1024 * 1024;
const SQL_ROUTE = /^\/v1\/computes\/[^/]+\/sql$/;

/** Only the host's own refusals carry their status; anything else (a storage node's error too) is a 500, logged. */
const answered = (e: Error): Error => (e instanceof HostError || !(e instanceof ServiceError) ? e : new ServiceError(500, 'internal_error', e.message, { cause: e }));

export function createHostApp(host: ComputeHost, opts: { apiToken?: string } = {}): Hono {
  const app = new Hono();
  const onError = errorHandler({
    shape: 'internal',
    log: (e) => {
      if (!(e instanceof HostError)) host.opts.log.error({ err: String((e.cause as Error | undefined)?.stack ?? e.cause ?? e) }, 'request failed');
    },
  });
  app.onError((e, c) => onError(answered(e), c));
  app.notFound(routeNotFound('internal'));

  app.get('/healthz', (c) => c.json({ status: 'ok', computes: host.computeCount, pool: host.poolStatus(), startsWaiting: host.startsWaiting }));
  // everything else (/v1, /metrics) needs the token, then bodies are limited while they are read
  app.use('*', requireAuth(opts.apiToken ? bearerAuth(opts.apiToken) : undefined, {
    unauthorized: (c) => c.json(errorBody(unauthorized(), 'internal'), 401),
    onFailure: (f) => host.opts.log.warn(f, 'compute host API authentication failed'),
  }));
  const smallBodies = limitBody(MAX_BODY, (c) => c.json(errorBody(tooLarge('body_too_large', 'request body is over 64 KiB'), 'internal'), 413));
  const sqlBodies = limitBody(MAX_SQL_BODY, (c) => c.json(errorBody(tooLarge('body_too_large', 'request body is over 16 MiB'), 'internal'), 413));
  app.use('*', (c, next) => (c.req.method === 'POST' && SQL_ROUTE.test(c.req.path) ? sqlBodies : smallBodies)(c, next));

  app.post('/v1/computes', jsonBody(StartRequestSchema, { notJson, fail: invalidStart }), async (c) => c.json(await host.start(c.req.valid('json')), 201));
  app.get('/v1/computes', async (c) => c.json({ computes: await host.list() }));
  app.get('/v1/computes/:id', async (c) => c.json(await host.get(c.req.param('id'))));
  // ?immediate=true: no shutdown checkpoint, no waiting (the control plane moved the endpoint off a storage node that is gone)
  app.delete('/v1/computes/:id', async (c) => c.json(await host.stop(c.req.param('id'), { immediate: c.req.query('immediate') === 'true' })));
  app.post('/v1/computes/:id/sql', jsonBody(AdminSqlSchema, { notJson, fail: invalidStart }), async (c) => {
    return c.json(await host.adminSql(c.req.param('id'), c.req.valid('json')));
  });
  app.post('/v1/templates', jsonBody(TemplateRequestSchema, { notJson, fail: invalidStart }), async (c) => c.json(await host.createTemplate(c.req.valid('json').engine), 201));

  app.get('/metrics', async (c) => {
    const text = await host.metrics.registry.metrics();
    return c.text(text, 200, { 'content-type': host.metrics.registry.contentType });
  });
  return app;
}
