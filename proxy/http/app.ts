// SQL over HTTP (reference §1): POST /sql, OPTIONS /sql, the 400 for other paths, and /metrics.
import { randomUUID } from 'node:crypto';
import { IncomingMessage } from 'node:http';
import { Hono } from 'hono';
import type { Context } from 'hono';
import type { Logger } from '../../lib/logger.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import { wipeKeys } from '../auth/scram.ts';
import type { BackendConnection } from '../compute/connection.ts';
import { RESET_MESSAGE, type BackendPool } from './connection-pool.ts';
import { parseConnectionString, type ConnInfo } from './conn-string.ts';
import { PgServerError, ProxyError } from '../errors.ts';
import { decodePayload, readBody, readIncoming, tooLarge, type Payload } from './body.ts';
import type { ProxyMetrics } from '../metrics.ts';
import {
  ResponseTooLarge,
  isIsolationLevel,
  runBatch,
  runQuery,
  runSimple,
  type BatchOptions,
  type ResponseBudget,
  type Trailer,
} from './sql-executor.ts';

export interface HttpDeps {
  auth: Authenticator;
  pool: BackendPool;
  metrics: ProxyMetrics;
  logger: Logger;
  maxRequestBytes: number;
  maxResponseBytes: number;
  noteActivity?: (endpointId: string) => void;
  /** Serve GET /metrics on this listener. */
  exposeMetrics: boolean;
}

/** Beyond Neon: per-request statement_timeout in milliseconds for the queries of the request. */
export const STATEMENT_TIMEOUT_HEADER = 'Lakebase-Statement-Timeout';

const ALLOW_HEADERS = [
  'Authorization',
  'Neon-Connection-String',
  'Neon-Raw-Text-Output',
  'Neon-Array-Mode',
  'Neon-Pool-Opt-In',
  'Neon-Batch-Read-Only',
  'Neon-Batch-Isolation-Level',
  'Neon-Batch-Deferrable',
  STATEMENT_TIMEOUT_HEADER,
].join(', ');

const ERROR_KEYS: [string, string][] = [
  ['code', 'C'],
  ['detail', 'D'],
  ['hint', 'H'],
  ['position', 'P'],
  ['internalPosition', 'p'],
  ['internalQuery', 'q'],
  ['severity', 'S'],
  ['where', 'W'],
  ['table', 't'],
  ['column', 'c'],
  ['schema', 's'],
  ['dataType', 'd'],
  ['constraint', 'n'],
  ['file', 'F'],
  ['line', 'L'],
  ['routine', 'R'],
];

/** Neon's 17-key error object: Postgres fields when there are any, else empty code/severity and nulls. */
export function errorBody(message: string, fields?: Record<string, string>): string {
  const out: Record<string, string | null> = { message };
  for (const [key, letter] of ERROR_KEYS) {
    out[key] = fields ? (fields[letter] ?? null) : key === 'code' || key === 'severity' ? '' : null;
  }
  return JSON.stringify(out);
}

const CANCELLED_BODY = JSON.stringify({ message: 'Query cancelled, connection was terminated', code: '08P01' });

function json(c: Ctx, status: number, body: string, headers: Record<string, string> = {}): Response {
  return c.body(body, status as 200, { 'Content-Type': 'application/json', ...headers });
}

type Env = { Variables: { requestId: string } };
type Ctx = Context<Env>;

export function createHttpApp(deps: HttpDeps): Hono<Env> {
  const app = new Hono<Env>();

  app.use('*', async (c, next) => {
    const requestId = randomUUID();
    c.set('requestId', requestId);
    c.header('neon-request-id', requestId);
    c.header('Access-Control-Allow-Origin', '*');
    await next();
  });

  app.options('/sql', (c) =>
    c.body(null, 200, {
      Allow: 'OPTIONS, POST',
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Allow-Headers': ALLOW_HEADERS,
      'Access-Control-Allow-Methods': 'OPTIONS, POST',
      'Access-Control-Max-Age': '86400',
    }),
  );

  app.post('/sql', (c) => handleSql(c, deps));

  if (deps.exposeMetrics) {
    app.get('/metrics', async (c) => c.body(await deps.metrics.registry.metrics(), 200, { 'Content-Type': deps.metrics.registry.contentType }));
  }

  app.all('*', (c) => json(c, 400, JSON.stringify('query is not supported')));
  return app;
}

