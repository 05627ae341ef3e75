// The compute host process: `node compute/main.ts --storage-url URL --port N --token T`.
// Its options are declared in compute/config.ts (`--help` lists them): each flag also comes from
// LAKEBASE_COMPUTE_<FLAG>, e.g. LAKEBASE_COMPUTE_TOKEN; --storage-token also from LAKEBASE_STORAGE_TOKEN.
import { exitWithUsage, readConfig } from '../lib/config.ts';
import { InsecureBindError } from '../lib/http-guard.ts';
import { createLogger } from '../lib/logger.ts';
import { stopWithSupervisor } from '../lib/supervised.ts';
import { COMPUTE_CONFIG } from './config.ts';
import { DEFAULT_HOST_OPTIONS } from './host/host.ts';
import { startComputeHost } from './host/server.ts';
import { startHeartbeat } from './host/heartbeat.ts';
import type { EngineName } from './host/api-types.ts';
import { checkPostgresEngine } from './postgres/environment.ts';

const log = createLogger('compute-host');
const cfg = readConfig(COMPUTE_CONFIG, { log: (m) => log.error(m) });

// Sizes arrive in bytes and durations in milliseconds (lib/config.ts parses the MiB and seconds of the flags).
const running = await startComputeHost({
  storageUrl: cfg.storageUrl,
  storageToken: cfg.storageToken,
  token: cfg.token,
  apiHost: cfg.host,
  apiPort: cfg.port,
  apiToken: cfg.apiToken,
  listenHost: cfg.listenHost,
  advertiseHost: cfg.advertiseHost ?? cfg.listenHost,
  poolSize: cfg.poolSize,
  startQueueLength: cfg.startQueueLength,
  startQueueTimeoutMs: cfg.startQueueTimeoutS,
  evictIdleMs: cfg.evictIdleS,
  poolSpawns: cfg.poolSpawns,
  memoryBudgetBytes: cfg.memoryBudgetMb,
  sharedBuffersBytes: cfg.sharedBuffersMb,
  pgliteSharedBuffersBytes: cfg.pgliteSharedBuffersMb,
  pageCacheBytes: cfg.pageCacheMb,
  computeOverheadBytes: DEFAULT_HOST_OPTIONS.computeOverheadBytes,
  pooledWorkerBytes: DEFAULT_HOST_OPTIONS.pooledWorkerBytes,
  limits: { ...DEFAULT_HOST_OPTIONS.limits, maxResultBytes: cfg.maxResultMb },
  idleInTransactionTimeoutMs: cfg.idleInTransactionTimeoutS,
  cancelGraceMs: cfg.cancelGraceMs,
  stopTimeoutMs: DEFAULT_HOST_OPTIONS.stopTimeoutMs,
  log,
}).catch((e: unknown) => (e instanceof InsecureBindError ? exitWithUsage(COMPUTE_CONFIG, e.message, (m) => log.error(m)) : Promise.reject(e)));

// A registered host heartbeats; its engines are what this machine can run (the postgres engine needs FUSE and PostgreSQL 15).
const stopHeartbeat = cfg.controlPlaneUrl
  ? startHeartbeat(running.host, {
      controlPlaneUrl: cfg.controlPlaneUrl,
      token: cfg.apiToken,
      name: cfg.name ?? `compute-host-${running.port}`,
      url: cfg.advertiseUrl ?? running.url,
      ...(await checkPostgresEngine().then(
        () => ({ engines: ['pglite', 'postgres'] as EngineName[] }),
        (e: unknown) => ({ engines: ['pglite'] as EngineName[], unavailable: { postgres: (e as Error).message } }),
      )),
      memoryBudgetBytes: cfg.memoryBudgetMb,
      intervalMs: cfg.heartbeatIntervalS,
      log,
    })
  : () => {};

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'shutting down: stopping every compute');
    stopHeartbeat();
    running.close().then(
      () => process.exit(0),
      (e: unknown) => {
        log.error({ err: String(e) }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}

stopWithSupervisor();
