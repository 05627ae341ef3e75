// The storage node process: `node storage-node/main.ts [--data-dir DIR] [--port N] [--token T] [--durability local|object-store]`.
// The object store comes from LAKEBASE_S3_* (S3/R2/MinIO) or LAKEBASE_OBJECT_STORE_DIR (a local folder).
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { InsecureBindError } from '../lib/http-guard.ts';
import { createLogger } from '../lib/logger.ts';
import { stopWithSupervisor } from '../lib/supervised.ts';
import { objectStoreFromEnv } from './object-store/from-config.ts';
import { StorageMetrics } from './metrics.ts';
import { startStorageNode } from './server.ts';
import type { Durability } from './engine/storage-engine.ts';

const HELP = `lakebase storage node

Options (environment variable in brackets):
  --data-dir DIR        local state: write log and layer cache [LAKEBASE_STORAGE_DATA_DIR] (.lakebase/storage-node)
  --host HOST           listen address [LAKEBASE_STORAGE_HOST] (127.0.0.1)
  --port N              listen port, 0 for any [LAKEBASE_STORAGE_PORT] (9870)
  --token T             Bearer token required on every route but /healthz, /metrics included [LAKEBASE_STORAGE_TOKEN]
                        (required unless --host is loopback; computes and the control plane send it)
  --durability MODE     local | object-store [LAKEBASE_DURABILITY] (local)
  --retention-hours N   history kept for branching and time travel [LAKEBASE_RETENTION_HOURS] (168)
  --max-batch-bytes N   largest write batch accepted [LAKEBASE_STORAGE_MAX_BATCH_BYTES] (67108864)
  --freeze-mb N         freeze a timeline's recent writes into a layer at this size [LAKEBASE_STORAGE_FREEZE_MB] (16)
Object store: LAKEBASE_OBJECT_STORE_DIR (.lakebase/objects), or LAKEBASE_S3_BUCKET with LAKEBASE_S3_ENDPOINT,
LAKEBASE_S3_REGION, LAKEBASE_S3_PREFIX, LAKEBASE_S3_FORCE_PATH_STYLE, LAKEBASE_S3_ACCESS_KEY_ID, LAKEBASE_S3_SECRET_ACCESS_KEY.`;

const log = createLogger('storage-node');

function fail(msg: string): never {
  log.error(msg);
  process.stderr.write(`error: ${msg}\n\n${HELP}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    token: { type: 'string' },
    durability: { type: 'string' },
    'retention-hours': { type: 'string' },
    'max-batch-bytes': { type: 'string' },
    'freeze-mb': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
}).valueOf() as { values: Record<string, string | boolean | undefined> };

if (values.help) {
  process.stdout.write(HELP + '\n');
  process.exit(0);
}

const env = process.env;
const durability = (values.durability ?? env.LAKEBASE_DURABILITY ?? 'local') as string;
if (durability !== 'local' && durability !== 'object-store') fail(`--durability must be local or object-store, got ${JSON.stringify(durability)}`);
const port = Number(values.port ?? env.LAKEBASE_STORAGE_PORT ?? 9870);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be 0..65535`);
const retentionHours = Number(values['retention-hours'] ?? env.LAKEBASE_RETENTION_HOURS ?? 168);
if (!(retentionHours >= 0)) fail('--retention-hours must be a non-negative number');

const maxBatchBytes = Number(values['max-batch-bytes'] ?? env.LAKEBASE_STORAGE_MAX_BATCH_BYTES ?? 64 * 1024 * 1024);
if (!Number.isSafeInteger(maxBatchBytes) || maxBatchBytes < 1024) fail('--max-batch-bytes must be an integer of at least 1024');

const freezeMb = Number(values['freeze-mb'] ?? env.LAKEBASE_STORAGE_FREEZE_MB ?? 16);
if (!(freezeMb > 0)) fail('--freeze-mb must be a positive number');

const metrics = new StorageMetrics();
let objectStore;
try {
  objectStore = objectStoreFromEnv(env, { localPath: resolve('.lakebase/objects'), metrics: metrics.objectStore() });
} catch (e) {
  fail((e as Error).message);
}

const token = (values.token as string | undefined) || env.LAKEBASE_STORAGE_TOKEN || undefined;
const running = await startStorageNode({
  dataDir: resolve(String(values['data-dir'] ?? env.LAKEBASE_STORAGE_DATA_DIR ?? '.lakebase/storage-node')),
  host: String(values.host ?? env.LAKEBASE_STORAGE_HOST ?? '127.0.0.1'),
  port,
  token,
  durability: durability as Durability,
  retentionMs: retentionHours * 3600_000,
  maxBatchBytes,
  freezeBytes: Math.round(freezeMb * 1024 * 1024),
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
