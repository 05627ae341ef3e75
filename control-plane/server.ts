// Starts a control plane: loads its durable state, makes sure the template timeline exists, learns which computes
// run, then serves the public API (/api/v2), the MCP server (/mcp) and the proxies' internal API on one port.
import { bearerAuth, requireAuth } from '../lib/http-guard.ts';
import { serve } from '@hono/node-server';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { createTemplateTimeline } from '../compute/template.ts';
import { createLogger } from '../lib/logger.ts';
import type { Logger } from '../lib/logger.ts';
import type { ObjectStore } from '../storage-node/object-store/object-store.ts';
import { EndpointManager } from './endpoints.ts';
import { HostRegistry } from './hosts/host-registry.ts';
import { StorageNodes } from './storage/storage-nodes.ts';
import { ProjectMover } from './storage/project-mover.ts';
import type { ControlPlaneState } from './model.ts';
import { adminApi } from './http/admin-api.ts';
import { hostApi } from './http/host-api.ts';
import { LakeSyncer } from './lake/lake-syncer.ts';
import type { ErrorReport } from './http/error-report.ts';
import { internalApi } from './http/internal-api.ts';
import { publicApi } from './http/public-api.ts';
import { runnerOf } from './plane.ts';
import { invalidationsFor } from './role-invalidations.ts';
import { DEFAULT_DATABASE, Projects, TEMPLATE_SETUP_SQL } from './projects.ts';
import { StateStore } from './state-store.ts';
import type { EngineName } from './engines.ts';
import { LakebaseApi } from '../lib/lakebase-api.ts';
import { mcpApp } from '../mcp/http.ts';
import { MigrationStore } from '../mcp/migrations.ts';
import { SqlRunner } from '../mcp/sql-runner.ts';
import type { ToolContext } from '../mcp/tool.ts';

export interface ControlPlaneConfig {
  /** The storage nodes, storage-node-1, -2, ... in this order (storage/storage-nodes.ts). */
  storageUrls: string[];
  /** A storage node silent this long is dead (default 5 s): with object-store durability its projects move. */
  storageNodeTimeoutMs?: number;
  /** The storage nodes' bearer token (LAKEBASE_STORAGE_TOKEN), one for all. */
  storageToken?: string;
  /** Static compute hosts (--compute-host): always live, no heartbeat. Others register (POST /hosts/v1/heartbeat). */
  computeHostUrls: string[];
  /** A registered host silent this long is taken out (default 5 s). */
  hostHeartbeatTimeoutMs?: number;
  /** The compute hosts' control API token (LAKEBASE_COMPUTE_API_TOKEN); hosts present it to register. */
  computeApiToken?: string;
  /** Where the control plane keeps its state (the same bucket as the storage node is fine). */
  objectStore: ObjectStore;
  apiKey: string;
  /** Shared with the proxies (internal API). */
  internalToken: string;
  /** The compute hosts' internal password, handed to proxies on wake. */
  computePassword: string;
  baseDomain: string;
  proxyPort: number;
  /** Key material that seals role passwords for reveal_password (default: the API key). */
  secret?: string;
  /** Engine of a project created without pg_version (default pglite). */
  defaultEngine?: EngineName;
  /** Host named in connection URIs instead of `<endpoint>.<baseDomain>` (e.g. 127.0.0.1), with the endpoint in `options`. */
  connectionHost?: string;
  host?: string;
  port?: number;
  suspendCheckIntervalMs?: number;
  /** How often running computes' lake tables are synced (default 15 s): the lake's freshness bound. */
  lakeSyncIntervalMs?: number;
  /** A lake table is compacted once it has more files than this (default 32). */
  lakeCompactAfterFiles?: number;
  logger?: Logger;
}

export interface ControlPlane {
  url: string;
  port: number;
  projects: Projects;
  endpoints: EndpointManager;
  close(): Promise<void>;
}

