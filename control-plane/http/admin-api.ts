// The operator's view of the machines (`lakebase admin hosts|nodes`): GET /admin/v1/compute_hosts and
// GET /admin/v1/storage_nodes, behind the API key, and the one operation on them, POST
// /admin/v1/storage_nodes/{name}/drain (move every project off a node). Tenants' /api/v2 shows none of this: these
// name machines, their memory and which endpoints and projects each serves, which only the operator may see.
import { Hono } from 'hono';
import { ServiceError, errorBody, errorHandler } from '../../lib/errors.ts';
import { bearerAuth, requireAuth } from '../../lib/http-guard.ts';
import { jsonBody, v } from '../../lib/validate.ts';
import type { HostRegistry, ComputeHostRecord } from '../hosts/host-registry.ts';
import type { EndpointManager } from '../endpoints.ts';
import { asApiError } from '../errors.ts';
import type { StateStore } from '../state-store.ts';
import type { StorageNodeRecord, StorageNodes } from '../storage/storage-nodes.ts';
import type { ProjectMover } from '../storage/project-mover.ts';

const UNAUTHORIZED = new ServiceError(401, 'UNAUTHORIZED', 'authorization failed: give the API key as Authorization: Bearer <key>');
const NOT_FOUND = new ServiceError(404, 'NOT_FOUND', 'no such admin route: GET /admin/v1/compute_hosts, GET /admin/v1/storage_nodes, POST /admin/v1/storage_nodes/{name}/drain');

export interface AdminApiOptions {
  apiKey: string;
  hosts: HostRegistry;
  endpoints: EndpointManager;
  storage: StorageNodes;
  state: StateStore;
  mover: ProjectMover;
}

const DrainBody = v.object({ to: v.optional(v.pipe(v.string(), v.regex(/^storage-node-\d+$/, 'to must name a storage node, e.g. storage-node-2'))) });

export function adminApi(opts: AdminApiOptions): Hono {
  const app = new Hono();
  app.onError((e, c) => errorHandler({ shape: 'neon', internalCode: 'INTERNAL_ERROR' })(asApiError(e), c));
  app.use('*', requireAuth(bearerAuth(opts.apiKey), { unauthorized: (c) => c.json(errorBody(UNAUTHORIZED, 'neon'), 401) }));
  app.get('/v1/compute_hosts', (c) => c.json({ compute_hosts: opts.hosts.all().map((h) => hostView(h, opts.endpoints)) }));
  app.get('/v1/storage_nodes', async (c) => c.json({ storage_nodes: await Promise.all(opts.storage.all().map((n) => nodeView(n, opts.state, opts.storage.first.name))) }));
  app.post('/v1/storage_nodes/:name/drain', jsonBody(DrainBody, { emptyAs: {} }), async (c) => {
    const from = opts.storage.byName(c.req.param('name'));
    const to = c.req.valid('json').to;
    return c.json({ moved: await opts.mover.drain(from.name, to === undefined ? undefined : opts.storage.byName(to).name) });
  });
  app.all('*', (c) => c.json(errorBody(NOT_FOUND, 'neon'), 404));
  return app;
}

function hostView(h: ComputeHostRecord, endpoints: EndpointManager) {
  return {
    name: h.name,
    url: h.url,
    state: h.state,
    registered: !h.static,
    engines: h.engines,
    engines_unavailable: h.unavailable,
    memory_budget_bytes: h.memoryBudgetBytes,
    memory_used_bytes: h.memoryUsedBytes,
    last_heartbeat_at: h.lastHeartbeatAt === null ? null : new Date(h.lastHeartbeatAt).toISOString(),
    computes: h.computes?.length ?? null,
    endpoints: endpoints.placedOn(h.url),
  };
}

/** A node as the probe last saw it, the projects assigned to it, and the timelines it has loaded (at most 2 s). */
async function nodeView(n: StorageNodeRecord, state: StateStore, first: string) {
  const projects = Object.values(state.current.projects).filter((p) => (p.storage_node ?? first) === n.name).map((p) => p.id);
  const base = { name: n.name, url: n.url, state: n.state, durability: n.durability, last_seen_at: n.lastOkAt === null ? null : new Date(n.lastOkAt).toISOString(), projects };
  try {
    const timelines = await Promise.race([
      n.client.listTimelines().then((t) => t.length),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer in 2 s')), 2000).unref()),
    ]);
    return { ...base, timelines, error: null };
  } catch (e) {
    return { ...base, timelines: null, error: (e as Error).message };
  }
}
