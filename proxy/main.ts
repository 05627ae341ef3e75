// The proxy as a process: `node proxy/main.ts --directory-url http://control-plane:port [flags]`.
// Every flag can also come from the environment as LAKEBASE_PROXY_<FLAG> (e.g. --http-port -> LAKEBASE_PROXY_HTTP_PORT);
// a flag wins over the environment. Prints one JSON line {"httpPort":..,"tcpPort":..} on stdout when listening.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createLogger } from '../lib/logger.ts';
import { stopWithSupervisor } from '../lib/supervised.ts';
import { HttpEndpointDirectory } from './directory/http-directory.ts';
import type { RateWindow } from './compute/rate-limit.ts';
import { startProxy } from './server.ts';

const HELP = `lakebase proxy: Neon-compatible SQL over HTTP, WebSocket and Postgres TCP in front of lakebase computes.

  --directory-url URL        control plane (EndpointDirectory over HTTP, see proxy/directory/http-directory.ts)  [required]
  --directory-token TOKEN    bearer token for the directory
  --host ADDR                listen address (default 127.0.0.1)
  --http-port N              HTTP + WebSocket port (default 4444; 0 = any)
  --tcp-port N|off           Postgres TCP port (default 5432; 0 = any; off = none)
  --base-domain D[,D...]     domains whose first label names an endpoint (WebSocket Host, TLS SNI)
  --max-request-bytes N      SQL-over-HTTP request limit (default 10485760)
  --max-response-bytes N     SQL-over-HTTP response limit (default 10485760)
  --rate-limits SPEC         per-endpoint new-connection limits, e.g. 500/1000,300/60000,200/600000 (rps/windowMs)
  --pool-max-idle N          idle compute connections kept per (endpoint, database, role) (default 20)
  --pool-idle-timeout-ms N   close idle pooled connections after this (default 300000)
  --handshake-timeout-ms N   wire startup must finish within this (default 15000)
  --tls-cert FILE --tls-key FILE   TLS on the TCP port (SSLRequest answered 'S'; SNI routing)
  --https-port N             with TLS: also serve HTTPS + WSS on this port
  --tcp-default-endpoint ID  endpoint for TCP clients that name none
  --tcp-allow-cleartext      let plain-TCP clients use the endpoint=<id>;<password> cleartext form
  --no-metrics               no GET /metrics on the HTTP port (where it faces the internet)
  --mock-auth-secret S       key of the deterministic SCRAM salts of unknown roles/endpoints (default: derived
                             from --directory-token; random per process without either, so they change on restart)
  --verifier-ttl-ms N        cached role verifiers serve this long without asking the control plane (default 60000)
  --verifier-stale-ms N      while the control plane is unreachable, cached verifiers serve this long (default 3600000)
  --auth-client-failures N   failures of one address at one role before backoff (default 5)
  --auth-address-failures N  failures of one address at any role before backoff (default 30)
  --auth-role-failures-per-minute N   over this, only addresses that logged in to the role before may try (default 120)
  --auth-lock-ms N           first lockout (default 1000), doubling per further failure up to --auth-max-lock-ms (default 300000)
  --help
Environment: LAKEBASE_PROXY_<FLAG> for each flag, LAKEBASE_LOG_LEVEL for logs.
HTTP clients may send Lakebase-Statement-Timeout: <ms> to bound the statements of one request.
GET /metrics on the HTTP port serves Prometheus metrics (aggregate counters only); --no-metrics turns it off.`;

