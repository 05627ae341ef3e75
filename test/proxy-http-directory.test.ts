// The proxy's HTTP directory client (proxy/directory/http-directory.ts) against a real HTTP server standing in
// for the control plane's internal routes: the base URL's path kept in front of every route, the bearer token,
// Neon's error bodies decoded into DirectoryError (status, retriable, user text), no answer = retriable 502.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DirectoryError } from '../proxy/directory/directory.ts';
import { HttpEndpointDirectory } from '../proxy/directory/http-directory.ts';

type Route = (req: http.IncomingMessage) => { status: number; body?: string };

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

/** A control plane answering with `route`; returns its base URL (with a path, as `lakebase start` gives) and the requests seen. */
async function controlPlane(route: Route): Promise<{ url: string; seen: string[] }> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? '-'}`);
      const a = route(req);
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(a.body ?? '');
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/internal`, seen };
}

const failure = (p: Promise<unknown>): Promise<DirectoryError> =>
  p.then(
    () => {
      throw new Error('expected a DirectoryError');
    },
    (e: unknown) => {
      expect(e).toBeInstanceOf(DirectoryError);
      return e as DirectoryError;
    },
  );

describe('HttpEndpointDirectory', () => {
  it('looks roles up and wakes under the base path, with the token', async () => {
    const cp = await controlPlane((req) => {
      if (req.url === '/internal/v1/endpoints/ep-a/roles/alex') return { status: 200, body: '{"verifier":"SCRAM-SHA-256$v"}' };
      if (req.url?.includes('/roles/')) return { status: 404 };
      if (req.url === '/internal/v1/endpoints/ep-a/wake') return { status: 200, body: '{"host":"10.0.0.1","port":5432,"password":"p"}' };
      return { status: 204 };
    });
    const dir = new HttpEndpointDirectory(`${cp.url}/`, { token: 'tok', activityIntervalMs: 0 });
    expect(await dir.lookupRole('ep-a', 'alex')).toEqual({ verifier: 'SCRAM-SHA-256$v' });
    expect(await dir.lookupRole('ep-a', 'bob')).toBeNull();
    expect(await dir.wake('ep-a')).toEqual({ host: '10.0.0.1', port: 5432, password: 'p', engine: 'pglite' });
    dir.noteActivity('ep-a');
    await expect.poll(() => cp.seen.length).toBe(4);
    expect(cp.seen).toEqual([
      'GET /internal/v1/endpoints/ep-a/roles/alex Bearer tok',
      'GET /internal/v1/endpoints/ep-a/roles/bob Bearer tok',
      'POST /internal/v1/endpoints/ep-a/wake Bearer tok',
      'POST /internal/v1/endpoints/ep-a/activity Bearer tok',
    ]);
  });

  it('decodes error answers: status, retriable (flag, transient reason or 503) and the user-facing text', async () => {
    const answers: Record<string, { status: number; body?: string }> = {
      'ep-idle': { status: 409, body: '{"reason":"ENDPOINT_IDLE"}' },
      'ep-quota': { status: 429, body: '{"message":"You have exceeded the limit."}' },
      'ep-flag': { status: 500, body: '{"retriable":true}' },
      'ep-down': { status: 503, body: 'not json' },
      'ep-odd': { status: 418 },
    };
    const cp = await controlPlane((req) => answers[req.url?.split('/')[4] ?? ''] ?? { status: 404 });
    const dir = new HttpEndpointDirectory(cp.url);
    expect(await failure(dir.wake('ep-idle'))).toMatchObject({ status: 409, retriable: true, code: 'ENDPOINT_IDLE', userMessage: undefined });
    expect(await failure(dir.wake('ep-quota'))).toMatchObject({ status: 429, retriable: false, userMessage: 'You have exceeded the limit.' });
    expect(await failure(dir.wake('ep-flag'))).toMatchObject({ status: 500, retriable: true, kind: 'control_plane' });
    expect(await failure(dir.wake('ep-down'))).toMatchObject({ status: 503, retriable: true });
    // a status outside the known set keeps its class (a 4xx is the caller's, not a control-plane outage)
    expect(await failure(dir.wake('ep-odd'))).toMatchObject({ status: 400, retriable: false, message: 'control plane answered 418' });
    expect(await failure(dir.lookupRole('ep-down', 'alex'))).toMatchObject({ status: 503, retriable: true });
  });

  it('no answer at all is a retriable 502', async () => {
    const cp = await controlPlane(() => ({ status: 200 }));
    const dir = new HttpEndpointDirectory(cp.url);
    const s = servers.splice(0)[0];
    await new Promise<void>((r) => s.close(() => r()));
    const e = await failure(dir.lookupRole('ep-a', 'alex'));
    expect(e).toMatchObject({ status: 502, retriable: true, code: 'control_plane_unreachable', kind: 'control_plane' });
    expect(e.message).toMatch(/is unreachable/);
    expect(await failure(dir.wake('ep-a'))).toMatchObject({ status: 502, retriable: true });
  });
});