export async function startControlPlane(config: ControlPlaneConfig): Promise<ControlPlane> {
  const log = config.logger ?? createLogger('control-plane');
  const state = new StateStore(config.objectStore);
  await state.load();
  const projects = new Projects(state);
  const storage = new StorageNodes(config.storageUrls, { token: config.storageToken, timeoutMs: config.storageNodeTimeoutMs ?? 5000, log });
  const started = Date.now();
  const template = await projects.ensureTemplate(async () => {
    log.info('creating the template timeline (initdb, once)');
    const t = await createTemplateTimeline({ storageUrl: storage.first.url, storageToken: config.storageToken, database: DEFAULT_DATABASE, setupSql: TEMPLATE_SETUP_SQL });
    return t.timelineId;
  });
  log.info({ template, ms: Date.now() - started }, 'template timeline ready');
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const wakes = new Histogram({ name: 'control_plane_wake_seconds', help: 'Time to start a compute for an endpoint', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10], registers: [registry] });
  const suspends = new Counter({ name: 'control_plane_suspends_total', help: 'Endpoints suspended (compute stopped)', registers: [registry] });
  const apiErrors = new Counter({ name: 'control_plane_api_errors_total', help: 'Errors answered by the APIs, by API and error kind', labelNames: ['api', 'kind'] as const, registers: [registry] });
  const errors: ErrorReport = { log, count: (labels) => apiErrors.inc(labels) };
  const hosts = new HostRegistry(config.computeHostUrls, { token: config.computeApiToken, heartbeatTimeoutMs: config.hostHeartbeatTimeoutMs ?? 5000, log });
  const feed = invalidationsFor(state);
  const endpoints = new EndpointManager(state, hosts, storage, log, {
    wake: (seconds) => wakes.observe(seconds),
    suspend: () => suspends.inc(),
    moved: (id) => feed.publishCompute(id),
  });
  await endpoints.reconcile();
  hosts.startSweeping();
  const mover = new ProjectMover(state, storage, endpoints, log);
  await sharedTemplates(storage, state.current, log);
  storage.startProbing();
  endpoints.startSuspendLoop(config.suspendCheckIntervalMs ?? 1000);
  const lake = new LakeSyncer(state, endpoints, config.objectStore, log, { intervalMs: config.lakeSyncIntervalMs ?? 15_000, compactAfterFiles: config.lakeCompactAfterFiles });
  lake.start();

  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  // metrics name endpoints' activity: for the operator's scraper, with the internal token
  const metricsAuth = requireAuth(bearerAuth(config.internalToken), { unauthorized: (c) => c.json({ message: 'unauthorized' }, 401) });
  app.get('/metrics', metricsAuth, async (c) => c.text(await registry.metrics(), 200, { 'content-type': registry.contentType }));
  // Proxies use <url>/internal as their directory URL (proxy/directory/http-directory.ts).
  app.route('/hosts', hostApi(endpoints, config.computeApiToken, log, errors));
  app.route('/admin', adminApi({ apiKey: config.apiKey, hosts, endpoints, storage, state, mover }));
  app.route('/internal', internalApi(projects, endpoints, config.internalToken, config.computePassword, log, errors));
  const migrations = new MigrationStore(); // prepared by /mcp's tools, kept until completed
  app.route('/mcp', mcpApp(config.apiKey, () => mcpContext(app, config, migrations)));
  app.route('/', publicApi(state, projects, endpoints, {
    apiKey: config.apiKey, baseDomain: config.baseDomain, proxyPort: config.proxyPort, connectionHost: config.connectionHost,
    secret: config.secret, computePassword: config.computePassword, drivesComputes: config.computeHostUrls.length > 0 || config.computeApiToken !== undefined,
    storage, errors, defaultEngine: config.defaultEngine, lake,
  }));
  const host = config.host ?? '127.0.0.1';
  const { server, port } = await new Promise<{ server: Server; port: number }>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: config.port ?? 0, hostname: host }, (info: AddressInfo) => resolve({ server: s as Server, port: info.port }));
    s.once('error', reject);
  });
  const url = `http://${host}:${port}`;
  log.info({ url }, 'control plane listening');
  return {
    url,
    port,
    projects,
    endpoints,
    close: async () => {
      // running operations stay `running` in the state: the next start resumes them
      runnerOf(state)?.stop();
      await lake.close();
      await endpoints.close();
      hosts.close();
      storage.close();
      await state.flush().catch((e: unknown) => log.warn({ err: e }, 'could not write a state snapshot at stop; the next start replays the changes'));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
    },
  };
}

/**
 * Every project branches from a template made on the first storage node; with several nodes the others read it from
 * the bucket, so all of it must be there, not in the first node's write log (a checkpoint uploads it; quick when
 * it already is). A failure is logged: new projects on other nodes then fail until it succeeds at a later start.
 */
async function sharedTemplates(storage: StorageNodes, s: ControlPlaneState, log: Logger): Promise<void> {
  if (storage.all().length < 2) return;
  for (const t of [s.template_timeline_id, s.postgres_template_timeline_id]) {
    if (t) await storage.first.client.checkpoint(t).catch((e: unknown) => log.error({ template: t, err: String(e) }, 'could not upload the template to the bucket; projects on other storage nodes cannot start'));
  }
}

/**
 * What /mcp's tools run against: this control plane's own API, called in process (the caller passed the API key),
 * and SQL through the proxy: the connection URIs' host, or this machine's proxy port when they name endpoints
 * under the base domain.
 */
function mcpContext(app: Hono, config: ControlPlaneConfig, migrations: MigrationStore): ToolContext {
  const api = new LakebaseApi({ apiUrl: 'http://control-plane/api/v2', apiKey: config.apiKey, fetch: async (url, init) => app.request(url, init) });
  const via = config.connectionHost ? undefined : { host: '127.0.0.1', port: config.proxyPort };
  return { api, sql: new SqlRunner(api, via), migrations };
}
