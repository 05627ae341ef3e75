// The shared base every service builds on: the error model (lib/errors.ts), request validation (lib/validate.ts)
// and the internal HTTP client (lib/internal-client.ts), against real Hono apps and real sockets on 127.0.0.1.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ServiceError, badRequest, decodeErrorResponse, errorBody, errorHandler, routeNotFound, toServiceError,
} from '../lib/errors.ts';
import { InternalClient } from '../lib/internal-client.ts';
import { jsonBody, queryOf, v } from '../lib/validate.ts';

describe('lib/errors', () => {
  it('gives each status its kind, and keeps an explicit one and the cause', () => {
    expect(new ServiceError(404, 'x', 'm').kind).toBe('not_found');
    expect(new ServiceError(409, 'x', 'm').kind).toBe('conflict');
    expect(new ServiceError(400, 'x', 'm').kind).toBe('user');
    expect(new ServiceError(502, 'x', 'm').kind).toBe('service');
    const cause = new Error('disk full');
    const e = new ServiceError(503, 'x', 'm', { kind: 'storage', cause });
    expect(e.kind).toBe('storage');
    expect(e.cause).toBe(cause);
    expect(e.isUserError).toBe(false);
    expect(badRequest('bad', 'm').isUserError).toBe(true);
  });

  it('turns anything thrown into a ServiceError: unknown values are internal 500s, Hono refusals keep their status', () => {
    const plain = toServiceError(new TypeError('boom'));
    expect([plain.status, plain.code, plain.kind, plain.message]).toEqual([500, 'internal_error', 'service', 'boom']);
    const hono = toServiceError(new HTTPException(413, { message: 'too big' }));
    expect([hono.status, hono.message]).toEqual([413, 'too big']);
    const own = badRequest('c', 'm');
    expect(toServiceError(own)).toBe(own);
  });

  it('writes both body shapes and decodes either, or plain text', () => {
    const e = new ServiceError(422, 'BRANCH_HAS_CHILDREN', 'delete the children first', { details: ['b1'] });
    expect(errorBody(e, 'neon')).toEqual({ code: 'BRANCH_HAS_CHILDREN', message: 'delete the children first' });
    expect(errorBody(e, 'internal')).toEqual({ error: { code: 'BRANCH_HAS_CHILDREN', message: 'delete the children first', details: ['b1'] } });

    const fromInternal = decodeErrorResponse('storage node', 409, '{"error":{"code":"fenced","message":"another writer"}}', { kind: 'storage' });
    expect([fromInternal.status, fromInternal.code, fromInternal.message, fromInternal.kind]).toEqual([409, 'fenced', 'storage node: another writer', 'storage']);
    const fromNeon = decodeErrorResponse('lakebase API', 404, '{"code":"NOT_FOUND","message":"no such project"}', { prefix: false });
    expect([fromNeon.code, fromNeon.message]).toEqual(['NOT_FOUND', 'no such project']);
    const text = decodeErrorResponse('compute host', 502, 'Bad Gateway\n');
    expect([text.status, text.code, text.message]).toEqual([502, 'http_502', 'compute host: Bad Gateway']);
  });

  it('answers every error of an app in its shape: status 0 as 503, unknown errors with the API\'s internal code', async () => {
    const app = new Hono();
    app.onError(errorHandler({ shape: 'neon', internalCode: 'INTERNAL_ERROR' }));
    app.notFound(routeNotFound('neon', 'NOT_FOUND'));
    app.get('/down', () => {
      throw new ServiceError(0, 'unreachable', 'storage node is unreachable', { kind: 'storage' });
    });
    app.get('/bug', () => {
      throw new Error('undefined is not a function');
    });
    const down = await app.request('/down');
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ code: 'unreachable', message: 'storage node is unreachable' });
    const bug = await app.request('/bug');
    expect(bug.status).toBe(500);
    expect(await bug.json()).toEqual({ code: 'INTERNAL_ERROR', message: 'undefined is not a function' });
    const none = await app.request('/nope', { method: 'PUT' });
    expect([none.status, await none.json()]).toEqual([404, { code: 'NOT_FOUND', message: 'no route for PUT /nope' }]);
  });
});