interface Parsed {
  info: ConnInfo;
  rawText: boolean;
  arrayMode: boolean;
  batch: BatchOptions;
  statementTimeoutMs: number | null;
}

function parseHeaders(c: Ctx, maxRequestBytes: number): Parsed {
  const length = Number(c.req.header('content-length'));
  if (Number.isFinite(length) && length > maxRequestBytes) throw tooLarge(maxRequestBytes);
  const info = parseConnectionString(c.req.header('neon-connection-string'), c.req.header('authorization'));
  const isolation = c.req.header('neon-batch-isolation-level') ?? null;
  if (isolation !== null && !isIsolationLevel(isolation)) throw new ProxyError('invalid isolation level', 400, 'bad_request');
  const timeout = c.req.header(STATEMENT_TIMEOUT_HEADER);
  if (timeout !== undefined && !/^\d{1,9}$/.test(timeout)) {
    throw new ProxyError(`invalid ${STATEMENT_TIMEOUT_HEADER} header: expected milliseconds`, 400, 'bad_request');
  }
  return {
    info,
    rawText: c.req.header('neon-raw-text-output') === 'true',
    arrayMode: c.req.header('neon-array-mode') === 'true',
    batch: {
      isolationLevel: isolation,
      readOnly: c.req.header('neon-batch-read-only') === 'true',
      deferrable: c.req.header('neon-batch-deferrable') === 'true',
    },
    statementTimeoutMs: timeout === undefined ? null : Number(timeout),
  };
}

function batchEchoHeaders(b: BatchOptions): Record<string, string> {
  const h: Record<string, string> = {};
  if (b.isolationLevel) h['Neon-Batch-Isolation-Level'] = b.isolationLevel;
  if (b.readOnly) h['Neon-Batch-Read-Only'] = 'true';
  if (b.deferrable) h['Neon-Batch-Deferrable'] = 'true';
  return h;
}

type Fail = (status: number, body: string, code: string) => Response;

async function handleSql(c: Ctx, deps: HttpDeps): Promise<Response> {
  const log = deps.logger.child({ requestId: c.get('requestId') });
  const ended = deps.metrics.sessionStarted('http');
  const fail: Fail = (status, body, code) => {
    deps.metrics.errors.inc({ protocol: 'http', code });
    return json(c, status, body);
  };
  const failWith = (err: unknown): Response => errorResponse(err, fail, log);
  try {
    let parsed: Parsed;
    try {
      parsed = parseHeaders(c, deps.maxRequestBytes);
    } catch (err) {
      return failWith(err);
    }
    const ready = await bodyAndConnection(c, deps, parsed.info);
    if ('error' in ready) return failWith(ready.error);
    return await runRequest(c, deps, parsed, ready, fail, log);
  } finally {
    ended();
  }
}

/** The body and an authenticated connection, concurrently (a cold compute wakes while the body streams). */
async function bodyAndConnection(c: Ctx, deps: HttpDeps, info: ConnInfo): Promise<{ payload: Payload; conn: BackendConnection } | { error: unknown }> {
  const incoming = (c.env as { incoming?: unknown } | undefined)?.incoming;
  const clientAddress = incoming instanceof IncomingMessage ? (incoming.socket.remoteAddress ?? '') : '';
  const bodyP = (incoming instanceof IncomingMessage ? readIncoming(incoming, deps.maxRequestBytes) : readBody(c.req.raw.body, deps.maxRequestBytes)).then(decodePayload);
  const connP = (async () => {
    // the role's login keys: a postgres compute is logged in to as the role itself; wiped once a backend is had
    const keys = await deps.auth.checkCleartext(info.endpointId, info.user, info.password, clientAddress);
    try {
      deps.noteActivity?.(info.endpointId);
      return await deps.pool.acquire(info.endpointId, info.database, info.user, keys);
    } finally {
      wipeKeys(keys);
    }
  })();
  const [bodyR, connR] = await Promise.allSettled([bodyP, connP]);
  if (bodyR.status === 'rejected') {
    if (connR.status === 'fulfilled') deps.pool.release(info.endpointId, info.database, info.user, connR.value);
    return { error: bodyR.reason };
  }
  if (connR.status === 'rejected') return { error: connR.reason };
  return { payload: bodyR.value, conn: connR.value };
}

