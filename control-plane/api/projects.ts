// /projects: create, list, get, update, delete; connection_uri; the account routes neonctl asks on its way.
import type { Hono } from 'hono';
import { badRequest, notFound } from '../errors.ts';
import { getBranch, getEndpoint, getProject, getRole, getDatabase } from '../lookup.ts';
import type { ApiDeps } from './deps.ts';
import { bodyOf, queryOf } from './fields.ts';
import { cursorAfter, paginate } from './pagination.ts';
import { ConnectionUriQuery, CreateProjectBody, ListProjectsQuery, UpdateProjectBody } from './schemas.ts';

export function projectRoutes(app: Hono, d: ApiDeps): void {
  const state = d.plane.state;

  app.get('/projects', (c) => {
    const { limit = 10, cursor, search } = queryOf(c, ListProjectsQuery);
    let all = Object.values(state.current.projects);
    if (search) all = all.filter((p) => p.id.includes(search) || p.name.includes(search));
    // Neon's projects list: `pagination.cursor` to pass back as `cursor` (an empty page keeps the one given)
    const page = paginate(all, { cursor: cursor || undefined, limit, sortBy: 'created_at', sortOrder: 'asc' }, (p) => p.created_at);
    const last = page.items.at(-1);
    const next = last ? cursorAfter(last.created_at, last.id) : (cursor ?? '');
    return c.json({ projects: page.items.map((p) => d.views.projectListItem(p)), pagination: { cursor: next } });
  });
  // Neon's account-level routes that neonctl calls: nothing is shared, and there are no organisations here.
  app.get('/projects/shared', (c) => c.json({ projects: [], pagination: { cursor: '' } }));
  app.get('/users/me/organizations', (c) => c.json({ organizations: [] }));

  app.post('/projects', async (c) => {
    const { project: p } = await bodyOf(c, CreateProjectBody);
    const created = await d.projects.create({
      name: p.name,
      regionId: p.region_id,
      pgVersion: p.pg_version,
      branchName: p.branch.name,
      roleName: p.branch.role_name,
      databaseName: p.branch.database_name,
      defaultEndpointSettings: p.default_endpoint_settings,
      historyRetentionSeconds: p.history_retention_seconds,
    });
    const { project, branch, endpoint, role, password, database } = created;
    return c.json({
      project: d.views.project(project),
      branch: d.views.branch(branch),
      endpoints: [d.views.endpoint(endpoint)],
      roles: [d.views.role(role, password)],
      databases: [d.views.database(database)],
      connection_uris: [d.views.connectionDetails(endpoint, role.name, password, database.name)],
      operations: created.operations.map((o) => d.views.operation(o)),
    }, 201);
  });

  app.get('/projects/:project_id', (c) => c.json({ project: d.views.project(getProject(state.current, c.req.param('project_id'))) }));

  app.patch('/projects/:project_id', async (c) => {
    const id = getProject(state.current, c.req.param('project_id')).id;
    const { project: p } = await bodyOf(c, UpdateProjectBody);
    const r = await d.projects.update(id, {
      name: p.name,
      defaultEndpointSettings: p.default_endpoint_settings,
      historyRetentionSeconds: p.history_retention_seconds,
      pgVersion: p.pg_version,
    });
    return c.json({ project: d.views.project(r.project), operations: r.operations.map((o) => d.views.operation(o)) });
  });

  app.delete('/projects/:project_id', async (c) => {
    const r = await d.projects.delete(c.req.param('project_id'));
    return c.json({ project: d.views.project(r.project) });
  });

  connectionUriRoute(app, d);
}

/** GET /projects/{id}/connection_uri: a role's URI for a database through an endpoint (the branch's own by default). */
function connectionUriRoute(app: Hono, d: ApiDeps): void {
  app.get('/projects/:project_id/connection_uri', (c) => {
    const s = d.plane.state.current;
    const project = getProject(s, c.req.param('project_id'));
    const q = queryOf(c, ConnectionUriQuery);
    const { database_name: dbName, role_name: roleName, pooled = false } = q;
    const branch = getBranch(s, project.id, q.branch_id ?? project.default_branch_id);
    const ep = q.endpoint_id
      ? getEndpoint(s, project.id, q.endpoint_id)
      : Object.values(s.endpoints).filter((e) => e.branch_id === branch.id).sort((a) => (a.type === 'read_write' ? -1 : 1))[0];
    if (!ep) throw notFound('ENDPOINT_NOT_FOUND', `branch ${branch.id} has no endpoint; create one (POST /projects/${project.id}/endpoints)`);
    if (ep.branch_id !== branch.id) throw badRequest(`endpoint ${ep.id} does not belong to branch ${branch.id}`);
    getDatabase(s, branch.id, dbName);
    getRole(s, branch.id, roleName);
    const password = d.roles.revealPassword(project.id, branch.id, roleName);
    return c.json({ uri: d.views.uri(ep, roleName, password, dbName, pooled) });
  });
}
