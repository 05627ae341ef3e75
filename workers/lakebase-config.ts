// The only lakebase-specific code a Worker needs: where the lakebase proxy is. Copy this file into your Worker.
//
// The Neon serverless driver (`@neondatabase/serverless`, unmodified) derives its endpoints from the database
// host (`https://api.<region-domain>/sql` for fetch, `wss://<host>/v2` for WebSocket). A self-hosted lakebase
// serves both on one address, its proxy (or an edge gateway in front of it), so we point the driver there.
//
//   LAKEBASE_PROXY = "https://sql.example.com"   TLS (production): HTTPS for fetch, WSS for WebSocket
//   LAKEBASE_PROXY = "http://127.0.0.1:4444"     local `lakebase start` or `wrangler dev`: plain HTTP and WS
//   LAKEBASE_PROXY unset                         the driver's defaults, i.e. hosted Neon
//
// The connection string (a secret: `wrangler secret put DATABASE_URL`) still names the endpoint in its host,
// e.g. postgresql://alex:pw@ep-quiet-lake-123456.lakebase.local/neondb: the proxy reads the endpoint from it.
import { neonConfig } from '@neondatabase/serverless';

export interface LakebaseEnv {
  /** postgresql://role:password@<endpoint-id>.<base-domain>/<database> */
  DATABASE_URL: string;
  /** Origin of the lakebase proxy's HTTP + WebSocket listener, e.g. `https://sql.example.com`. */
  LAKEBASE_PROXY?: string;
}

/** Points the driver at the lakebase proxy. Idempotent and cheap: call it at the start of every request. */
export function configureLakebase(env: Pick<LakebaseEnv, 'LAKEBASE_PROXY'>): void {
  if (!env.LAKEBASE_PROXY) return;
  const proxy = new URL(env.LAKEBASE_PROXY);
  // SQL over HTTP, used by `neon()`: always POST <proxy>/sql.
  neonConfig.fetchEndpoint = `${proxy.origin}/sql`;
  // WebSocket, used by `Pool` and `Client`: the driver adds the scheme; the proxy reads the endpoint from the
  // `address` parameter (or from the Host header when the proxy has a base domain).
  neonConfig.wsProxy = (host, port) => `${proxy.host}/v2?address=${host}:${port}`;
  neonConfig.useSecureWebSocket = proxy.protocol === 'https:';
  // Pass lakebaseCache() options on to the edge gateway as a header (see below).
  neonConfig.fetchFunction = fetchWithCacheHint;
}

// ---- Optional: the edge gateway's result cache (workers/gateway) ----
//
// The gateway caches a read-only `neon()` query when the request carries `Lakebase-Cache-TTL: <seconds>`.
// The driver replaces all of its own headers when given `fetchOptions.headers`, so the TTL travels in a
// field of its own and fetchWithCacheHint turns it into the header:
//
//   const rows = await sql.query('SELECT * FROM products WHERE sku = $1', [sku], lakebaseCache(30));

export const CACHE_TTL_HEADER = 'Lakebase-Cache-TTL';

export interface LakebaseCacheOptions {
  fetchOptions: { lakebaseCacheTtl: number };
}

/** Query options asking the edge gateway to cache this read for `ttlSeconds`. */
export function lakebaseCache(ttlSeconds: number): LakebaseCacheOptions {
  return { fetchOptions: { lakebaseCacheTtl: ttlSeconds } };
}

type FetchInit = RequestInit & { lakebaseCacheTtl?: number };

function fetchWithCacheHint(input: string | URL | Request, init?: FetchInit): Promise<Response> {
  if (init?.lakebaseCacheTtl === undefined) return fetch(input, init);
  const { lakebaseCacheTtl, ...rest } = init;
  const headers = new Headers(rest.headers);
  headers.set(CACHE_TTL_HEADER, String(lakebaseCacheTtl));
  return fetch(input, { ...rest, headers });
}