/** Runs the request's queries; a client that goes away cancels them. The connection goes back to the pool only clean. */
async function runRequest(
  c: Ctx,
  deps: HttpDeps,
  parsed: Parsed,
  { payload, conn }: { payload: Payload; conn: BackendConnection },
  fail: Fail,
  log: Logger,
): Promise<Response> {
  const { info } = parsed;
  const signal = c.req.raw.signal;
  if (signal.aborted) {
    deps.pool.release(info.endpointId, info.database, info.user, conn);
    return fail(400, CANCELLED_BODY, '08P01');
  }
  let cancelled = false;
  const onAbort = (): void => {
    cancelled = true;
    log.info({ endpointId: info.endpointId }, 'client went away: cancelling query');
    void conn.cancel();
    setTimeout(() => conn.destroy(), 100).unref();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  let keep = true;
  // The session reset goes out with the request's last statement; the pool then only reads its result.
  const reset: Trailer = { bytes: RESET_MESSAGE, sent: false };
  try {
    const body = await execute(conn, payload, parsed, deps, reset);
    return json(c, 200, body, payload.kind === 'batch' ? batchEchoHeaders(parsed.batch) : {});
  } catch (err) {
    if (cancelled) return fail(400, CANCELLED_BODY, '08P01');
    // Only a clean Postgres error leaves the connection reusable; anything else may be mid-stream.
    if (!(err instanceof PgServerError)) {
      keep = false;
      if (err instanceof ResponseTooLarge) void conn.cancel();
    }
    return errorResponse(err, fail, log);
  } finally {
    signal.removeEventListener('abort', onAbort);
    if (cancelled || !keep) conn.destroy();
    else deps.pool.release(info.endpointId, info.database, info.user, conn, reset.sent);
  }
}

/** Any failure as Neon's status and 17-key body; the metric label is a SQLSTATE or a ProxyError's closed code. */
function errorResponse(err: unknown, fail: Fail, log: Logger): Response {
  if (err instanceof PgServerError) return fail(400, errorBody(err.message, err.fields), err.code);
  if (err instanceof ProxyError) return fail(err.httpStatus, errorBody(err.message, err.pgFields), err.code);
  if (err instanceof ResponseTooLarge) return fail(507, errorBody(err.message), 'response_too_large');
  // Its kind only: the text of an unexpected error may quote the request (headers, body) it choked on.
  log.error({ kind: err instanceof Error ? err.name : typeof err, code: (err as { code?: unknown } | null)?.code }, 'unexpected error in /sql');
  return fail(500, errorBody(err instanceof Error ? err.message : String(err)), 'internal');
}

async function execute(conn: BackendConnection, payload: Payload, p: Parsed, deps: HttpDeps, reset: Trailer): Promise<string> {
  const budget: ResponseBudget = { remaining: deps.maxResponseBytes, max: deps.maxResponseBytes };
  const out = { rawText: p.rawText };
  if (p.statementTimeoutMs !== null) await runSimple(conn, `SET statement_timeout = ${p.statementTimeoutMs}`);
  if (payload.kind === 'single') {
    deps.metrics.queries.inc();
    const q = payload.query;
    return runQuery(conn, { query: q.query, params: q.params, arrayMode: q.arrayMode ?? p.arrayMode }, out, budget, reset);
  }
  if (payload.queries.length === 0) return '{"results":[]}';
  deps.metrics.queries.inc(payload.queries.length);
  const queries = payload.queries.map((q) => ({ query: q.query, params: q.params, arrayMode: q.arrayMode ?? p.arrayMode }));
  return runBatch(conn, queries, p.batch, out, budget, reset);
}
