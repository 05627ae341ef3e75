// The public API, shaped after Neon's API v2 (`/api/v2/...`, Bearer API key). This is its core: projects,
// branches, endpoint start/suspend and connection URIs; the rest of Neon's surface comes later.
import { Hono } from 'hono';
import type { Context } from 'hono';
import type { EndpointManager } from '../endpoints.ts';
import type { BranchRecord, EndpointRecord, ProjectRecord } from '../model.ts';
import { ApiError } from '../projects.ts';
import type { CreatedProject, Projects } from '../projects.ts';
import type { StateStore } from '../state-store.ts';

export interface PublicApiOptions {
  apiKey: string;
  /** Base domain of endpoint hosts in connection strings, e.g. `lakebase.localhost`. */
  baseDomain: string;
  /** TCP port of the proxy, for connection strings. */
  proxyPort: number;
}

function operation(action: string, projectId: string, branchId?: string, endpointId?: string): Record<string, unknown> {
  const now = new Date().toISOString();
  return {
    id: crypto.randomUUID(), project_id: projectId, branch_id: branchId, endpoint_id: endpointId, action,
    status: 'finished', failures_count: 0, created_at: now, updated_at: now, total_duration_ms: 0,
  };
}

async function body(c: Context): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (!text) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ApiError(400, 'BAD_REQUEST', 'request body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ApiError(400, 'BAD_REQUEST', 'request body must be a JSON object');
  return parsed as Record<string, unknown>;
}

