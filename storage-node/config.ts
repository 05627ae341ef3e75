// The storage node's options, declared once (lib/config.ts gives --help, parsing and refusals). Environment:
// LAKEBASE_STORAGE_NODE_<OPTION>; the names documented before that rule (LAKEBASE_STORAGE_PORT,
// LAKEBASE_DURABILITY, ...) still work. The object store is configured apart, by objectStoreFromEnv.
import { bytes, defineConfig, duration, megabytes, oneOf, option, port, text } from '../lib/config.ts';

export const STORAGE_NODE_CONFIG = defineConfig({
  service: 'storage-node',
  title: 'lakebase storage node',
  usage: 'node storage-node/main.ts [--data-dir DIR] [--port N] [--token T] [--durability local|object-store] [options]',
  options: {
    dataDir: option(text('DIR'), {
      help: 'local state: write log and layer cache',
      default: '.lakebase/storage-node',
      aliases: ['LAKEBASE_STORAGE_DATA_DIR'],
    }),
    host: option(text('HOST'), { help: 'listen address', default: '127.0.0.1', aliases: ['LAKEBASE_STORAGE_HOST'] }),
    port: option(port(), { help: 'listen port, 0 for any', default: 9870, aliases: ['LAKEBASE_STORAGE_PORT'] }),
    token: option(text('T'), {
      help: 'Bearer token required on every route but /healthz, /metrics included (required unless --host is loopback; computes and the control plane send it)',
      secret: true,
      aliases: ['LAKEBASE_STORAGE_TOKEN'],
    }),
    durability: option(oneOf(['local', 'object-store']), {
      help: 'local: acknowledge a write after the local fsync; object-store: only once it is in the bucket',
      default: 'local',
      aliases: ['LAKEBASE_DURABILITY'],
    }),
    retentionHours: option(duration('h', { min: 0, fraction: true }), {
      help: 'history kept for branching and time travel',
      default: 168 * 3_600_000,
      aliases: ['LAKEBASE_RETENTION_HOURS'],
    }),
    maxBatchBytes: option(bytes({ min: 1024 }), {
      help: 'largest write batch accepted',
      default: 64 * 1024 * 1024,
      aliases: ['LAKEBASE_STORAGE_MAX_BATCH_BYTES'],
    }),
    freezeMb: option(megabytes({ above: 0, fraction: true }), {
      help: "freeze a timeline's recent writes into a layer at this size",
      default: 16 * 1024 * 1024,
      aliases: ['LAKEBASE_STORAGE_FREEZE_MB'],
    }),
  },
  notes: `Object store: LAKEBASE_OBJECT_STORE_DIR (.lakebase/objects), or LAKEBASE_S3_BUCKET with LAKEBASE_S3_ENDPOINT,
LAKEBASE_S3_REGION, LAKEBASE_S3_PREFIX, LAKEBASE_S3_FORCE_PATH_STYLE, LAKEBASE_S3_ACCESS_KEY_ID, LAKEBASE_S3_SECRET_ACCESS_KEY.
Logs: JSON lines on stdout, level from LAKEBASE_LOG_LEVEL (info). SIGTERM/SIGINT flush to the object store, then exit.`,
});

