// /projects/{id}/endpoints: create, list, get, update, start, suspend, restart, delete.
import type { Hono } from 'hono';
import { badRequest } from '../errors.ts';
import { getEndpoint, getProject } from '../lookup.ts';
import type { ApiDeps } from './deps.ts';
import { object, optBool, optCu, optEnum, optString, optSuspendTimeout, readBody, reqString } from './validate.ts';

const NAME = { re: /^[^\0]{1,64}$/, what: '1 to 64 characters' };

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
    const e = object(await readBody(c), 'endpoint', 'endpoint', true);
    const type = optEnum(e, 'type', 'endpoint.type', ['read_write', 'read_only'] as const);
    if (!type) throw badRequest('endpoint.type is required (read_write or read_only)');
    const min = optCu(e, 'autoscaling_limit_min_cu', 'endpoint.autoscaling_limit_min_cu');
    const max = optCu(e, 'autoscaling_limit_max_cu', 'endpoint.autoscaling_limit_max_cu');
    if (min !== undefined && max !== undefined && min > max) throw badRequest('endpoint.autoscaling_limit_min_cu is above endpoint.autoscaling_limit_max_cu');
    optString(e, 'region_id', 'endpoint.region_id', { re: /^local$/, what: '"local", the only region' });
    const r = await d.endpoints.create(id, {
      branchId: reqString(e, 'branch_id', 'endpoint.branch_id'), type, name: optString(e, 'name', 'endpoint.name', NAME),
      suspend_timeout_seconds: optSuspendTimeout(e, 'suspend_timeout_seconds', 'endpoint.suspend_timeout_seconds'),
      autoscaling_limit_min_cu: min, autoscaling_limit_max_cu: max, disabled: optBool(e, 'disabled', 'endpoint.disabled'),
    });
    return c.json(reply(r), 201);
  });

  app.get('/projects/:project_id/endpoints/:endpoint_id', (c) =>
    c.json({ endpoint: d.views.endpoint(getEndpoint(state.current, c.req.param('project_id'), c.req.param('endpoint_id'))) }));

  app.patch('/projects/:project_id/endpoints/:endpoint_id', async (c) => {
    const pid = c.req.param('project_id');
    const eid = getEndpoint(state.current, pid, c.req.param('endpoint_id')).id;
    const e = object(await readBody(c), 'endpoint', 'endpoint', true);
    const r = await d.endpoints.update(pid, eid, {
      branchId: optString(e, 'branch_id', 'endpoint.branch_id'), name: optString(e, 'name', 'endpoint.name', NAME),
      suspend_timeout_seconds: optSuspendTimeout(e, 'suspend_timeout_seconds', 'endpoint.suspend_timeout_seconds'),
      autoscaling_limit_min_cu: optCu(e, 'autoscaling_limit_min_cu', 'endpoint.autoscaling_limit_min_cu'),
      autoscaling_limit_max_cu: optCu(e, 'autoscaling_limit_max_cu', 'endpoint.autoscaling_limit_max_cu'),
      disabled: optBool(e, 'disabled', 'endpoint.disabled'),
    });
    return c.json(reply(r));
  });

  app.delete('/projects/:project_id/endpoints/:endpoint_id', async (c) => c.json(reply(await d.endpoints.delete(c.req.param('project_id'), c.req.param('endpoint_id')))));
  app.post('/projects/:project_id/endpoints/:endpoint_id/start', async (c) => c.json(reply(await d.endpoints.start(c.req.param('project_id'), c.req.param('endpoint_id')))));
  app.post('/projects/:project_id/endpoints/:endpoint_id/suspend', async (c) => c.json(reply(await d.endpoints.suspend(c.req.param('project_id'), c.req.param('endpoint_id')))));
  app.post('/projects/:project_id/endpoints/:endpoint_id/restart', async (c) => c.json(reply(await d.endpoints.restart(c.req.param('project_id'), c.req.param('endpoint_id')))));
}
