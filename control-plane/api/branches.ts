// /projects/{id}/branches: create, list, get, rename (PATCH), delete, restore, set_as_default; plus the branch's
// endpoints, roles and databases listed by branch.
import type { Hono } from 'hono';
import type { NewEndpointSpec, PointInTime } from '../branch-admin.ts';
import { badRequest } from '../errors.ts';
import { branchesOf, getBranch, getProject } from '../lookup.ts';
import type { ApiDeps } from './deps.ts';
import {
  BRANCH_NAME, object, optBool, optCu, optEnum, optLsn, optString, optSuspendTimeout, optTimestamp, readBody, reqString, queryInt,
} from './validate.ts';
import type { Json } from './validate.ts';

const TYPES = ['read_write', 'read_only'] as const;

function pointInTime(o: Json, lsnKey: string, timeKey: string, where: string): PointInTime {
  const name = (k: string) => (where ? `${where}.${k}` : k);
  const lsn = optLsn(o, lsnKey, name(lsnKey));
  const timestamp = optTimestamp(o, timeKey, name(timeKey));
  if (lsn !== undefined && timestamp !== undefined) throw badRequest(`give ${name(lsnKey)} or ${name(timeKey)}, not both`);
  if (timestamp !== undefined && Date.parse(timestamp) > Date.now()) throw badRequest(`${name(timeKey)} is in the future`);
  return lsn !== undefined ? { lsn } : timestamp !== undefined ? { timestamp } : {};
}

function endpointSpecs(body: Json): NewEndpointSpec[] {
  const v = body.endpoints;
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badRequest('endpoints must be an array');
  if (v.length > 10) throw badRequest('endpoints: at most 10');
  return v.map((raw: unknown, i) => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw badRequest(`endpoints[${i}] must be an object`);
    const e = raw as Json;
    const type = optEnum(e, 'type', `endpoints[${i}].type`, TYPES);
    if (!type) throw badRequest(`endpoints[${i}].type is required (read_write or read_only)`);
    return {
      type,
      suspend_timeout_seconds: optSuspendTimeout(e, 'suspend_timeout_seconds', `endpoints[${i}].suspend_timeout_seconds`),
      autoscaling_limit_min_cu: optCu(e, 'autoscaling_limit_min_cu', `endpoints[${i}].autoscaling_limit_min_cu`),
      autoscaling_limit_max_cu: optCu(e, 'autoscaling_limit_max_cu', `endpoints[${i}].autoscaling_limit_max_cu`),
    };
  });
}

