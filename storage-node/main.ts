// The storage node process: `node storage-node/main.ts [--data-dir DIR] [--port N] [--token T] [--durability local|object-store]`.
// Its options are declared in storage-node/config.ts (`--help` lists them); the object store comes from
// LAKEBASE_S3_* (S3/R2/MinIO) or LAKEBASE_OBJECT_STORE_DIR (a local folder).
import { resolve } from 'node:path';
import { exitWithUsage, readConfig } from '../lib/config.ts';
import { InsecureBindError } from '../lib/http-guard.ts';
import { createLogger } from '../lib/logger.ts';
import { stopWithSupervisor } from '../lib/supervised.ts';
import { STORAGE_NODE_CONFIG } from './config.ts';
import { objectStoreFromEnv } from './object-store/from-config.ts';
import { StorageMetrics } from './metrics.ts';
import { startStorageNode } from './server.ts';

const log = createLogger('storage-node');
function fail(msg: string): never {
  return exitWithUsage(STORAGE_NODE_CONFIG, msg, (m) => log.error(m));
}
const cfg = readConfig(STORAGE_NODE_CONFIG, { log: (m) => log.error(m) });

const metrics = new StorageMetrics();
let objectStore: ReturnType<typeof objectStoreFromEnv>;
try {
  objectStore = objectStoreFromEnv(process.env, { localPath: resolve('.lakebase/objects'), metrics: metrics.objectStore() });
} catch (e) {
  fail((e as Error).message);
}

const running = await startStorageNode({
  dataDir: resolve(cfg.dataDir),
  host: cfg.host,
  port: cfg.port,
  token: cfg.token,
  durability: cfg.durability,
  retentionMs: cfg.retentionHours, // parsed to milliseconds
  maxBatchBytes: cfg.maxBatchBytes,
  freezeBytes: cfg.freezeMb, // parsed to bytes
  objectStore,
  metrics,
  logger: log,
}).catch((e: unknown) => (e instanceof InsecureBindError ? fail(e.message) : Promise.reject(e)));

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'shutting down: flushing to the object store');
    running.close().then(
      () => process.exit(0),
      (e: unknown) => {
        log.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}

stopWithSupervisor();
