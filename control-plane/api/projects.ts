// /projects: create, list, get, update, delete; connection_uri; the account routes neonctl asks on its way.
import type { Hono } from 'hono';
import { badRequest, notFound } from '../errors.ts';
import { getBranch, getEndpoint, getProject, getRole, getDatabase } from '../lookup.ts';
import type { DefaultEndpointSettings } from '../model.ts';
import type { ApiDeps } from './deps.ts';
import {
  PROJECT_NAME, BRANCH_NAME, object, optCu, optInt, optString, optSuspendTimeout, queryBool, queryInt, readBody, reqString,
} from './validate.ts';
import type { Json } from './validate.ts';

function endpointSettings(o: Json, where: string): DefaultEndpointSettings | undefined {
  if (o.default_endpoint_settings === undefined || o.default_endpoint_settings === null) return undefined;
  const d = object(o, 'default_endpoint_settings', `${where}.default_endpoint_settings`);
  const out: DefaultEndpointSettings = {};
  const t = optSuspendTimeout(d, 'suspend_timeout_seconds', `${where}.default_endpoint_settings.suspend_timeout_seconds`);
  const min = optCu(d, 'autoscaling_limit_min_cu', `${where}.default_endpoint_settings.autoscaling_limit_min_cu`);
  const max = optCu(d, 'autoscaling_limit_max_cu', `${where}.default_endpoint_settings.autoscaling_limit_max_cu`);
  if (t !== undefined) out.suspend_timeout_seconds = t;
  if (min !== undefined) out.autoscaling_limit_min_cu = min;
  if (max !== undefined) out.autoscaling_limit_max_cu = max;
  if (min !== undefined && max !== undefined && min > max) throw badRequest(`${where}.default_endpoint_settings: autoscaling_limit_min_cu is above autoscaling_limit_max_cu`);
  return out;
}

export function projectRoutes(app: Hono, d: ApiDeps): void {
  const state = d.plane.state;

  app.get('/projects', (c) => {
    const limit = queryInt(c, 'limit', 1, 400) ?? 10;
    const cursor = c.req.query('cursor');
    const search = c.req.query('search');
    let all = Object.values(state.current.projects).sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
    if (search) all = all.filter((p) => p.id.includes(search) || p.name.includes(search));
    const start = cursor ? all.findIndex((p) => p.id === cursor) + 1 : 0;
    const page = all.slice(start, start + limit);
    return c.json({ projects: page.map((p) => d.views.projectListItem(p)), pagination: { cursor: page.at(-1)?.id ?? cursor ?? '' } });
  });
  // Neon's account-level routes that neonctl calls: nothing is shared, and there are no organisations here.
  app.get('/projects/shared', (c) => c.json({ projects: [], pagination: { cursor: '' } }));
  app.get('/users/me/organizations', (c) => c.json({ organizations: [] }));

  app.post('/projects', async (c) => {
    const body = await readBody(c);
    const p = object(body, 'project', 'project');
    const br = object(p, 'branch', 'project.branch');
    const created = await d.projects.create({
      name: optString(p, 'name', 'project.name', PROJECT_NAME),
      regionId: optString(p, 'region_id', 'project.region_id'),
      pgVersion: optInt(p, 'pg_version', 'project.pg_version', 14, 19),
      branchName: optString(br, 'name', 'project.branch.name', BRANCH_NAME),
      roleName: optString(br, 'role_name', 'project.branch.role_name'),
      databaseName: optString(br, 'database_name', 'project.branch.database_name'),
      defaultEndpointSettings: endpointSettings(p, 'project'),
      historyRetentionSeconds: optInt(p, 'history_retention_seconds', 'project.history_retention_seconds', 0, 2592000),
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
    const body = await readBody(c);
    const p = object(body, 'project', 'project', true);
    const r = await d.projects.update(id, {
      name: optString(p, 'name', 'project.name', PROJECT_NAME),
      defaultEndpointSettings: endpointSettings(p, 'project'),
      historyRetentionSeconds: optInt(p, 'history_retention_seconds', 'project.history_retention_seconds', 0, 2592000),
    });
    return c.json({ project: d.views.project(r.project), operations: r.operations.map((o) => d.views.operation(o)) });
  });

  app.delete('/projects/:project_id', async (c) => {
    const r = await d.projects.delete(c.req.param('project_id'));
    return c.json({ project: d.views.project(r.project) });
  });

  app.get('/projects/:project_id/connection_uri', (c) => {
    const s = state.current;
    const project = getProject(s, c.req.param('project_id'));
    const q = { branch_id: c.req.query('branch_id'), endpoint_id: c.req.query('endpoint_id'), database_name: c.req.query('database_name'), role_name: c.req.query('role_name') };
    const pooled = queryBool(c, 'pooled') ?? false;
    const dbName = reqString(q, 'database_name', 'query parameter database_name');
    const roleName = reqString(q, 'role_name', 'query parameter role_name');
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
