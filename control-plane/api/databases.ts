// /projects/{id}/branches/{branch_id}/databases: create, list, get, update, delete.
import type { Hono } from 'hono';
import type { ApiDeps } from './deps.ts';
import { bodyOf } from './fields.ts';
import { CreateDatabaseBody, UpdateDatabaseBody } from './schemas.ts';

export function databaseRoutes(app: Hono, d: ApiDeps): void {
  const base = '/projects/:project_id/branches/:branch_id/databases';
  const ops = (list: Parameters<typeof d.views.operation>[0][]) => list.map((o) => d.views.operation(o));

  app.get(base, (c) => c.json({ databases: d.roles.listDatabases(c.req.param('project_id'), c.req.param('branch_id')).map((x) => d.views.database(x)) }));

  app.post(base, async (c) => {
    const pid = c.req.param('project_id');
    const bid = c.req.param('branch_id');
    d.roles.listDatabases(pid, bid);
    const { database: db } = await bodyOf(c, CreateDatabaseBody);
    const res = await d.roles.createDatabase(pid, bid, db.name, db.owner_name);
    return c.json({ database: d.views.database(res.database), operations: ops(res.operations) }, 201);
  });

  app.get(`${base}/:database_name`, (c) =>
    c.json({ database: d.views.database(d.roles.getDatabase(c.req.param('project_id'), c.req.param('branch_id'), c.req.param('database_name'))) }));

  app.patch(`${base}/:database_name`, async (c) => {
    const pid = c.req.param('project_id');
    const bid = c.req.param('branch_id');
    const name = d.roles.getDatabase(pid, bid, c.req.param('database_name')).name;
    const { database: db } = await bodyOf(c, UpdateDatabaseBody);
    const res = await d.roles.updateDatabase(pid, bid, name, { name: db.name, owner: db.owner_name });
    return c.json({ database: d.views.database(res.database), operations: ops(res.operations) });
  });

  app.delete(`${base}/:database_name`, async (c) => {
    const res = await d.roles.deleteDatabase(c.req.param('project_id'), c.req.param('branch_id'), c.req.param('database_name'));
    return c.json({ database: d.views.database(res.database), operations: ops(res.operations) });
  });
}
