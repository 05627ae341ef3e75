// The control plane process: `node control-plane/main.ts --storage-url URL --compute-host URL[,URL...]`.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../lib/logger.ts';
import { stopWithSupervisor } from '../lib/supervised.ts';
import { objectStoreFromEnv } from '../storage-node/object-store/from-config.ts';
import { startControlPlane } from './server.ts';

const HELP = `lakebase control plane

Options (environment variable in brackets):
  --storage-url URL        the storage node [LAKEBASE_STORAGE_URL] (http://127.0.0.1:9870)
  --storage-token T        Bearer token of the storage node [LAKEBASE_STORAGE_TOKEN]
  --compute-host URLS      compute hosts' control APIs, comma-separated [LAKEBASE_COMPUTE_HOSTS]
  --compute-api-token T    Bearer token of the compute hosts' control APIs [LAKEBASE_COMPUTE_API_TOKEN]
  --host HOST --port N     listen address [LAKEBASE_CONTROL_PLANE_HOST, LAKEBASE_CONTROL_PLANE_PORT] (127.0.0.1, 9871)
  --api-key KEY            Bearer key of the public API [LAKEBASE_API_KEY] (required)
  --internal-token T       Bearer token of the proxies' internal API [LAKEBASE_INTERNAL_TOKEN] (required)
  --compute-token T        the compute hosts' internal password [LAKEBASE_COMPUTE_TOKEN] (required)
  --base-domain D          endpoint host names are <endpoint>.<D> [LAKEBASE_BASE_DOMAIN] (lakebase.localhost)
  --proxy-port N           the proxy's TCP port, for connection strings [LAKEBASE_PROXY_TCP_PORT] (5432)
  --connection-host H      host named in connection URIs, the endpoint then goes in options=endpoint=...
                           [LAKEBASE_CONNECTION_HOST] (none: <endpoint>.<base domain>)
  --secret-key K           seals role passwords so reveal_password can show them [LAKEBASE_SECRET_KEY]
                           (default: the API key; changing it makes stored passwords unrevealable: reset them)
State lives in the object store (LAKEBASE_OBJECT_STORE_DIR or LAKEBASE_S3_*), under control-plane/.`;

const log = createLogger('control-plane');
const { values } = parseArgs({
  options: {
    'storage-url': { type: 'string' }, 'storage-token': { type: 'string' }, 'compute-host': { type: 'string' }, 'compute-api-token': { type: 'string' }, host: { type: 'string' }, port: { type: 'string' },
    'api-key': { type: 'string' }, 'internal-token': { type: 'string' }, 'compute-token': { type: 'string' },
    'base-domain': { type: 'string' }, 'proxy-port': { type: 'string' }, 'connection-host': { type: 'string' }, 'secret-key': { type: 'string' }, help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(HELP + '\n');
  process.exit(0);
}
const env = process.env;
function need(v: string | undefined, name: string): string {
  if (!v) {
    process.stderr.write(`error: ${name} is required\n\n${HELP}\n`);
    process.exit(2);
  }
  return v;
}
const cp = await startControlPlane({
  storageUrl: values['storage-url'] ?? env.LAKEBASE_STORAGE_URL ?? 'http://127.0.0.1:9870',
  storageToken: values['storage-token'] || env.LAKEBASE_STORAGE_TOKEN || undefined,
  computeHostUrls: need(values['compute-host'] ?? env.LAKEBASE_COMPUTE_HOSTS, '--compute-host').split(',').filter(Boolean),
  computeApiToken: values['compute-api-token'] || env.LAKEBASE_COMPUTE_API_TOKEN || undefined,
  objectStore: objectStoreFromEnv(env, { localPath: resolve('.lakebase/objects') }),
  apiKey: need(values['api-key'] ?? env.LAKEBASE_API_KEY, '--api-key'),
  internalToken: need(values['internal-token'] ?? env.LAKEBASE_INTERNAL_TOKEN, '--internal-token'),
  computePassword: need(values['compute-token'] ?? env.LAKEBASE_COMPUTE_TOKEN, '--compute-token'),
  baseDomain: values['base-domain'] ?? env.LAKEBASE_BASE_DOMAIN ?? 'lakebase.localhost',
  proxyPort: Number(values['proxy-port'] ?? env.LAKEBASE_PROXY_TCP_PORT ?? 5432),
  connectionHost: values['connection-host'] ?? env.LAKEBASE_CONNECTION_HOST,
  secret: values['secret-key'] ?? env.LAKEBASE_SECRET_KEY,
  host: values.host ?? env.LAKEBASE_CONTROL_PLANE_HOST ?? '127.0.0.1',
  port: Number(values.port ?? env.LAKEBASE_CONTROL_PLANE_PORT ?? 9871),
  logger: log,
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    cp.close().then(() => process.exit(0), () => process.exit(1));
  });
}

stopWithSupervisor();
