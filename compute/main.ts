// The compute host process: `node compute/main.ts --storage-url URL --port N --token T`.
// Every flag also comes from LAKEBASE_COMPUTE_* (flag in upper case, '-' as '_'), e.g. LAKEBASE_COMPUTE_TOKEN;
// --storage-token from LAKEBASE_STORAGE_TOKEN, the storage node's own name for it.
import { parseArgs } from 'node:util';
import { InsecureBindError } from '../lib/http-guard.ts';
import { createLogger } from '../lib/logger.ts';
import { stopWithSupervisor } from '../lib/supervised.ts';
import { DEFAULT_HOST_OPTIONS } from './host/host.ts';
import { startComputeHost } from './host/server.ts';

const HELP = `lakebase compute host

Options (environment variable in brackets, default in parentheses):
  --storage-url URL          the storage node [LAKEBASE_COMPUTE_STORAGE_URL] (http://127.0.0.1:9870)
  --host HOST                control API address [LAKEBASE_COMPUTE_HOST] (127.0.0.1)
  --port N                   control API port, 0 for any [LAKEBASE_COMPUTE_PORT] (9872)
  --token T                  internal password the proxy presents to computes (required) [LAKEBASE_COMPUTE_TOKEN]
  --api-token T              Bearer token required on /v1 and /metrics (not /healthz) [LAKEBASE_COMPUTE_API_TOKEN]
                             (required unless --host is loopback; the control plane sends it)
  --storage-token T          Bearer token of the storage node [LAKEBASE_STORAGE_TOKEN]
  --listen-host HOST         address of the computes' Postgres ports [LAKEBASE_COMPUTE_LISTEN_HOST] (127.0.0.1)
  --advertise-host HOST      address reported for them [LAKEBASE_COMPUTE_ADVERTISE_HOST] (the listen host)
  --pool-size N              pre-started workers kept ready [LAKEBASE_COMPUTE_POOL_SIZE] (2)
  --memory-budget-mb N       memory for computes and pooled workers [LAKEBASE_COMPUTE_MEMORY_BUDGET_MB] (2048)
  --shared-buffers-mb N      shared_buffers per compute [LAKEBASE_COMPUTE_SHARED_BUFFERS_MB] (16)
  --page-cache-mb N          storage page cache per compute [LAKEBASE_COMPUTE_PAGE_CACHE_MB] (32)
  --idle-in-transaction-timeout-s N
                             end a session idle in a transaction while others wait, 0 = never
                             [LAKEBASE_COMPUTE_IDLE_IN_TRANSACTION_TIMEOUT_S] (60)
  --cancel-grace-ms N        time a cancel has to interrupt a statement before the worker is restarted
                             [LAKEBASE_COMPUTE_CANCEL_GRACE_MS] (1000)
  --max-result-mb N          largest result one query may return (54000 above) [LAKEBASE_COMPUTE_MAX_RESULT_MB] (128)
Logs: JSON lines on stdout, level from LAKEBASE_LOG_LEVEL (info). SIGTERM/SIGINT stop every compute cleanly.`;

const log = createLogger('compute-host');

function fail(msg: string): never {
  log.error(msg);
  process.stderr.write(`error: ${msg}\n\n${HELP}\n`);
  process.exit(2);
}

const flags = ['storage-url', 'storage-token', 'host', 'port', 'token', 'api-token', 'listen-host', 'advertise-host', 'pool-size', 'memory-budget-mb', 'shared-buffers-mb', 'page-cache-mb', 'idle-in-transaction-timeout-s', 'cancel-grace-ms', 'max-result-mb'] as const;
type Flag = (typeof flags)[number];

let values: Partial<Record<Flag, string>> & { help?: boolean };
try {
  values = parseArgs({
    options: { ...Object.fromEntries(flags.map((f) => [f, { type: 'string' as const }])), help: { type: 'boolean', short: 'h' } },
  }).values as typeof values;
} catch (e) {
  fail((e as Error).message);
}
if (values.help) {
  process.stdout.write(HELP + '\n');
  process.exit(0);
}

function opt(name: Flag): string | undefined {
  const env = name === 'storage-token' ? 'LAKEBASE_STORAGE_TOKEN' : `LAKEBASE_COMPUTE_${name.toUpperCase().replace(/-/g, '_')}`;
  return values[name] ?? process.env[env];
}

function num(name: Flag, def: number, min: number): number {
  const raw = opt(name);
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) fail(`--${name} must be a number >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

const token = opt('token');
if (!token) fail('--token is required (the password the proxy presents to computes)');
const port = num('port', 9872, 0);
if (!Number.isInteger(port) || port > 65535) fail('--port must be 0..65535');
const listenHost = opt('listen-host') ?? DEFAULT_HOST_OPTIONS.listenHost;
const MiB = 1024 * 1024;

const running = await startComputeHost({
  storageUrl: opt('storage-url') ?? 'http://127.0.0.1:9870',
  storageToken: opt('storage-token') || undefined,
  token,
  apiHost: opt('host') ?? '127.0.0.1',
  apiPort: port,
  apiToken: opt('api-token') || undefined,
  listenHost,
  advertiseHost: opt('advertise-host') ?? listenHost,
  poolSize: Math.floor(num('pool-size', DEFAULT_HOST_OPTIONS.poolSize, 0)),
  memoryBudgetBytes: num('memory-budget-mb', DEFAULT_HOST_OPTIONS.memoryBudgetBytes / MiB, 64) * MiB,
  sharedBuffersBytes: num('shared-buffers-mb', DEFAULT_HOST_OPTIONS.sharedBuffersBytes / MiB, 1) * MiB,
  pageCacheBytes: num('page-cache-mb', DEFAULT_HOST_OPTIONS.pageCacheBytes / MiB, 1) * MiB,
  computeOverheadBytes: DEFAULT_HOST_OPTIONS.computeOverheadBytes,
  pooledWorkerBytes: DEFAULT_HOST_OPTIONS.pooledWorkerBytes,
  limits: { ...DEFAULT_HOST_OPTIONS.limits, maxResultBytes: num('max-result-mb', DEFAULT_HOST_OPTIONS.limits.maxResultBytes / MiB, 1) * MiB },
  idleInTransactionTimeoutMs: num('idle-in-transaction-timeout-s', DEFAULT_HOST_OPTIONS.idleInTransactionTimeoutMs / 1000, 0) * 1000,
  cancelGraceMs: num('cancel-grace-ms', DEFAULT_HOST_OPTIONS.cancelGraceMs, 0),
  stopTimeoutMs: DEFAULT_HOST_OPTIONS.stopTimeoutMs,
  log,
}).catch((e: unknown) => (e instanceof InsecureBindError ? fail(e.message) : Promise.reject(e)));

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'shutting down: stopping every compute');
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
