// The compute host's options, declared once (lib/config.ts gives --help, parsing and refusals). Environment:
// LAKEBASE_COMPUTE_<OPTION>; --storage-token also from LAKEBASE_STORAGE_TOKEN, the storage node's own name for it.
import { defineConfig, duration, integer, megabytes, option, port, text, url } from '../lib/config.ts';
import { DEFAULT_HOST_OPTIONS } from './host/host.ts';

const D = DEFAULT_HOST_OPTIONS;

export const COMPUTE_CONFIG = defineConfig({
  service: 'compute',
  title: 'lakebase compute host',
  usage: 'node compute/main.ts --storage-url URL --port N --token T [options]',
  options: {
    storageUrl: option(url(), { help: 'the storage node', default: 'http://127.0.0.1:9870' }),
    host: option(text('HOST'), { help: 'control API address', default: '127.0.0.1' }),
    port: option(port(), { help: 'control API port, 0 for any', default: 9872 }),
    token: option(text('T'), { help: 'internal password the proxy presents to computes', required: 'the password the proxy presents to computes', secret: true }),
    apiToken: option(text('T'), {
      help: 'Bearer token required on /v1 and /metrics (not /healthz); required unless --host is loopback; the control plane sends it',
      secret: true,
    }),
    storageToken: option(text('T'), { help: 'Bearer token of the storage node', secret: true, aliases: ['LAKEBASE_STORAGE_TOKEN'] }),
    controlPlaneUrl: option(url(), { help: 'register with this control plane and heartbeat to it (with --api-token); without, the control plane must name this host (--compute-host)' }),
    name: option(text('NAME'), { help: "this host's name, unique among hosts (kept across restarts)", defaultText: 'compute-host-<port>' }),
    advertiseUrl: option(url(), { help: 'this control API as the control plane reaches it', defaultText: 'http://<host>:<port>' }),
    heartbeatIntervalS: option(duration('s', { min: 0.1, fraction: true }), { help: 'how often it heartbeats to the control plane', default: 1000 }),
    listenHost: option(text('HOST'), { help: "address of the computes' Postgres ports", default: D.listenHost }),
    advertiseHost: option(text('HOST'), { help: 'address reported for them', defaultText: 'the listen host' }),
    poolSize: option(integer({ min: 0, unit: 'workers' }), { help: 'pre-started workers kept ready', default: D.poolSize }),
    memoryBudgetMb: option(megabytes({ min: 64 }), { help: 'memory for computes and pooled workers', default: D.memoryBudgetBytes }),
    sharedBuffersMb: option(megabytes({ min: 1 }), { help: 'shared_buffers per postgres-engine compute', default: D.sharedBuffersBytes }),
    pgliteSharedBuffersMb: option(megabytes({ min: 1 }), { help: 'shared_buffers per PGlite compute', default: D.pgliteSharedBuffersBytes }),
    pageCacheMb: option(megabytes({ min: 1 }), { help: 'storage page cache per compute', default: D.pageCacheBytes }),
    idleInTransactionTimeoutS: option(duration('s', { min: 0, fraction: true }), {
      help: 'end a session idle in a transaction while others wait, 0 = never',
      default: D.idleInTransactionTimeoutMs,
    }),
    cancelGraceMs: option(duration('ms', { min: 0 }), {
      help: 'time a cancel has to interrupt a statement before the worker is restarted',
      default: D.cancelGraceMs,
    }),
    startQueueLength: option(integer({ min: 0, unit: 'starts' }), {
      help: 'starts that may wait for memory at once; one more is refused (start_queue_full)',
      default: D.startQueueLength,
    }),
    startQueueTimeoutS: option(duration('s', { min: 0, fraction: true }), {
      help: 'how long a start waits for memory before it is refused (start_queue_timeout)',
      default: D.startQueueTimeoutMs,
    }),
    evictIdleS: option(duration('s', { min: 0, fraction: true }), {
      help: 'while starts wait for memory, suspend computes idle this long, least recently used first; 0 = never',
      default: D.evictIdleMs,
    }),
    poolSpawns: option(integer({ min: 1, unit: 'workers' }), { help: 'pooled workers made at once while starts wait for one', defaultText: 'twice the CPU count' }),
    maxResultMb: option(megabytes({ min: 1 }), { help: 'largest result one query may return (54000 above)', default: D.limits.maxResultBytes }),
  },
  notes: 'Logs: JSON lines on stdout, level from LAKEBASE_LOG_LEVEL (info). SIGTERM/SIGINT stop every compute cleanly.',
});
