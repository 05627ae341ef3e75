// Beyond Neon: /projects/{id}/branches/{branch_id}/checkpoints (create, list, get, delete) and
// /projects/{id}/branches/{branch_id}/rewind {"checkpoint": name}.
import type { Hono } from 'hono';
import { getBranch } from '../lookup.ts';
import type { ApiDeps } from './deps.ts';
import { bodyOf } from './fields.ts';
import { CreateCheckpointBody, RewindBody } from './schemas.ts';

export function checkpointRoutes(app: Hono, d: ApiDeps): void {
  const base = '/projects/:project_id/branches/:branch_id/checkpoints';

  app.get(base, (c) => c.json({ checkpoints: d.checkpoints.list(c.req.param('project_id'), c.req.param('branch_id')).map((x) => d.views.checkpoint(x)) }));

  app.post(base, async (c) => {
    const pid = c.req.param('project_id');
    const bid = c.req.param('branch_id');
    getBranch(d.plane.state.current, pid, bid);
    const body = await bodyOf(c, CreateCheckpointBody);
    const cp = await d.checkpoints.create(pid, bid, body.name, body.lsn);
    return c.json({ checkpoint: d.views.checkpoint(cp) }, 201);
  });

  app.get(`${base}/:name`, (c) => c.json({ checkpoint: d.views.checkpoint(d.checkpoints.get(c.req.param('project_id'), c.req.param('branch_id'), c.req.param('name'))) }));

  app.delete(`${base}/:name`, async (c) => {
    const cp = await d.checkpoints.delete(c.req.param('project_id'), c.req.param('branch_id'), c.req.param('name'));
    return c.json({ checkpoint: d.views.checkpoint(cp) });
  });

  app.post('/projects/:project_id/branches/:branch_id/rewind', async (c) => {
    const pid = c.req.param('project_id');
    const bid = c.req.param('branch_id');
    getBranch(d.plane.state.current, pid, bid);
    const body = await bodyOf(c, RewindBody);
    const r = await d.checkpoints.rewind(pid, bid, body.checkpoint);
    const branch = getBranch(d.plane.state.current, pid, bid);
    return c.json({ branch: d.views.branch(branch), checkpoint: d.views.checkpoint(r.checkpoint), operations: r.operations.map((o) => d.views.operation(o)) });
  });
}
