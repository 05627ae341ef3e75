// The proxy's options, declared once (lib/config.ts gives --help, parsing and refusals). Environment:
// LAKEBASE_PROXY_<FLAG> for each flag (--http-port: LAKEBASE_PROXY_HTTP_PORT). Defaults shown as text are the
// server's own (proxy/server.ts and its parts pick them when the option is not given).
import { bytes, defineConfig, duration, flag, integer, list, option, parser, port, refuse, text, url } from '../lib/config.ts';
import type { RateWindow } from './compute/rate-limit.ts';

/** `500/1000,300/60000`: new connections per second over a window of milliseconds, per endpoint. */
const rateLimits = parser<RateWindow[]>({
  metavar: 'SPEC',
  expected: 'rps/windowMs[,rps/windowMs...] with positive numbers, e.g. 500/1000,300/60000',
  parse: (raw) =>
    raw.split(',').map((spec) => {
      const [rps, windowMs] = spec.split('/').map(Number);
      if (!(rps > 0 && windowMs > 0)) refuse(`has a bad entry ${JSON.stringify(spec)}`);
      return { rps, windowMs };
    }),
  show: (ws) => ws.map((w) => `${w.rps}/${w.windowMs}`).join(','),
});

/** A port, or `off` for no listener (null). */
const portOrOff = parser<number | null>({
  metavar: 'N|off',
  expected: 'a port, 0-65535, or off',
  parse: (raw) => (raw === 'off' ? null : port().parse(raw)),
  show: (p) => (p === null ? 'off' : String(p)),
});

const count = (unit: string) => integer({ min: 0, unit });
const ms = () => duration('ms', { min: 0 });

export const PROXY_CONFIG = defineConfig({
  service: 'proxy',
  title: 'lakebase proxy: Neon-compatible SQL over HTTP, WebSocket and Postgres TCP in front of lakebase computes.',
  usage: 'node proxy/main.ts --directory-url http://control-plane:port/internal [options]',
  options: {
    directoryUrl: option(url(), { help: 'control plane (EndpointDirectory over HTTP, see proxy/directory/http-directory.ts)', required: true }),
    directoryToken: option(text('TOKEN'), { help: 'bearer token for the directory', secret: true }),
    host: option(text('ADDR'), { help: 'listen address', defaultText: '127.0.0.1' }),
    httpPort: option(port(), { help: 'HTTP + WebSocket port, 0 = any', default: 4444 }),
    tcpPort: option(portOrOff, { help: 'Postgres TCP port, 0 = any, off = none', default: 5432 }),
    baseDomain: option(list(text('D')), { help: 'domains whose first label names an endpoint (WebSocket Host, TLS SNI)' }),
    maxRequestBytes: option(bytes({ min: 0 }), { help: 'SQL-over-HTTP request limit', defaultText: '10485760' }),
    maxResponseBytes: option(bytes({ min: 0 }), { help: 'SQL-over-HTTP response limit', defaultText: '10485760' }),
    rateLimits: option(rateLimits, { help: 'per-endpoint new-connection limits, e.g. 500/1000,300/60000,200/600000 (rps/windowMs)' }),
    // As many as one endpoint may hold at once: a lower cap closed connections that the next burst reopened, and
    // that churn ran into Neon's new-connection rate limits (200 per 10 minutes) under 32 steady clients
    poolMaxIdle: option(count('connections'), { help: 'idle compute connections kept per (endpoint, database, role)', default: 50 }),
    poolIdleTimeoutMs: option(ms(), { help: 'close idle pooled connections after this', default: 300_000 }),
    handshakeTimeoutMs: option(ms(), { help: 'wire startup must finish within this', defaultText: '15000' }),
    tlsCert: option(text('FILE'), { help: "TLS on the TCP port (with --tls-key; SSLRequest answered 'S'; SNI routing)" }),
    tlsKey: option(text('FILE'), { help: 'the key of --tls-cert' }),
    httpsPort: option(port(), { help: 'with TLS: also serve HTTPS + WSS on this port' }),
    tcpDefaultEndpoint: option(text('ID'), { help: 'endpoint for TCP clients that name none' }),
    tcpAllowCleartext: flag({ help: 'let plain-TCP clients use the endpoint=<id>;<password> cleartext form' }),
    noMetrics: flag({ help: 'no GET /metrics on the HTTP port (where it faces the internet)' }),
    mockAuthSecret: option(text('S'), {
      help: 'key of the deterministic SCRAM salts of unknown roles/endpoints',
      defaultText: 'derived from --directory-token; random per process without either, so they change on restart',
      secret: true,
    }),
    verifierTtlMs: option(ms(), { help: 'cached role verifiers serve this long without asking the control plane', defaultText: '60000' }),
    verifierStaleMs: option(ms(), { help: 'while the control plane is unreachable, cached verifiers serve this long', defaultText: '3600000' }),
    authClientFailures: option(count('failures'), { help: 'failures of one address at one role before backoff', defaultText: '5' }),
    authAddressFailures: option(count('failures'), { help: 'failures of one address at any role before backoff', defaultText: '30' }),
    authRoleFailuresPerMinute: option(count('failures'), {
      help: 'over this, only addresses that logged in to the role before may try',
      defaultText: '120',
    }),
    authLockMs: option(ms(), { help: 'first lockout, doubling per further failure up to --auth-max-lock-ms', defaultText: '1000' }),
    authMaxLockMs: option(ms(), { help: 'longest lockout', defaultText: '300000' }),
  },
  notes: `Logs: LAKEBASE_LOG_LEVEL (info).
HTTP clients may send Lakebase-Statement-Timeout: <ms> to bound the statements of one request.
GET /metrics on the HTTP port serves Prometheus metrics (aggregate counters only); --no-metrics turns it off.
Prints one JSON line {"httpPort":..,"httpsPort":..,"tcpPort":..} on stdout when listening.`,
});
