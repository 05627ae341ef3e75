// The storage node's HTTP API (docs/storage-node-api.md), on Hono.
import { Hono } from 'hono';
import type { Context, MiddlewareHandler } from 'hono';
import { limitBody, requireAuth } from '../../lib/http-guard.ts';
import type { InternalAuth } from '../../lib/http-guard.ts';
import { BatchDecodeError, decodeBatch } from '../api/batch-codec.ts';
import { InvalidPathError, normaliseDataPath } from '../api/paths.ts';
import type { CreateTimelineRequest, PageRef } from '../api/types.ts';
import { BatchRejectedError, ConflictError, FileNotFoundError, InvalidRequestError, LsnOutOfRangeError, NotFoundError } from '../engine/errors.ts';
import type { StorageEngine } from '../engine/storage-engine.ts';
import type { StorageMetrics } from '../metrics.ts';

export interface AppOptions {
  maxBatchBytes: number;
  maxPagesPerRead: number;
  /** Required on every route but /healthz (undefined: none, loopback only). */
  auth?: InternalAuth;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

/** Largest body of the JSON routes (a page list of maxPagesPerRead refs is well under it). */
const MAX_JSON_BODY = 1024 * 1024;
const BATCHES = /^\/v1\/timelines\/[^/]+\/batches$/;

function statusOf(e: unknown): { status: 400 | 404 | 409 | 500; code: string } {
  if (e instanceof BatchRejectedError) return { status: e.code === 'lsn_mismatch' ? 409 : 400, code: e.code };
  if (e instanceof BatchDecodeError) return { status: 400, code: 'malformed_batch' };
  if (e instanceof InvalidPathError) return { status: 400, code: 'invalid_path' };
  if (e instanceof LsnOutOfRangeError) return { status: 400, code: e.code };
  if (e instanceof InvalidRequestError) return { status: 400, code: e.code };
  if (e instanceof NotFoundError || e instanceof FileNotFoundError) return { status: 404, code: e.code };
  if (e instanceof ConflictError) return { status: 409, code: e.code };
  return { status: 500, code: 'internal_error' };
}

function parseLsn(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw)) throw new InvalidRequestError('invalid_lsn', `lsn must be a non-negative integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new InvalidRequestError('invalid_lsn', `lsn ${raw} is out of range`);
  return n;
}

function parseTimelineId(c: Context): string {
  const id = c.req.param('id') ?? '';
  if (!/^[0-9a-f]{32}$/.test(id)) throw new InvalidRequestError('invalid_timeline_id', `timeline id must be 32 lowercase hex characters, got ${JSON.stringify(id)}`);
  return id;
}

async function jsonBody(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new InvalidRequestError('malformed_json', `request body is not valid JSON: ${(e as Error).message}`);
  }
}

function validateCreate(body: unknown): CreateTimelineRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidRequestError('invalid_request', 'request body must be a JSON object');
  const b = body as Record<string, unknown>;
  const allowed = new Set(['timelineId', 'ancestorTimelineId', 'ancestorLsn', 'ancestorTimestamp']);
  for (const k of Object.keys(b)) if (!allowed.has(k)) throw new InvalidRequestError('invalid_request', `unknown field ${JSON.stringify(k)}`);
  const req: CreateTimelineRequest = {};
  if (b.timelineId !== undefined) {
    if (typeof b.timelineId !== 'string') throw new InvalidRequestError('invalid_request', 'timelineId must be a string');
    req.timelineId = b.timelineId;
  }
  if (b.ancestorTimelineId !== undefined) {
    if (typeof b.ancestorTimelineId !== 'string' || !/^[0-9a-f]{32}$/.test(b.ancestorTimelineId)) throw new InvalidRequestError('invalid_timeline_id', 'ancestorTimelineId must be 32 lowercase hex characters');
    req.ancestorTimelineId = b.ancestorTimelineId;
  }
  if (b.ancestorLsn !== undefined) {
    if (typeof b.ancestorLsn !== 'number' || !Number.isSafeInteger(b.ancestorLsn) || b.ancestorLsn < 0) throw new InvalidRequestError('invalid_lsn', 'ancestorLsn must be a non-negative integer');
    req.ancestorLsn = b.ancestorLsn;
  }
  if (b.ancestorTimestamp !== undefined) {
    if (typeof b.ancestorTimestamp !== 'string') throw new InvalidRequestError('invalid_timestamp', 'ancestorTimestamp must be an ISO 8601 string');
    req.ancestorTimestamp = b.ancestorTimestamp;
  }
  return req;
}

function validatePageRefs(body: unknown, max: number): PageRef[] {
  const pages = (body as { pages?: unknown } | null)?.pages;
  if (!Array.isArray(pages)) throw new InvalidRequestError('invalid_request', 'body must be {"pages": [{"path": ..., "page": ...}, ...]}');
  if (pages.length > max) throw new InvalidRequestError('too_many_pages', `at most ${max} pages per request, got ${pages.length}`);
  return pages.map((p: unknown, i) => {
    const r = p as { path?: unknown; page?: unknown } | null;
    if (!r || typeof r.page !== 'number' || !Number.isSafeInteger(r.page) || r.page < 0) throw new InvalidRequestError('invalid_page', `pages[${i}].page must be a non-negative integer`);
    return { path: normaliseDataPath(r.path), page: r.page };
  });
}

/**
 * A batch over the limit is refused from its Content-Length, before a byte is read. One without Content-Length
 * (chunked) is buffered while it is read, so it is held to the small JSON limit: a 300 MB stream costs no more
 * than 1 MiB. The storage client always sends Content-Length.
 */
function batchLimit(maxBatchBytes: number): MiddlewareHandler {
  const tooLarge = (max: number, hint: string) => (c: Context) =>
    c.json(errorBody('batch_too_large', `write batch is larger than the limit of ${max} bytes${hint}; split it`), 413);
  const declared = limitBody(maxBatchBytes, tooLarge(maxBatchBytes, ''));
  const chunked = limitBody(Math.min(maxBatchBytes, MAX_JSON_BODY), tooLarge(Math.min(maxBatchBytes, MAX_JSON_BODY), ' for a batch without Content-Length'));
  return (c, next) => (c.req.header('content-length') !== undefined && c.req.header('transfer-encoding') === undefined ? declared(c, next) : chunked(c, next));
}

export function createApp(engine: StorageEngine, metrics: StorageMetrics, opts: AppOptions): Hono {
  const app = new Hono();

  app.use('*', async (c, next) => {
    const started = process.hrtime.bigint();
    await next();
    const route = c.req.routePath;
    metrics.requests.inc({ route, status: String(c.res.status) });
    metrics.latency.observe({ route }, Number(process.hrtime.bigint() - started) / 1e9);
  });

  app.onError((e, c) => {
    const { status, code } = statusOf(e);
    if (status === 500) opts.log('error', 'request failed', { path: c.req.path, err: (e as Error).stack ?? String(e) });
    return c.json(errorBody(code, (e as Error).message), status);
  });
  app.notFound((c) => c.json(errorBody('not_found', `no route for ${c.req.method} ${c.req.path}`), 404));

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  // everything else (/v1, /metrics) needs the token; then bodies are limited while they are read
  app.use('*', requireAuth(opts.auth, {
    unauthorized: (c) => c.json(errorBody('unauthorized', 'missing or wrong Authorization: Bearer token'), 401),
    onFailure: (f) => opts.log('warn', 'storage node API authentication failed', f),
  }));
  const jsonLimit = limitBody(MAX_JSON_BODY, (c) => c.json(errorBody('body_too_large', `request body is larger than ${MAX_JSON_BODY} bytes`), 413));
  app.use('*', (c, next) => (BATCHES.test(c.req.path) ? next() : jsonLimit(c, next)));
  app.get('/metrics', async (c) => c.text(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }));

  app.get('/v1/timelines', (c) => c.json({ timelines: engine.listTimelines() }));
  app.post('/v1/timelines', async (c) => c.json(await engine.createTimeline(validateCreate(await jsonBody(c))), 201));
  app.get('/v1/timelines/:id', async (c) => c.json(await engine.getTimeline(parseTimelineId(c))));
  app.delete('/v1/timelines/:id', async (c) => {
    await engine.deleteTimeline(parseTimelineId(c));
    return c.json({ deleted: true });
  });

  app.post(
    '/v1/timelines/:id/batches',
    batchLimit(opts.maxBatchBytes),
    async (c) => {
      const id = parseTimelineId(c);
      const batch = decodeBatch(new Uint8Array(await c.req.arrayBuffer()));
      return c.json(await engine.writeBatch(id, batch));
    },
  );

  app.get('/v1/timelines/:id/page', async (c) => {
    const id = parseTimelineId(c);
    const path = normaliseDataPath(c.req.query('path') ?? '');
    const pageRaw = c.req.query('page') ?? '';
    if (!/^\d+$/.test(pageRaw)) throw new InvalidRequestError('invalid_page', 'page must be a non-negative integer');
    const page = await engine.readPage(id, path, Number(pageRaw), parseLsn(c.req.query('lsn')));
    return c.body(new Uint8Array(page.buffer as ArrayBuffer, page.byteOffset, page.byteLength), 200, { 'content-type': 'application/octet-stream' });
  });

  app.post('/v1/timelines/:id/pages', async (c) => {
    const id = parseTimelineId(c);
    const refs = validatePageRefs(await jsonBody(c), opts.maxPagesPerRead);
    const { lsn, pages } = await engine.readPages(id, refs, parseLsn(c.req.query('lsn')));
    const all = Buffer.concat(pages);
    return c.body(new Uint8Array(all.buffer as ArrayBuffer, all.byteOffset, all.byteLength), 200, { 'content-type': 'application/octet-stream', 'lakebase-lsn': String(lsn) });
  });

  app.get('/v1/timelines/:id/files', async (c) => c.json(await engine.listFiles(parseTimelineId(c), parseLsn(c.req.query('lsn')))));

  app.get('/v1/timelines/:id/lsn', async (c) => {
    const ts = c.req.query('timestamp');
    if (!ts) throw new InvalidRequestError('invalid_timestamp', 'timestamp query parameter is required (ISO 8601)');
    return c.json(await engine.lsnAt(parseTimelineId(c), ts));
  });
  app.get('/v1/timelines/:id/time', async (c) => {
    const lsn = parseLsn(c.req.query('lsn'));
    if (lsn === undefined) throw new InvalidRequestError('invalid_lsn', 'lsn query parameter is required');
    return c.json(await engine.timeOf(parseTimelineId(c), lsn));
  });

  app.post('/v1/timelines/:id/checkpoint', async (c) => c.json(await engine.checkpoint(parseTimelineId(c))));
  app.post('/v1/timelines/:id/compact', async (c) => c.json(await engine.compact(parseTimelineId(c))));
  app.post('/v1/timelines/:id/gc', async (c) => c.json(await engine.gc(parseTimelineId(c))));

  return app;
}
