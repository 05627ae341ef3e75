// The control plane process: `node control-plane/main.ts --storage-url URL`; compute hosts register with it.
// Its options are declared in control-plane/config.ts (`--help` lists them).
import { resolve } from 'node:path';
import { readConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { stopWithSupervisor } from '../lib/supervised.ts';
import { objectStoreFromEnv } from '../storage-node/object-store/from-config.ts';
import { CONTROL_PLANE_CONFIG } from './config.ts';
import { startControlPlane } from './server.ts';

const log = createLogger('control-plane');
const cfg = readConfig(CONTROL_PLANE_CONFIG);
const cp = await startControlPlane({
  storageUrls: cfg.storageUrl,
  storageNodeTimeoutMs: cfg.storageNodeTimeoutS,
  storageToken: cfg.storageToken,
  computeHostUrls: cfg.computeHost,
  hostHeartbeatTimeoutMs: cfg.hostHeartbeatTimeoutS,
  computeApiToken: cfg.computeApiToken,
  objectStore: objectStoreFromEnv(process.env, { localPath: resolve('.lakebase/objects') }),
  apiKey: cfg.apiKey,
  internalToken: cfg.internalToken,
  computePassword: cfg.computeToken,
  baseDomain: cfg.baseDomain,
  proxyPort: cfg.proxyPort,
  connectionHost: cfg.connectionHost,
  secret: cfg.secretKey,
  defaultEngine: cfg.engine,
  lakeSyncIntervalMs: cfg.lakeSyncIntervalS,
  lakeCompactAfterFiles: cfg.lakeCompactAfterFiles,
  host: cfg.host,
  port: cfg.port,
  logger: log,
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    cp.close().then(() => process.exit(0), () => process.exit(1));
  });
}

stopWithSupervisor();
