// SQL over HTTP (reference §1): POST /sql, OPTIONS /sql, the 400 for other paths, and /metrics, as a plain
// node:http handler: the proxy's hottest path, where a web Request/Response pair per query (Hono's adaptor) cost
// as much CPU as the rest of the request. Every response is written with one writeHead + end (one syscall).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../lib/logger.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import { wipeKeys } from '../auth/scram.ts';
import type { BackendConnection } from '../compute/connection.ts';
import { RESET_MESSAGE, type BackendPool } from './connection-pool.ts';
import { parseConnectionString, type ConnInfo } from './conn-string.ts';
import { PgServerError, ProxyError } from '../errors.ts';
import { decodePayload, readIncoming, tooLarge, type Payload } from './body.ts';
import type { ProxyMetrics } from '../metrics.ts';
import { RequestTiming } from './server-timing.ts';
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

/** One request's response side: every answer carries the request id and CORS' allow-origin. */
interface Reply {
  readonly requestId: string;
  send(status: number, body: string, headers?: Record<string, string>): void;
}

function replyTo(res: ServerResponse): Reply {
  const requestId = randomUUID();
  return {
    requestId,
    send(status, body, headers = {}) {
      if (res.headersSent || res.destroyed) return;
      res.writeHead(status, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(body),
        'neon-request-id': requestId,
        'Access-Control-Allow-Origin': '*',
        ...headers,
      });
      res.end(body);
    },
  };
}

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** The HTTP port's routes: POST and OPTIONS /sql, GET /metrics (if exposed); anything else is Neon's 400. */
export function createHttpHandler(deps: HttpDeps): HttpHandler {
  return (req, res) => {
    const reply = replyTo(res);
    const path = pathOf(req.url);
    if (path === '/sql' && req.method === 'POST') {
      void handleSql(req, res, reply, deps);
    } else if (path === '/sql' && req.method === 'OPTIONS') {
      res.writeHead(200, {
        Allow: 'OPTIONS, POST',
        'neon-request-id': reply.requestId,
        'Access-Control-Allow-Origin': '*',
        'Access-Control-Allow-Headers': ALLOW_HEADERS,
        'Access-Control-Allow-Methods': 'OPTIONS, POST',
        'Access-Control-Max-Age': '86400',
      });
      res.end();
    } else if (path === '/metrics' && req.method === 'GET' && deps.exposeMetrics) {
      void deps.metrics.registry.metrics().then((text) => reply.send(200, text, { 'Content-Type': deps.metrics.registry.contentType }));
    } else {
      reply.send(400, JSON.stringify('query is not supported'));
    }
  };
}

function pathOf(url: string | undefined): string {
  const q = url?.indexOf('?') ?? -1;
  return q < 0 ? (url ?? '/') : (url as string).slice(0, q);
}

