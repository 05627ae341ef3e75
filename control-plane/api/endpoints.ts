// /projects/{id}/endpoints: create, list, get, update, start, suspend, restart, delete.
import type { Hono } from 'hono';
import { getEndpoint, getProject } from '../lookup.ts';
import type { ApiDeps } from './deps.ts';
import { bodyOf } from './fields.ts';
import { CreateEndpointBody, UpdateEndpointBody } from './schemas.ts';

export function endpointRoutes(app: Hono, d: ApiDeps): void {
  const state = d.plane.state;
  const reply = (r: { endpoint: Parameters<typeof d.views.endpoint>[0]; operations: Parameters<typeof d.views.operation>[0][] }) => ({
    endpoint: d.views.endpoint(r.endpoint), operations: r.operations.map((o) => d.views.operation(o)),
  });

  app.get('/projects/:project_id/endpoints', (c) => {
    const id = getProject(state.current, c.req.param('project_id')).id;
    return c.json({ endpoints: Object.values(state.current.endpoints).filter((e) => e.project_id === id).map((e) => d.views.endpoint(e)) });
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
    c.json({ endpoint: d.views.endpoint(getEndpoint(state.current, c.req.param('project_id'), c.req.param('endpoint_id'))) }));

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
