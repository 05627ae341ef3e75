// /projects/{id}/branches/{branch_id}/roles: create (answers the password), list, get, reset_password,
// reveal_password, delete.
import type { Hono } from 'hono';
import type { ApiDeps } from './deps.ts';
import { bodyOf } from './fields.ts';
import { CreateRoleBody } from './schemas.ts';

export function roleRoutes(app: Hono, d: ApiDeps): void {
  const base = '/projects/:project_id/branches/:branch_id/roles';
  const ops = (list: Parameters<typeof d.views.operation>[0][]) => list.map((o) => d.views.operation(o));

  app.get(base, (c) => c.json({ roles: d.roles.listRoles(c.req.param('project_id'), c.req.param('branch_id')).map((r) => d.views.role(r)) }));

  app.post(base, async (c) => {
    const pid = c.req.param('project_id');
    const bid = c.req.param('branch_id');
    d.roles.listRoles(pid, bid); // unknown project or branch: 404 before the body is judged
    const { role: r } = await bodyOf(c, CreateRoleBody);
    const res = await d.roles.createRole(pid, bid, r.name, r.no_login ?? false);
    return c.json({ role: d.views.role(res.role, res.password ?? undefined), operations: ops(res.operations) }, 201);
  });

  app.get(`${base}/:role_name`, (c) => c.json({ role: d.views.role(d.roles.getRole(c.req.param('project_id'), c.req.param('branch_id'), c.req.param('role_name'))) }));

  app.delete(`${base}/:role_name`, async (c) => {
    const res = await d.roles.deleteRole(c.req.param('project_id'), c.req.param('branch_id'), c.req.param('role_name'));
    return c.json({ role: d.views.role(res.role), operations: ops(res.operations) });
  });

  app.post(`${base}/:role_name/reset_password`, async (c) => {
    const res = await d.roles.resetPassword(c.req.param('project_id'), c.req.param('branch_id'), c.req.param('role_name'));
    return c.json({ role: d.views.role(res.role, res.password), operations: ops(res.operations) });
  });

  app.get(`${base}/:role_name/reveal_password`, (c) =>
    c.json({ password: d.roles.revealPassword(c.req.param('project_id'), c.req.param('branch_id'), c.req.param('role_name')) }));
}