interface Parsed {
  info: ConnInfo;
  rawText: boolean;
  arrayMode: boolean;
  batch: BatchOptions;
  statementTimeoutMs: number | null;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function parseHeaders(req: IncomingMessage, maxRequestBytes: number): Parsed {
  const length = Number(header(req, 'content-length'));
  if (Number.isFinite(length) && length > maxRequestBytes) throw tooLarge(maxRequestBytes);
  const info = parseConnectionString(header(req, 'neon-connection-string'), header(req, 'authorization'));
  const isolation = header(req, 'neon-batch-isolation-level') ?? null;
  if (isolation !== null && !isIsolationLevel(isolation)) throw new ProxyError('invalid isolation level', 400, 'bad_request');
  const timeout = header(req, STATEMENT_TIMEOUT_HEADER.toLowerCase());
  if (timeout !== undefined && !/^\d{1,9}$/.test(timeout)) {
    throw new ProxyError(`invalid ${STATEMENT_TIMEOUT_HEADER} header: expected milliseconds`, 400, 'bad_request');
  }
  return {
    info,
    rawText: header(req, 'neon-raw-text-output') === 'true',
    arrayMode: header(req, 'neon-array-mode') === 'true',
    batch: {
      isolationLevel: isolation,
      readOnly: header(req, 'neon-batch-read-only') === 'true',
      deferrable: header(req, 'neon-batch-deferrable') === 'true',
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

/** What a request's handling needs besides its parsed headers. */
interface RequestCtx {
  req: IncomingMessage;
  res: ServerResponse;
  deps: HttpDeps;
  /** Counts the error and answers it. */
  fail: (status: number, body: string, code: string) => void;
  reply: Reply;
  timing: RequestTiming;
  /** The request's logger, made when first needed (most requests log nothing). */
  log: () => Logger;
}

async function handleSql(req: IncomingMessage, res: ServerResponse, reply: Reply, deps: HttpDeps): Promise<void> {
  const ended = deps.metrics.sessionStarted('http');
  let logger: Logger | null = null;
  const ctx: RequestCtx = {
    req,
    res,
    deps,
    reply,
    timing: new RequestTiming(),
    fail: (status, body, code) => {
      deps.metrics.errors.inc({ protocol: 'http', code });
      reply.send(status, body);
    },
    log: () => (logger ??= deps.logger.child({ requestId: reply.requestId })),
  };
  try {
    let parsed: Parsed;
    try {
      parsed = parseHeaders(req, deps.maxRequestBytes);
    } catch (err) {
      return errorResponse(err, ctx);
    }
    const ready = await bodyAndConnection(ctx, parsed.info);
    if ('error' in ready) return errorResponse(ready.error, ctx);
    await runRequest(ctx, parsed, ready);
  } catch (err) {
    errorResponse(err, ctx);
  } finally {
    ended();
  }
}

/** The body and an authenticated connection, concurrently (a cold compute wakes while the body streams). */
async function bodyAndConnection(ctx: RequestCtx, info: ConnInfo): Promise<{ payload: Payload; conn: BackendConnection } | { error: unknown }> {
  const { req, deps } = ctx;
  const bodyP = readIncoming(req, deps.maxRequestBytes).then(decodePayload);
  const connP = (async () => {
    // the role's login keys: a postgres compute is logged in to as the role itself; wiped once a backend is had
    const keys = await deps.auth.checkCleartext(info.endpointId, info.user, info.password, req.socket.remoteAddress ?? '');
    try {
      deps.noteActivity?.(info.endpointId);
      return await deps.pool.acquire(info.endpointId, info.database, info.user, keys, ctx.timing);
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
async function runRequest(ctx: RequestCtx, parsed: Parsed, { payload, conn }: { payload: Payload; conn: BackendConnection }): Promise<void> {
  const { info } = parsed;
  const { deps, res } = ctx;
  if (res.destroyed) {
    deps.pool.release(info.endpointId, info.database, info.user, conn);
    return ctx.fail(400, CANCELLED_BODY, '08P01');
  }
  let cancelled = false;
  const onClose = (): void => {
    if (res.writableFinished) return;
    cancelled = true;
    ctx.log().info({ endpointId: info.endpointId }, 'client went away: cancelling query');
    void conn.cancel();
    setTimeout(() => conn.destroy(), 100).unref();
  };
  res.once('close', onClose);
  let keep = true;
  // The session reset goes out with the request's last statement; the pool then only reads its result.
  const reset: Trailer = { bytes: RESET_MESSAGE, sent: false };
  try {
    const t0 = performance.now();
    const body = await execute(conn, payload, parsed, deps, reset);
    ctx.timing.add('query', performance.now() - t0);
    ctx.reply.send(200, body, responseHeaders(ctx, parsed, payload));
  } catch (err) {
    if (cancelled) return ctx.fail(400, CANCELLED_BODY, '08P01');
    // Only a clean Postgres error leaves the connection reusable; anything else may be mid-stream.
    if (!(err instanceof PgServerError)) {
      keep = false;
      if (err instanceof ResponseTooLarge) void conn.cancel();
    }
    errorResponse(err, ctx);
  } finally {
    res.off('close', onClose);
    if (cancelled || !keep) conn.destroy();
    else deps.pool.release(info.endpointId, info.database, info.user, conn, reset.sent);
  }
}

/** The batch options echoed for a batch, and Server-Timing after a wake (with its steps in the wake histogram). */
function responseHeaders(ctx: RequestCtx, parsed: Parsed, payload: Payload): Record<string, string> {
  const headers = payload.kind === 'batch' ? batchEchoHeaders(parsed.batch) : {};
  const timing = ctx.timing.header();
  if (timing !== null) {
    headers['Server-Timing'] = timing;
    for (const step of ctx.timing.steps) ctx.deps.metrics.wakeStep(step.name, step.ms / 1000);
  }
  return headers;
}

/** Any failure as Neon's status and 17-key body; the metric label is a SQLSTATE or a ProxyError's closed code. */
function errorResponse(err: unknown, ctx: RequestCtx): void {
  const { fail } = ctx;
  if (err instanceof PgServerError) fail(400, errorBody(err.message, err.fields), err.code);
  else if (err instanceof ProxyError) fail(err.httpStatus, errorBody(err.message, err.pgFields), err.code);
  else if (err instanceof ResponseTooLarge) fail(507, errorBody(err.message), 'response_too_large');
  else {
    // Its kind only: the text of an unexpected error may quote the request (headers, body) it choked on.
    ctx.log().error({ kind: err instanceof Error ? err.name : typeof err, code: (err as { code?: unknown } | null)?.code }, 'unexpected error in /sql');
    fail(500, errorBody(err instanceof Error ? err.message : String(err)), 'internal');
  }
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