export function publicApi(state: StateStore, projects: Projects, endpoints: EndpointManager, opts: PublicApiOptions): Hono {
  const app = new Hono();
  const host = (ep: EndpointRecord) => `${ep.id}.${opts.baseDomain}`;
  const uri = (ep: EndpointRecord, role: string, password: string, db: string, pooled = false) =>
    `postgresql://${encodeURIComponent(role)}:${encodeURIComponent(password)}@${pooled ? ep.id + '-pooler.' + opts.baseDomain : host(ep)}:${opts.proxyPort}/${encodeURIComponent(db)}?sslmode=disable&options=endpoint%3D${ep.id}`;
  const endpointView = (ep: EndpointRecord) => ({ ...ep, host: host(ep), region_id: 'local', autoscaling_limit_min_cu: 0.25, autoscaling_limit_max_cu: 0.25, pooler_enabled: true, pooler_mode: 'transaction' });
  const project = (id: string): ProjectRecord => {
    const p = state.current.projects[id];
    if (!p) throw new ApiError(404, 'PROJECT_NOT_FOUND', `project ${id} not found`);
    return p;
  };
  const branchView = (b: BranchRecord) => ({ ...b, current_state: 'ready', primary: b.default, protected: false });

  app.use('/api/*', async (c, next) => {
    if (c.req.header('authorization') !== `Bearer ${opts.apiKey}`) return c.json({ code: 'UNAUTHORIZED', message: 'authentication required: pass the API key as "Authorization: Bearer <key>"' }, 401);
    await next();
  });
  app.onError((e, c) => {
    if (e instanceof ApiError) return c.json({ code: e.code, message: e.message }, e.status as 400);
    return c.json({ code: 'INTERNAL_ERROR', message: (e as Error).message }, 500);
  });
  app.notFound((c) => c.json({ code: 'NOT_FOUND', message: `no route for ${c.req.method} ${c.req.path}` }, 404));

  app.get('/api/v2/projects', (c) => c.json({ projects: Object.values(state.current.projects), pagination: { cursor: '' } }));
  app.post('/api/v2/projects', async (c) => {
    const b = await body(c);
    const p = (b.project ?? {}) as Record<string, unknown>;
    if (p.name !== undefined && typeof p.name !== 'string') throw new ApiError(400, 'BAD_REQUEST', 'project.name must be a string');
    const created: CreatedProject = await projects.createProject({ name: p.name as string | undefined });
    const { endpoint, role, password, database, branch } = created;
    return c.json({
      project: created.project,
      branch: branchView(branch),
      endpoints: [endpointView(endpoint)],
      roles: [{ branch_id: role.branch_id, name: role.name, password, protected: false, created_at: role.created_at, updated_at: role.created_at }],
      databases: [{ id: 1, ...database, updated_at: database.created_at }],
      connection_uris: [{
        connection_uri: uri(endpoint, role.name, password, database.name),
        connection_parameters: { database: database.name, password, role: role.name, host: host(endpoint), pooler_host: `${endpoint.id}-pooler.${opts.baseDomain}` },
      }],
      operations: [operation('create_timeline', created.project.id, branch.id), operation('start_compute', created.project.id, branch.id, endpoint.id)],
    }, 201);
  });
  app.get('/api/v2/projects/:id', (c) => c.json({ project: project(c.req.param('id')) }));
  app.get('/api/v2/projects/:id/branches', (c) => {
    const id = project(c.req.param('id')).id;
    return c.json({ branches: Object.values(state.current.branches).filter((b) => b.project_id === id).map(branchView) });
  });
  app.post('/api/v2/projects/:id/branches', async (c) => {
    const id = project(c.req.param('id')).id;
    const b = await body(c);
    const br = (b.branch ?? {}) as Record<string, unknown>;
    const eps = Array.isArray(b.endpoints) ? (b.endpoints as Record<string, unknown>[]) : [];
    const lsn = br.parent_lsn === undefined ? undefined : Number(br.parent_lsn);
    if (lsn !== undefined && !Number.isSafeInteger(lsn)) throw new ApiError(400, 'BAD_REQUEST', 'branch.parent_lsn must be an LSN (a non-negative integer)');
    const type = eps[0]?.type;
    if (type !== undefined && type !== 'read_write' && type !== 'read_only') throw new ApiError(400, 'BAD_REQUEST', 'endpoints[0].type must be read_write or read_only');
    const created = await projects.createBranch(id, {
      name: typeof br.name === 'string' ? br.name : undefined,
      parentId: typeof br.parent_id === 'string' ? br.parent_id : undefined,
      parentLsn: lsn,
      parentTimestamp: typeof br.parent_timestamp === 'string' ? br.parent_timestamp : undefined,
      endpointType: type as 'read_write' | 'read_only' | undefined,
    });
    return c.json({
      branch: branchView(created.branch),
      endpoints: created.endpoint ? [endpointView(created.endpoint)] : [],
      operations: [operation('create_branch', id, created.branch.id)],
    }, 201);
  });
  app.get('/api/v2/projects/:id/endpoints', (c) => {
    const id = project(c.req.param('id')).id;
    return c.json({ endpoints: Object.values(state.current.endpoints).filter((e) => e.project_id === id).map(endpointView) });
  });
  const endpointOf = (c: Context): EndpointRecord => {
    const id = project(c.req.param('id')!).id;
    const ep = state.current.endpoints[c.req.param('ep')!];
    if (!ep || ep.project_id !== id) throw new ApiError(404, 'ENDPOINT_NOT_FOUND', `endpoint ${c.req.param('ep')} not found`);
    return ep;
  };
  app.post('/api/v2/projects/:id/endpoints/:ep/start', async (c) => {
    const ep = endpointOf(c);
    await endpoints.wake(ep.id);
    return c.json({ endpoint: endpointView(state.current.endpoints[ep.id]), operations: [operation('start_compute', ep.project_id, ep.branch_id, ep.id)] });
  });
  app.post('/api/v2/projects/:id/endpoints/:ep/suspend', async (c) => {
    const ep = endpointOf(c);
    await endpoints.suspend(ep.id);
    return c.json({ endpoint: endpointView(state.current.endpoints[ep.id]), operations: [operation('suspend_compute', ep.project_id, ep.branch_id, ep.id)] });
  });
  app.get('/api/v2/projects/:id/endpoints/:ep', (c) => c.json({ endpoint: endpointView(endpointOf(c)) }));
  return app;
}
