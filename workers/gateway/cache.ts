// The gateway's opt-in result cache for read-only SQL over HTTP (Workers Cache API).
import { classifyQuery } from './cacheable.ts';
import { forward, sqlError } from './http.ts';

export interface GatewayEnv {
  /** Origin of the regional lakebase proxy (HTTP + WebSocket listener), e.g. `https://sql.eu.example.com`. */
  LAKEBASE_UPSTREAM: string;
  /** Largest TTL a client may ask for, in seconds (default 300). */
  CACHE_MAX_TTL?: string;
}

export const CACHE_TTL_HEADER = 'Lakebase-Cache-TTL';
export const CACHE_STATUS_HEADER = 'Lakebase-Cache';
export const CACHE_REASON_HEADER = 'Lakebase-Cache-Reason';
const CACHED_AT_HEADER = 'Lakebase-Cached-At';
/** Bodies above this are forwarded (streamed) rather than read for caching. */
const MAX_CACHED_REQUEST_BYTES = 1024 * 1024;

type CacheStatus = 'hit' | 'miss' | 'bypass';

export async function serveWithCache(request: Request, target: URL, ttlHeader: string, env: GatewayEnv): Promise<Response> {
  const maxTtl = Number(env.CACHE_MAX_TTL ?? 300);
  const ttl = /^\d{1,9}$/.test(ttlHeader.trim()) ? Number(ttlHeader.trim()) : NaN;
  if (!(ttl >= 0 && ttl <= maxTtl)) {
    return sqlError(400, `${CACHE_TTL_HEADER} must be a whole number of seconds from 0 to ${maxTtl}`);
  }
  if (Number(request.headers.get('Content-Length') ?? 0) > MAX_CACHED_REQUEST_BYTES) {
    return labelled(await forward(request, target), 'bypass', 'request too large');
  }
  const body = await request.arrayBuffer();
  const plan = planCache(request.headers, body, ttl);
  if (!plan.cacheable) return labelled(await forward(request, target, body), 'bypass', plan.reason);

  const cache = caches.default;
  const key = new Request(new URL(`/.lakebase-cache/v1/${await sha256Hex(plan.keyMaterial)}`, request.url));
  const cached = await cache.match(key);
  const ageSeconds = cached ? (Date.now() - Number(cached.headers.get(CACHED_AT_HEADER))) / 1000 : Infinity;
  // An entry lives as long as the TTL of the request that stored it; each request also wants an answer no
  // older than its own TTL.
  if (cached && ageSeconds <= ttl) {
    const headers = new Headers(cached.headers);
    headers.delete('Cache-Control');
    headers.delete(CACHED_AT_HEADER);
    headers.set('Age', String(Math.floor(ageSeconds)));
    headers.set(CACHE_STATUS_HEADER, 'hit');
    return new Response(cached.body, { status: 200, headers });
  }

  // Miss: run the query as the only statement of a READ ONLY transaction (a batch of one), so PostgreSQL
  // refuses a write the lexical check could not see, then answer in the single-query shape the driver expects.
  const headers = new Headers(request.headers);
  headers.set('Neon-Batch-Read-Only', 'true');
  headers.delete('Content-Length');
  const upstream = await fetch(target, {
    method: 'POST',
    headers,
    body: JSON.stringify({ queries: [plan.query] }),
    redirect: 'manual',
  });
  if (upstream.status === 400) {
    const error = (await upstream.clone().json().catch(() => null)) as { code?: unknown } | null;
    if (error?.code === '25006') {
      // read_only_sql_transaction: the statement writes. Nothing happened (rolled back): run it as sent.
      return labelled(await forward(request, target, body), 'bypass', 'statement writes');
    }
  }
  if (upstream.status !== 200) return labelled(upstream, 'miss'); // errors are not cached
  const result = ((await upstream.json()) as { results?: unknown[] }).results?.[0];
  if (result === undefined) return sqlError(502, 'unexpected response from the lakebase proxy');
  const text = JSON.stringify(result);
  const responseHeaders = new Headers(upstream.headers);
  for (const h of ['Content-Length', 'Content-Encoding', 'Neon-Batch-Read-Only']) responseHeaders.delete(h);
  const stored = new Headers({ 'Content-Type': 'application/json', 'Access-Control-Allow-Origin': '*' });
  stored.set('Cache-Control', `max-age=${ttl}`);
  stored.set(CACHED_AT_HEADER, String(Date.now()));
  // Awaited (not waitUntil): the client's next request must find the entry.
  await cache.put(key, new Response(text, { headers: stored }));
  responseHeaders.set(CACHE_STATUS_HEADER, 'miss');
  return new Response(text, { status: 200, headers: responseHeaders });
}

