// /projects/{id}/endpoints: create, list, get, update, start, suspend, restart, delete. An endpoint whose compute
// a wake is starting (perhaps waiting for a compute host's memory) shows Neon's `pending_state: "active"` beside
// its `current_state: "idle"`.
import type { Hono } from 'hono';
import { getEndpoint, getProject } from '../lookup.ts';
import type { EndpointRecord } from '../model.ts';
import type { NeonEndpoint } from './neon-types.ts';
import type { ApiDeps } from './deps.ts';
import { bodyOf } from './fields.ts';
import { CreateEndpointBody, UpdateEndpointBody } from './schemas.ts';

export function endpointRoutes(app: Hono, d: ApiDeps): void {
  const state = d.plane.state;
  const view = (e: EndpointRecord): NeonEndpoint => {
    const pending = e.current_state === 'idle' ? d.plane.endpoints.pendingState(e.id) : undefined;
    return pending ? { ...d.views.endpoint(e), pending_state: pending } : d.views.endpoint(e);
  };
  const reply = (r: { endpoint: EndpointRecord; operations: Parameters<typeof d.views.operation>[0][] }) => ({
    endpoint: view(r.endpoint), operations: r.operations.map((o) => d.views.operation(o)),
  });

  app.get('/projects/:project_id/endpoints', (c) => {
    const id = getProject(state.current, c.req.param('project_id')).id;
    return c.json({ endpoints: Object.values(state.current.endpoints).filter((e) => e.project_id === id).map(view) });
  });

  app.post('/projects/:project_id/endpoints', async (c) => {
    const id = getProject(state.current, c.req.param('project_id')).id;
    const { endpoint: e } = await bodyOf(c, CreateEndpointBody);
    const r = await d.endpoints.create(id, {
      branchId: e.branch_id, type: e.type, name: e.name, suspend_timeout_seconds: e.suspend_timeout_seconds,
      autoscaling_limit_min_cu: e.autoscaling_limit_min_cu, autoscaling_limit_max_cu: e.autoscaling_limit_max_cu, disabled: e.disabled,
    });
    return c.json(reply(r), 201);
  });

  app.get('/projects/:project_id/endpoints/:endpoint_id', (c) =>
    c.json({ endpoint: view(getEndpoint(state.current, c.req.param('project_id'), c.req.param('endpoint_id'))) }));

  app.patch('/projects/:project_id/endpoints/:endpoint_id', async (c) => {
    const pid = c.req.param('project_id');
    const eid = getEndpoint(state.current, pid, c.req.param('endpoint_id')).id;
    const { endpoint: e } = await bodyOf(c, UpdateEndpointBody);
    const r = await d.endpoints.update(pid, eid, {
      branchId: e.branch_id, name: e.name, suspend_timeout_seconds: e.suspend_timeout_seconds,
      autoscaling_limit_min_cu: e.autoscaling_limit_min_cu, autoscaling_limit_max_cu: e.autoscaling_limit_max_cu, disabled: e.disabled,
    });
    return c.json(reply(r));
  });

  app.delete('/projects/:project_id/endpoints/:endpoint_id', async (c) => c.json(reply(await d.endpoints.delete(c.req.param('project_id'), c.req.param('endpoint_id')))));
  app.post('/projects/:project_id/endpoints/:endpoint_id/start', async (c) => c.json(reply(await d.endpoints.start(c.req.param('project_id'), c.req.param('endpoint_id')))));
  app.post('/projects/:project_id/endpoints/:endpoint_id/suspend', async (c) => c.json(reply(await d.endpoints.suspend(c.req.param('project_id'), c.req.param('endpoint_id')))));
  app.post('/projects/:project_id/endpoints/:endpoint_id/restart', async (c) => c.json(reply(await d.endpoints.restart(c.req.param('project_id'), c.req.param('endpoint_id')))));
}
