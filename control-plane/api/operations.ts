// /projects/{id}/operations: what clients poll after a change (newest first, cursor pagination).
import type { Hono } from 'hono';
import { notFound } from '../errors.ts';
import { getProject } from '../lookup.ts';
import type { ApiDeps } from './deps.ts';
import { queryOf } from './fields.ts';
import { ListOperationsQuery } from './schemas.ts';

export function operationRoutes(app: Hono, d: ApiDeps): void {
  const state = d.plane.state;

  app.get('/projects/:project_id/operations', (c) => {
    const id = getProject(state.current, c.req.param('project_id')).id;
    const { limit = 10, cursor } = queryOf(c, ListOperationsQuery);
    const all = (state.current.operations ?? []).filter((o) => o.project_id === id).reverse();
    const start = cursor ? all.findIndex((o) => o.id === cursor) + 1 : 0;
    const page = all.slice(start, start + limit);
    return c.json({ operations: page.map((o) => d.views.operation(o)), pagination: { cursor: page.at(-1)?.id ?? '' } });
  });

  app.get('/projects/:project_id/operations/:operation_id', (c) => {
    const id = getProject(state.current, c.req.param('project_id')).id;
    const op = (state.current.operations ?? []).find((o) => o.id === c.req.param('operation_id') && o.project_id === id);
    if (!op) throw notFound('OPERATION_NOT_FOUND', `operation ${c.req.param('operation_id')} not found in project ${id}`);
    return c.json({ operation: d.views.operation(op) });
  });
}