type CachePlan =
  | { cacheable: false; reason: string }
  | { cacheable: true; query: SqlQuery; keyMaterial: string };

interface SqlQuery {
  query: string;
  params?: unknown[];
  arrayMode?: boolean;
}

/** Decides whether a `/sql` request may use the cache and, if so, what identifies its result. */
export function planCache(headers: Headers, body: ArrayBuffer, ttl: number): CachePlan {
  if (ttl === 0) return { cacheable: false, reason: 'TTL 0' };
  // A JWT (auth broker) result belongs to its user; there is no password to key it by.
  if (headers.has('Authorization')) return { cacheable: false, reason: 'authorization header' };
  for (const name of headers.keys()) {
    if (name.startsWith('neon-batch-')) return { cacheable: false, reason: 'transaction' };
  }
  let payload: unknown;
  try {
    payload = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    return { cacheable: false, reason: 'body is not JSON' };
  }
  if (typeof payload !== 'object' || payload === null) return { cacheable: false, reason: 'body is not an object' };
  const p = payload as Record<string, unknown>;
  if ('queries' in p) return { cacheable: false, reason: 'transaction' };
  if (typeof p.query !== 'string') return { cacheable: false, reason: 'no query' };
  if (p.params !== undefined && !Array.isArray(p.params)) return { cacheable: false, reason: 'params is not an array' };
  if (p.arrayMode !== undefined && typeof p.arrayMode !== 'boolean') return { cacheable: false, reason: 'bad arrayMode' };
  const decision = classifyQuery(p.query);
  if (!decision.cacheable) return { cacheable: false, reason: decision.reason };
  const conn = parseConnectionString(headers.get('Neon-Connection-String'));
  if (!conn) return { cacheable: false, reason: 'bad connection string' };
  const query: SqlQuery = { query: p.query, params: p.params ?? [] };
  if (p.arrayMode !== undefined) query.arrayMode = p.arrayMode;
  // Everything that can change the bytes of the answer, or who may see it: endpoint, role and its password
  // (a wrong password must not read a right one's results), database, connection options, the query, its
  // parameters and the result format. Only the digest of this reaches the cache.
  const keyMaterial = JSON.stringify([
    1,
    conn.endpoint,
    conn.role,
    conn.password,
    conn.database,
    conn.rest,
    headers.get('Neon-Raw-Text-Output'),
    headers.get('Neon-Array-Mode'),
    query.query,
    query.params,
    query.arrayMode ?? null,
  ]);
  return { cacheable: true, query, keyMaterial };
}

interface ConnectionIdentity {
  endpoint: string;
  role: string;
  password: string;
  database: string;
  /** Host, port and the query string without `application_name` (it does not change results). */
  rest: string;
}

function parseConnectionString(value: string | null): ConnectionIdentity | null {
  if (!value || !/^postgres(ql)?:\/\//i.test(value)) return null;
  let url: URL;
  try {
    url = new URL(value.replace(/^postgres(ql)?:/i, 'http:'));
  } catch {
    return null;
  }
  url.searchParams.delete('application_name');
  url.searchParams.sort();
  // The endpoint is the host's first label, or `endpoint=<id>` in options when the host is an address.
  const fromOptions = /(?:^|\s)endpoint=([^\s;]+)/.exec(url.searchParams.get('options') ?? '')?.[1];
  const endpoint = (fromOptions ?? url.hostname.split('.')[0]).replace(/-pooler$/, '');
  return { endpoint, role: url.username, password: url.password, database: url.pathname, rest: `${url.host}?${url.searchParams}` };
}

function labelled(response: Response, status: CacheStatus, reason?: string): Response {
  const out = new Response(response.body, response);
  out.headers.set(CACHE_STATUS_HEADER, status);
  if (reason) out.headers.set(CACHE_REASON_HEADER, reason);
  return out;
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}
