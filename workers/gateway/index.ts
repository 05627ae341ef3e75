// Edge gateway: a Worker in front of a regional lakebase proxy, so the driver can point at the edge
// (LAKEBASE_PROXY = the gateway's origin). It forwards
//   - `/sql` (SQL over HTTP: `neon()`, any method, so CORS pre-flights too) and
//   - WebSocket upgrades on any path (the `Pool` / `Client` wire protocol, `/v2?address=...`)
// to LAKEBASE_UPSTREAM unchanged: same method, path, query, headers and body bytes, and the proxy's
// response, status, headers and bytes, as they are.
//
// Beyond Neon (like Hyperdrive's query cache, but opt-in per query): a `POST /sql` carrying
// `Lakebase-Cache-TTL: <seconds>` may be answered from the Workers Cache API. The response then says
// `Lakebase-Cache: hit | miss | bypass` (bypass comes with `Lakebase-Cache-Reason`). Requests without the
// header are never cached and never altered. See docs/edge.md for the rules and the choice of cache.
import { CACHE_TTL_HEADER, serveWithCache, type GatewayEnv } from './cache.ts';
import { forward, sqlError } from './http.ts';

export default {
  async fetch(request: Request, env: GatewayEnv, _ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    const target = new URL(url.pathname + url.search, env.LAKEBASE_UPSTREAM);
    if (request.headers.get('Upgrade')?.toLowerCase() === 'websocket') {
      // Returning the upstream's 101 response hands the client's socket to it: workerd relays every message,
      // text or binary, both ways, as it is.
      return fetch(new Request(target, request));
    }
    if (url.pathname !== '/sql') {
      return sqlError(404, 'the lakebase gateway serves /sql and WebSocket upgrades only');
    }
    const ttlHeader = request.headers.get(CACHE_TTL_HEADER);
    if (ttlHeader !== null && request.method === 'POST') return serveWithCache(request, target, ttlHeader, env);
    return forward(request, target);
  },
};