const FLAGS = {
  'directory-url': { type: 'string' },
  'directory-token': { type: 'string' },
  host: { type: 'string' },
  'http-port': { type: 'string' },
  'tcp-port': { type: 'string' },
  'base-domain': { type: 'string' },
  'max-request-bytes': { type: 'string' },
  'max-response-bytes': { type: 'string' },
  'rate-limits': { type: 'string' },
  'pool-max-idle': { type: 'string' },
  'pool-idle-timeout-ms': { type: 'string' },
  'handshake-timeout-ms': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'https-port': { type: 'string' },
  'tcp-default-endpoint': { type: 'string' },
  'tcp-allow-cleartext': { type: 'boolean' },
  'no-metrics': { type: 'boolean' },
  'mock-auth-secret': { type: 'string' },
  'verifier-ttl-ms': { type: 'string' },
  'verifier-stale-ms': { type: 'string' },
  'auth-client-failures': { type: 'string' },
  'auth-address-failures': { type: 'string' },
  'auth-role-failures-per-minute': { type: 'string' },
  'auth-lock-ms': { type: 'string' },
  'auth-max-lock-ms': { type: 'string' },
  help: { type: 'boolean' },
} as const;

type Flag = keyof typeof FLAGS;

function main(): Promise<void> | void {
  const { values } = parseArgs({ options: FLAGS, strict: true });
  const get = (flag: Flag): string | undefined => {
    const v = values[flag];
    if (v !== undefined) return String(v);
    return process.env[`LAKEBASE_PROXY_${flag.toUpperCase().replace(/-/g, '_')}`];
  };
  const num = (flag: Flag): number | undefined => {
    const v = get(flag);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${flag} must be a non-negative integer, got ${v}`);
    return n;
  };
  if (values.help) {
    console.log(HELP);
    return;
  }
  const directoryUrl = get('directory-url');
  if (!directoryUrl) {
    console.error('--directory-url is required\n\n' + HELP);
    process.exit(2);
  }
  const rateLimits: RateWindow[] | undefined = get('rate-limits')
    ?.split(',')
    .map((spec) => {
      const [rps, windowMs] = spec.split('/').map(Number);
      if (!(rps > 0 && windowMs > 0)) throw new Error(`bad --rate-limits entry ${spec}`);
      return { rps, windowMs };
    });
  const cert = get('tls-cert');
  const key = get('tls-key');
  const tcpPortFlag = get('tcp-port');
  const logger = createLogger('proxy');
  const token = get('directory-token');
  const mockSecret = get('mock-auth-secret') ?? (token ? `directory-token:${token}` : undefined);
  return startProxy({
    directory: new HttpEndpointDirectory(directoryUrl, { token }),
    mockAuthSecret: mockSecret === undefined ? undefined : createHash('sha256').update('lakebase mock auth\0').update(mockSecret).digest(),
    roleCache: { ttlMs: num('verifier-ttl-ms'), staleIfErrorMs: num('verifier-stale-ms') },
    authLimits: {
      clientFailures: num('auth-client-failures'),
      addressFailures: num('auth-address-failures'),
      roleFailuresPerMinute: num('auth-role-failures-per-minute'),
      baseLockMs: num('auth-lock-ms'),
      maxLockMs: num('auth-max-lock-ms'),
    },
    host: get('host'),
    httpPort: num('http-port') ?? 4444,
    tcpPort: tcpPortFlag === 'off' ? null : (num('tcp-port') ?? 5432),
    baseDomains: get('base-domain')?.split(',').filter(Boolean),
    maxRequestBytes: num('max-request-bytes'),
    maxResponseBytes: num('max-response-bytes'),
    rateLimits,
    pool: { maxIdlePerKey: num('pool-max-idle') ?? 20, idleTimeoutMs: num('pool-idle-timeout-ms') ?? 300_000 },
    handshakeTimeoutMs: num('handshake-timeout-ms'),
    tls: cert && key ? { cert: readFileSync(cert), key: readFileSync(key) } : undefined,
    httpsPort: num('https-port'),
    tcpDefaultEndpoint: get('tcp-default-endpoint'),
    tcpAllowCleartext: get('tcp-allow-cleartext') === 'true',
    exposeMetrics: get('no-metrics') !== 'true',
    logger,
  }).then((proxy) => {
    process.stdout.write(JSON.stringify({ httpPort: proxy.httpPort, httpsPort: proxy.httpsPort, tcpPort: proxy.tcpPort }) + '\n');
    const stop = (): void => {
      logger.info('shutting down');
      void proxy.close().then(() => process.exit(0));
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

try {
  await main();
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
}

stopWithSupervisor();