describe('lib/validate', () => {
  const Body = v.object({
    name: v.pipe(v.string('name must be a string'), v.minLength(1, 'name must not be empty')),
    size: v.optional(v.number()),
  });
  const app = new Hono();
  app.onError(errorHandler({ shape: 'internal' }));
  app.post('/things', jsonBody(Body, { emptyAs: {} }), (c) => c.json({ upper: c.req.valid('json').name.toUpperCase() }));
  app.get('/things', queryOf(v.object({ limit: v.pipe(v.string(), v.regex(/^\d+$/, 'limit must be a whole number')) })), (c) =>
    c.json({ limit: Number(c.req.valid('query').limit) }));
  const post = async (body: string) => {
    const res = await app.request('/things', { method: 'POST', body });
    return [res.status, await res.json()];
  };

  it('hands the handler the typed body and answers a wrong one with the schema\'s own words', async () => {
    expect(await post('{"name":"a"}')).toEqual([200, { upper: 'A' }]);
    expect(await post('{"name":3}')).toEqual([400, { error: { code: 'invalid_request', message: 'name must be a string' } }]);
    expect(await post('{"name":""}')).toEqual([400, { error: { code: 'invalid_request', message: 'name must not be empty' } }]);
    // no message of its own: the path and valibot's text
    const [status, body] = await post('{"name":"a","size":"big"}');
    expect(status).toBe(400);
    expect((body as { error: { message: string } }).error.message).toMatch(/^size: Invalid type/);
  });

  it('refuses a body that is not JSON whatever its Content-Type, and reads an empty one as `emptyAs`', async () => {
    const [status, body] = await post('{"name":');
    expect(status).toBe(400);
    expect((body as { error: { code: string } }).error.code).toBe('malformed_json');
    // empty is {}: the required key is missing, which valibot reports as a key issue under its path
    expect(await post('')).toEqual([400, { error: { code: 'invalid_request', message: 'name: Invalid key: Expected "name" but received undefined' } }]);
  });

  it('checks query strings too', async () => {
    expect(await (await app.request('/things?limit=5')).json()).toEqual({ limit: 5 });
    const bad = await app.request('/things?limit=five');
    expect([bad.status, await bad.json()]).toEqual([400, { error: { code: 'invalid_request', message: 'limit must be a whole number' } }]);
  });
});

describe('lib/internal-client', () => {
  const servers: http.Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });
  const serve = async (handler: http.RequestListener): Promise<string> => {
    const s = http.createServer(handler);
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  };

  it('sends the token under the base path and decodes the answer, or the error, into a ServiceError', async () => {
    const seen: string[] = [];
    const base = await serve((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization}`);
      if (req.url === '/internal/ok') res.end('{"a":1}');
      else {
        res.statusCode = 409;
        res.end('{"error":{"code":"fenced","message":"another writer"}}');
      }
    });
    const c = new InternalClient(`${base}/internal/`, { service: 'storage node', kind: 'storage', token: 'tok' });
    expect(await c.json('GET', '/ok')).toEqual({ a: 1 });
    const err = await c.json('POST', '/write', { x: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceError);
    expect(err).toMatchObject({ status: 409, code: 'fenced', kind: 'storage', message: 'storage node: another writer' });
    expect(seen).toEqual(['GET /internal/ok Bearer tok', 'POST /internal/write Bearer tok']);
    c.close();
  });

  it('reports a service that does not answer as status 0, and one that answers too late likewise', async () => {
    const refused = new InternalClient('http://127.0.0.1:1', { service: 'compute host', kind: 'compute' });
    await expect(refused.json('GET', '/v1/computes')).rejects.toMatchObject({ status: 0, code: 'unreachable', kind: 'compute' });
    const base = await serve(() => {}); // never answers
    const slow = new InternalClient(base, { service: 'control plane', kind: 'control_plane', timeoutMs: 200 });
    await expect(slow.json('GET', '/x')).rejects.toMatchObject({ status: 0, message: expect.stringMatching(/no answer within 200 ms/) });
    slow.close();
  });

  it('sends a request once more when the kept-alive connection it reused was closed by the server', async () => {
    const sockets = new Set<Socket>();
    let requests = 0;
    const base = await serve((req, res) => {
      requests++;
      sockets.add(req.socket);
      // the second request on the first connection: drop it as a server closing an idle connection would
      if (requests === 2) {
        req.socket.destroy();
        return;
      }
      res.end(`{"n":${requests}}`);
    });
    const c = new InternalClient(base, { service: 'storage node', kind: 'storage' });
    expect(await c.json('GET', '/a')).toEqual({ n: 1 });
    expect(await c.json('GET', '/b')).toEqual({ n: 3 });
    expect(sockets.size).toBe(2);
    c.close();
  });
});
