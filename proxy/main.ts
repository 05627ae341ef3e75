// The proxy as a process: `node proxy/main.ts --directory-url http://control-plane:port [flags]`.
// Its options are declared in proxy/config.ts (`--help` lists them): every flag can also come from the
// environment as LAKEBASE_PROXY_<FLAG> (e.g. --http-port -> LAKEBASE_PROXY_HTTP_PORT); a flag wins over the
// environment. Prints one JSON line {"httpPort":..,"tcpPort":..} on stdout when listening.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readConfig } from '../lib/config.ts';
import type { Values } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { stopWithSupervisor } from '../lib/supervised.ts';
import { PROXY_CONFIG } from './config.ts';
import { HttpEndpointDirectory } from './directory/http-directory.ts';
import { startProxy } from './server.ts';
import type { ProxyConfig } from './server.ts';

type Cfg = Values<typeof PROXY_CONFIG.options>;

/** The key of the mock SCRAM salts: the configured secret, else one derived from the directory token. */
function mockAuthSecret(cfg: Cfg): Buffer | undefined {
  const secret = cfg.mockAuthSecret ?? (cfg.directoryToken ? `directory-token:${cfg.directoryToken}` : undefined);
  return secret === undefined ? undefined : createHash('sha256').update('lakebase mock auth\0').update(secret).digest();
}

function proxyConfig(cfg: Cfg): ProxyConfig {
  return {
    directory: new HttpEndpointDirectory(cfg.directoryUrl, { token: cfg.directoryToken }),
    mockAuthSecret: mockAuthSecret(cfg),
    roleCache: { ttlMs: cfg.verifierTtlMs, staleIfErrorMs: cfg.verifierStaleMs },
    authLimits: {
      clientFailures: cfg.authClientFailures,
      addressFailures: cfg.authAddressFailures,
      roleFailuresPerMinute: cfg.authRoleFailuresPerMinute,
      baseLockMs: cfg.authLockMs,
      maxLockMs: cfg.authMaxLockMs,
    },
    host: cfg.host,
    httpPort: cfg.httpPort,
    tcpPort: cfg.tcpPort,
    baseDomains: cfg.baseDomain,
    maxRequestBytes: cfg.maxRequestBytes,
    maxResponseBytes: cfg.maxResponseBytes,
    rateLimits: cfg.rateLimits,
    pool: { maxIdlePerKey: cfg.poolMaxIdle, idleTimeoutMs: cfg.poolIdleTimeoutMs },
    handshakeTimeoutMs: cfg.handshakeTimeoutMs,
    tls: cfg.tlsCert && cfg.tlsKey ? { cert: readFileSync(cfg.tlsCert), key: readFileSync(cfg.tlsKey) } : undefined,
    httpsPort: cfg.httpsPort,
    tcpDefaultEndpoint: cfg.tcpDefaultEndpoint,
    tcpAllowCleartext: cfg.tcpAllowCleartext,
    exposeMetrics: !cfg.noMetrics,
  };
}

async function main(): Promise<void> {
  const cfg = readConfig(PROXY_CONFIG);
  const logger = createLogger('proxy');
  const proxy = await startProxy({ ...proxyConfig(cfg), logger });
  process.stdout.write(JSON.stringify({ httpPort: proxy.httpPort, httpsPort: proxy.httpsPort, tcpPort: proxy.tcpPort }) + '\n');
  const stop = (): void => {
    logger.info('shutting down');
    void proxy.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

try {
  await main();
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
}

stopWithSupervisor();
