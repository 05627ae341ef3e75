// The control plane's options, declared once (lib/config.ts gives --help, parsing and refusals). Environment:
// LAKEBASE_CONTROL_PLANE_<OPTION>; the names documented before that rule (LAKEBASE_API_KEY, LAKEBASE_STORAGE_URL,
// LAKEBASE_COMPUTE_HOSTS, ...) still work. Numbers are checked: a typo in --port or --proxy-port is refused, not NaN.
import { defineConfig, duration, integer, list, oneOf, option, port, text, url } from '../lib/config.ts';
import { ENGINES } from './engines.ts';

export const CONTROL_PLANE_CONFIG = defineConfig({
  service: 'control-plane',
  title: 'lakebase control plane',
  usage: 'node control-plane/main.ts --storage-url URL [--compute-host URL[,URL...]] [options]',
  options: {
    storageUrl: option(list(url(), 'URLS'), {
      help: 'the storage nodes, comma-separated: storage-node-1, -2, ... in this order (keep the order: projects name their node)',
      default: ['http://127.0.0.1:9870'],
      aliases: ['LAKEBASE_STORAGE_URL'],
    }),
    storageToken: option(text('T'), { help: 'Bearer token of the storage nodes', secret: true, aliases: ['LAKEBASE_STORAGE_TOKEN'] }),
    storageNodeTimeoutS: option(duration('s', { min: 1, fraction: true }), {
      help: "a storage node silent this long is dead: with object-store durability another node takes its projects over",
      default: 5000,
    }),
    computeHost: option(list(url(), 'URLS'), {
      help: "static compute hosts' control APIs, comma-separated (always live, no heartbeat); other hosts register themselves with --compute-api-token",
      default: [],
    }),
    hostHeartbeatTimeoutS: option(duration('s', { min: 1, fraction: true }), {
      help: 'a registered compute host silent this long is taken out: its endpoints wake on another host',
      default: 5000,
    }),
    computeApiToken: option(text('T'), {
      help: "Bearer token of the compute hosts' control APIs",
      secret: true,
      aliases: ['LAKEBASE_COMPUTE_API_TOKEN'],
    }),
    engine: option(oneOf(ENGINES), {
      help: 'engine of a project created without pg_version: pglite (Postgres 18 in WebAssembly) or postgres (PostgreSQL 15 on FUSE)',
      default: 'pglite',
      aliases: ['LAKEBASE_ENGINE'],
    }),
    host: option(text('HOST'), { help: 'listen address', default: '127.0.0.1' }),
    port: option(port(), { help: 'listen port, 0 for any', default: 9871 }),
    apiKey: option(text('KEY'), { help: 'Bearer key of the public API', required: true, secret: true, aliases: ['LAKEBASE_API_KEY'] }),
    internalToken: option(text('T'), {
      help: "Bearer token of the proxies' internal API",
      required: true,
      secret: true,
      aliases: ['LAKEBASE_INTERNAL_TOKEN'],
    }),
    computeToken: option(text('T'), { help: "the compute hosts' internal password", required: true, secret: true, aliases: ['LAKEBASE_COMPUTE_TOKEN'] }),
    baseDomain: option(text('D'), { help: 'endpoint host names are <endpoint>.<D>', default: 'lakebase.localhost', aliases: ['LAKEBASE_BASE_DOMAIN'] }),
    proxyPort: option(port(), { help: "the proxy's TCP port, for connection strings", default: 5432, aliases: ['LAKEBASE_PROXY_TCP_PORT'] }),
    connectionHost: option(text('H'), {
      help: 'host named in connection URIs, the endpoint then goes in options=endpoint=...',
      defaultText: 'none: <endpoint>.<base domain>',
      aliases: ['LAKEBASE_CONNECTION_HOST'],
    }),
    lakeSyncIntervalS: option(duration('s', { min: 0.1, fraction: true }), {
      help: "how often a running compute's lake tables are synced: changes reach the lake within about this long",
      default: 15_000,
    }),
    lakeCompactAfterFiles: option(integer({ min: 2 }), {
      help: "a lake table's files are merged (and its old snapshots expired) once it has more than this many",
      default: 32,
    }),
    secretKey: option(text('K'), {
      help: 'seals role passwords so reveal_password can show them (changing it makes stored passwords unrevealable: reset them)',
      defaultText: 'the API key',
      secret: true,
      aliases: ['LAKEBASE_SECRET_KEY'],
    }),
  },
  notes: 'State lives in the object store (LAKEBASE_OBJECT_STORE_DIR or LAKEBASE_S3_*), under control-plane/.\nLogs: JSON lines on stdout, level from LAKEBASE_LOG_LEVEL (info).',
});