export function branchRoutes(app: Hono, d: ApiDeps): void {
  const state = d.plane.state;
  const ops = (list: Parameters<typeof d.views.operation>[0][]) => list.map((o) => d.views.operation(o));

  app.get('/projects/:project_id/branches', (c) => {
    const id = getProject(state.current, c.req.param('project_id')).id;
    const search = c.req.query('search');
    const limit = queryInt(c, 'limit', 1, 10000);
    let list = branchesOf(state.current, id).sort((a, b) => a.created_at.localeCompare(b.created_at));
    if (search) list = list.filter((b) => b.name.includes(search) || b.id.includes(search));
    if (limit !== undefined) list = list.slice(0, limit);
    return c.json({ branches: list.map((b) => d.views.branch(b)), annotations: {} });
  });

  app.post('/projects/:project_id/branches', async (c) => {
    const id = getProject(state.current, c.req.param('project_id')).id;
    const body = await readBody(c);
    const br = object(body, 'branch', 'branch');
    const endpoints = endpointSpecs(body);
    const expiresAt = optTimestamp(br, 'expires_at', 'branch.expires_at');
    if (expiresAt !== undefined && Date.parse(expiresAt) <= Date.now()) throw badRequest('branch.expires_at must be in the future');
    const initSource = optEnum(br, 'init_source', 'branch.init_source', ['parent-data'] as const);
    void initSource; // schema-only branches are not supported: only parent-data passes validation
    const r = await d.branches.create(id, {
      name: optString(br, 'name', 'branch.name', BRANCH_NAME),
      parentId: optString(br, 'parent_id', 'branch.parent_id'),
      at: pointInTime(br, 'parent_lsn', 'parent_timestamp', 'branch'),
      protected: optBool(br, 'protected', 'branch.protected'),
      expiresAt,
      endpoints,
    });
    const s = state.current;
    const roles = s.roles.filter((x) => x.branch_id === r.branch.id);
    const databases = s.databases.filter((x) => x.branch_id === r.branch.id);
    // As Neon: one connection URI per database of the branch, for its owner, through the first endpoint.
    const ep = r.endpoints.find((e) => e.type === 'read_write') ?? r.endpoints[0];
    const connection_uris = ep
      ? databases.flatMap((db) => {
          const role = roles.find((x) => x.name === db.owner_name);
          if (!role || role.no_login) return [];
          try {
            return [d.views.connectionDetails(ep, role.name, d.roles.revealPassword(id, r.branch.id, role.name), db.name)];
          } catch {
            return []; // a password that cannot be revealed any more: no URI rather than a failed create
          }
        })
      : [];
    return c.json({
      branch: d.views.branch(r.branch),
      endpoints: r.endpoints.map((e) => d.views.endpoint(e)),
      operations: ops(r.operations),
      roles: roles.map((x) => d.views.role(x)),
      databases: databases.map((x) => d.views.database(x)),
      connection_uris,
    }, 201);
  });

  app.get('/projects/:project_id/branches/:branch_id', (c) => {
    const b = getBranch(state.current, c.req.param('project_id'), c.req.param('branch_id'));
    return c.json({ branch: d.views.branch(b), annotation: null });
  });

  app.patch('/projects/:project_id/branches/:branch_id', async (c) => {
    const pid = c.req.param('project_id');
    const bid = getBranch(state.current, pid, c.req.param('branch_id')).id;
    const body = await readBody(c);
    const br = object(body, 'branch', 'branch', true);
    let expiresAt: string | null | undefined;
    if (br.expires_at === null) expiresAt = null;
    else expiresAt = optTimestamp(br, 'expires_at', 'branch.expires_at');
    const r = await d.branches.update(pid, bid, { name: optString(br, 'name', 'branch.name', BRANCH_NAME), protected: optBool(br, 'protected', 'branch.protected'), expiresAt });
    return c.json({ branch: d.views.branch(r.branch), operations: ops(r.operations) });
  });

  app.delete('/projects/:project_id/branches/:branch_id', async (c) => {
    const r = await d.branches.delete(c.req.param('project_id'), c.req.param('branch_id'));
    return c.json({ branch: d.views.branch(r.branch), operations: ops(r.operations) });
  });

  app.post('/projects/:project_id/branches/:branch_id/set_as_default', async (c) => {
    const r = await d.branches.setDefault(c.req.param('project_id'), c.req.param('branch_id'));
    return c.json({ branch: d.views.branch(r.branch), operations: ops(r.operations) });
  });

  app.post('/projects/:project_id/branches/:branch_id/restore', async (c) => {
    const pid = c.req.param('project_id');
    const bid = getBranch(state.current, pid, c.req.param('branch_id')).id;
    const body = await readBody(c);
    const r = await d.branches.restore(pid, bid, {
      sourceBranchId: reqString(body, 'source_branch_id', 'source_branch_id'),
      at: pointInTime(body, 'source_lsn', 'source_timestamp', ''),
      preserveUnderName: optString(body, 'preserve_under_name', 'preserve_under_name', BRANCH_NAME),
    });
    return c.json({ branch: d.views.branch(r.branch), operations: ops(r.operations) });
  });

  app.get('/projects/:project_id/branches/:branch_id/endpoints', (c) => {
    const b = getBranch(state.current, c.req.param('project_id'), c.req.param('branch_id'));
    return c.json({ endpoints: Object.values(state.current.endpoints).filter((e) => e.branch_id === b.id).map((e) => d.views.endpoint(e)) });
  });
}
