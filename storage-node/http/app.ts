// The storage node's HTTP API (docs/storage-node-api.md), on Hono.
// Errors answer through lib/errors.ts (`{"error": {"code", "message"}}`); requests are checked against the
// schemas of api/schemas.ts through lib/validate.ts.
import { Hono } from 'hono';
import type { Context, MiddlewareHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { validator } from 'hono/validator';
import { errorBody, errorHandler, routeNotFound, tooLarge, unauthorized } from '../../lib/errors.ts';
import type { ServiceError } from '../../lib/errors.ts';
import { limitBody, requireAuth } from '../../lib/http-guard.ts';
import type { InternalAuth } from '../../lib/http-guard.ts';
import { jsonBody, parse, queryOf, type v } from '../../lib/validate.ts';
import { decodeBatch } from '../api/batch-codec.ts';
import {
  acquireWriterBody, createTimelineBody, createTimelineFailure, lsnAtQuery, lsnQuery, pageQuery, pageRefsBody, pageRefsFailure, queryFailure, releaseTimelineBody,
  timeQuery,
  timelineIdFailure, timelineIdParam,
} from '../api/schemas.ts';
import type { Durability, StorageEngine } from '../engine/storage-engine.ts';
import type { StorageMetrics } from '../metrics.ts';

export interface AppOptions {
  maxBatchBytes: number;
  maxPagesPerRead: number;
  /** Required on every route but /healthz (undefined: none, loopback only). */
  auth?: InternalAuth;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

/** Largest body of the JSON routes (a page list of maxPagesPerRead refs is well under it). */
const MAX_JSON_BODY = 1024 * 1024;
const BATCHES = /^\/v1\/timelines\/[^/]+\/batches$/;

/** The `:id` of a timeline route, checked (400 `invalid_timeline_id`); read it with `c.req.valid('param').id`. */
const timelineId = validator('param', (value) => parse(timelineIdParam, value, timelineIdFailure));

/** A route's query string, checked; read it with `c.req.valid('query')`. */
const query = <S extends v.GenericSchema>(schema: S) => queryOf(schema, queryFailure);

const answerError = (c: Context, e: ServiceError): Response => c.json(errorBody(e, 'internal'), e.status as ContentfulStatusCode);

/**
 * A batch over the limit is refused from its Content-Length, before a byte is read. One without Content-Length
 * (chunked) is buffered while it is read, so it is held to the small JSON limit: a 300 MB stream costs no more
 * than 1 MiB. The storage client always sends Content-Length.
 */
function batchLimit(maxBatchBytes: number): MiddlewareHandler {
  const refuse = (max: number, hint: string) => (c: Context) =>
    answerError(c, tooLarge('batch_too_large', `write batch is larger than the limit of ${max} bytes${hint}; split it`));
  const overDeclared = refuse(maxBatchBytes, '');
  const chunked = limitBody(Math.min(maxBatchBytes, MAX_JSON_BODY), refuse(Math.min(maxBatchBytes, MAX_JSON_BODY), ' for a batch without Content-Length'));
  return (c, next) => {
    const declared = c.req.header('content-length');
    if (declared === undefined || c.req.header('transfer-encoding') !== undefined) return chunked(c, next);
    // The check bodyLimit makes of a declared length, made here: bodyLimit looks at `c.req.raw.body` first,
    // which turns the request into a web-stream Request and makes reading the body cost several times more.
    return Number.parseInt(declared || '0', 10) > maxBatchBytes ? Promise.resolve(overDeclared(c)) : next();
  };
}

export function createApp(engine: StorageEngine, metrics: StorageMetrics, opts: AppOptions): Hono {
  const app = new Hono();
  guard(app, metrics, opts, engine.config.durability);
  timelineRoutes(app, engine, opts.maxBatchBytes);
  readRoutes(app, engine, opts.maxPagesPerRead);
  maintenanceRoutes(app, engine);
  return app;
}

/** Metrics per route, the one error handler, /healthz, then the token and the body limits for everything else. */
function guard(app: Hono, metrics: StorageMetrics, opts: AppOptions, durability: Durability): void {
  app.use('*', async (c, next) => {
    const started = process.hrtime.bigint();
    await next();
    const route = c.req.routePath;
    metrics.requests.inc({ route, status: String(c.res.status) });
    metrics.latency.observe({ route }, Number(process.hrtime.bigint() - started) / 1e9);
  });
  app.onError(errorHandler({
    shape: 'internal',
    log: (e, c) => {
      if (e.status !== 0 && e.status < 500) return; // the caller's mistake, answered; not a fault of this node
      const err = e.cause instanceof Error ? e.cause : e;
      opts.log('error', 'request failed', { path: c.req.path, kind: e.kind, err: err.stack ?? String(err) });
    },
  }));
  app.notFound(routeNotFound('internal'));

  // durability: whether the bucket holds every acknowledged batch (a dead node's timelines may be taken over)
  app.get('/healthz', (c) => c.json({ status: 'ok', durability }));
  // everything else (/v1, /metrics) needs the token; then bodies are limited while they are read
  app.use('*', requireAuth(opts.auth, {
    unauthorized: (c) => answerError(c, unauthorized()),
    onFailure: (f) => opts.log('warn', 'storage node API authentication failed', f),
  }));
  const jsonLimit = limitBody(MAX_JSON_BODY, (c) => answerError(c, tooLarge('body_too_large', `request body is larger than ${MAX_JSON_BODY} bytes`)));
  app.use('*', (c, next) => (BATCHES.test(c.req.path) ? next() : jsonLimit(c, next)));
  app.get('/metrics', async (c) => c.text(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }));
}

/** Timelines: list, create, describe, delete; and the write path. */
function timelineRoutes(app: Hono, engine: StorageEngine, maxBatchBytes: number): void {
  app.get('/v1/timelines', (c) => c.json({ timelines: engine.listTimelines() }));
  app.post('/v1/timelines', jsonBody(createTimelineBody, { emptyAs: {}, fail: createTimelineFailure }), async (c) =>
    c.json(await engine.createTimeline(c.req.valid('json')), 201));
  app.get('/v1/timelines/:id', timelineId, async (c) => c.json(await engine.getTimeline(c.req.valid('param').id)));
  app.delete('/v1/timelines/:id', timelineId, async (c) => {
    await engine.deleteTimeline(c.req.valid('param').id);
    return c.json({ deleted: true });
  });
  // a read-write compute takes the timeline: batches of older writer generations are refused from now on
  app.post('/v1/timelines/:id/writer', timelineId, jsonBody(acquireWriterBody, { emptyAs: {} }), async (c) =>
    c.json(await engine.acquireWriter(c.req.valid('param').id)));
  // hand the timeline over: everything acknowledged into the bucket, then forgotten here (another node adopts it)
  app.post('/v1/timelines/:id/release', timelineId, jsonBody(releaseTimelineBody, { emptyAs: {} }), async (c) =>
    c.json(await engine.releaseTimeline(c.req.valid('param').id)));
  app.post('/v1/timelines/:id/batches', batchLimit(maxBatchBytes), timelineId, async (c) => {
    const batch = decodeBatch(new Uint8Array(await c.req.arrayBuffer()));
    return c.json(await engine.writeBatch(c.req.valid('param').id, batch));
  });
}

/** Reads: pages, file listings, LSN <-> time. Each route checks its parts in the order it always did. */
function readRoutes(app: Hono, engine: StorageEngine, maxPagesPerRead: number): void {
  app.get('/v1/timelines/:id/page', timelineId, query(pageQuery), async (c) => {
    const { path, page, lsn } = c.req.valid('query');
    const bytes = await engine.readPage(c.req.valid('param').id, path, page, lsn);
    return c.body(new Uint8Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength), 200, { 'content-type': 'application/octet-stream' });
  });
  app.post('/v1/timelines/:id/pages', timelineId, jsonBody(pageRefsBody(maxPagesPerRead), { emptyAs: {}, fail: pageRefsFailure }), query(lsnQuery), async (c) => {
    const { lsn, pages } = await engine.readPages(c.req.valid('param').id, c.req.valid('json').pages, c.req.valid('query').lsn);
    const all = Buffer.concat(pages);
    return c.body(new Uint8Array(all.buffer as ArrayBuffer, all.byteOffset, all.byteLength), 200, { 'content-type': 'application/octet-stream', 'lakebase-lsn': String(lsn) });
  });
  app.get('/v1/timelines/:id/files', timelineId, query(lsnQuery), async (c) =>
    c.json(await engine.listFiles(c.req.valid('param').id, c.req.valid('query').lsn)));
  app.get('/v1/timelines/:id/lsn', query(lsnAtQuery), timelineId, async (c) =>
    c.json(await engine.lsnAt(c.req.valid('param').id, atOf(c.req.valid('query')))));
  app.get('/v1/timelines/:id/time', query(timeQuery), timelineId, async (c) =>
    c.json(await engine.timeOf(c.req.valid('param').id, c.req.valid('query').lsn)));
}

/** Checkpoint, compaction and GC on demand (the engine also runs them in the background). */
function maintenanceRoutes(app: Hono, engine: StorageEngine): void {
  app.post('/v1/timelines/:id/checkpoint', timelineId, async (c) => c.json(await engine.checkpoint(c.req.valid('param').id)));
  app.post('/v1/timelines/:id/compact', timelineId, async (c) => c.json(await engine.compact(c.req.valid('param').id)));
  app.post('/v1/timelines/:id/gc', timelineId, async (c) => c.json(await engine.gc(c.req.valid('param').id)));
}

/** GET /lsn's point: a time or a WAL position (lsnAtQuery lets exactly one through). */
function atOf(q: { timestamp?: string; walLsn?: number }): { timestamp: string } | { walLsn: number } {
  return q.walLsn !== undefined ? { walLsn: q.walLsn } : { timestamp: q.timestamp! };
}
