// /projects/{id}/branches: create, list, get, rename (PATCH), delete, restore, set_as_default; plus the branch's
// endpoints listed by branch.
import type { Hono } from 'hono';
import type { BranchAdmin } from '../branch-admin.ts';
import { branchesOf, getBranch, getProject } from '../lookup.ts';
import type { BranchRecord, OperationRecord } from '../model.ts';
import type { ApiDeps } from './deps.ts';
import { bodyOf, queryOf } from './fields.ts';
import { paginate } from './pagination.ts';
import type { NeonConnectionDetails } from './neon-types.ts';
import { CreateBranchBody, ListBranchesQuery, RestoreBranchBody, UpdateBranchBody, pointInTime } from './schemas.ts';

type CreatedBranch = Awaited<ReturnType<BranchAdmin['create']>>;

export function branchRoutes(app: Hono, d: ApiDeps): void {
  readRoutes(app, d);
  createRoute(app, d);
  changeRoutes(app, d);
}

/** List, get, and the endpoints of a branch. */
function readRoutes(app: Hono, d: ApiDeps): void {
  const state = d.plane.state;

  app.get('/projects/:project_id/branches', (c) => {
    const id = getProject(state.current, c.req.param('project_id')).id;
    const q = queryOf(c, ListBranchesQuery);
    let list = branchesOf(state.current, id);
    if (q.search) list = list.filter((b) => b.name.includes(q.search!) || b.id.includes(q.search!));
    // beyond Neon's default (updated_at desc): oldest first unless asked, an order that renames never reshuffle
    const sortBy = q.sort_by ?? 'created_at';
    const sortOrder = q.sort_order ?? (q.sort_by ? 'desc' : 'asc');
    const page = paginate(list, { cursor: q.cursor, limit: q.limit, sortBy, sortOrder }, (b) => (sortBy === 'name' ? b.name : sortBy === 'updated_at' ? b.updated_at : b.created_at));
    return c.json({
      branches: page.items.map((b) => d.views.branch(b)), annotations: {},
      pagination: { ...(page.next ? { next: page.next } : {}), sort_by: sortBy, sort_order: sortOrder },
    });
  });

  app.get('/projects/:project_id/branches/:branch_id', (c) => {
    const b = getBranch(state.current, c.req.param('project_id'), c.req.param('branch_id'));
    return c.json({ branch: d.views.branch(b), annotation: null });
  });

  app.get('/projects/:project_id/branches/:branch_id/endpoints', (c) => {
    const b = getBranch(state.current, c.req.param('project_id'), c.req.param('branch_id'));
    return c.json({ endpoints: Object.values(state.current.endpoints).filter((e) => e.branch_id === b.id).map((e) => d.views.endpoint(e)) });
  });
}

function createRoute(app: Hono, d: ApiDeps): void {
  const state = d.plane.state;
  app.post('/projects/:project_id/branches', async (c) => {
    const id = getProject(state.current, c.req.param('project_id')).id;
    const { branch: br, endpoints } = await bodyOf(c, CreateBranchBody);
    const r = await d.branches.create(id, {
      name: br.name,
      parentId: br.parent_id,
      at: pointInTime(br.parent_lsn, br.parent_timestamp),
      fromCheckpoint: br.parent_checkpoint,
      protected: br.protected,
      expiresAt: br.expires_at,
      endpoints,
    });
    const s = state.current;
    const roles = s.roles.filter((x) => x.branch_id === r.branch.id);
    const databases = s.databases.filter((x) => x.branch_id === r.branch.id);
    return c.json({
      branch: d.views.branch(r.branch),
      endpoints: r.endpoints.map((e) => d.views.endpoint(e)),
      operations: r.operations.map((o) => d.views.operation(o)),
      roles: roles.map((x) => d.views.role(x)),
      databases: databases.map((x) => d.views.database(x)),
      connection_uris: connectionUris(d, id, r),
    }, 201);
  });
}

/** As Neon: one connection URI per database of a new branch, for its owner, through its first endpoint. */
function connectionUris(d: ApiDeps, projectId: string, r: CreatedBranch): NeonConnectionDetails[] {
  const ep = r.endpoints.find((e) => e.type === 'read_write') ?? r.endpoints[0];
  if (!ep) return [];
  const s = d.plane.state.current;
  const roles = s.roles.filter((x) => x.branch_id === r.branch.id);
  return s.databases.filter((x) => x.branch_id === r.branch.id).flatMap((db) => {
    const role = roles.find((x) => x.name === db.owner_name);
    if (!role || role.no_login) return [];
    try {
      return [d.views.connectionDetails(ep, role.name, d.roles.revealPassword(projectId, r.branch.id, role.name), db.name)];
    } catch {
      return []; // a password that cannot be revealed any more: no URI rather than a failed create
    }
  });
}

/** Rename/protect (PATCH), delete, set_as_default, restore: each answers the branch and its operations. */
function changeRoutes(app: Hono, d: ApiDeps): void {
  const state = d.plane.state;
  const reply = (r: { branch: BranchRecord; operations: OperationRecord[] }) => ({
    branch: d.views.branch(r.branch), operations: r.operations.map((o) => d.views.operation(o)),
  });

  app.patch('/projects/:project_id/branches/:branch_id', async (c) => {
    const pid = c.req.param('project_id');
    const bid = getBranch(state.current, pid, c.req.param('branch_id')).id;
    const { branch: br } = await bodyOf(c, UpdateBranchBody);
    return c.json(reply(await d.branches.update(pid, bid, { name: br.name, protected: br.protected, expiresAt: br.expires_at })));
  });

  app.delete('/projects/:project_id/branches/:branch_id', async (c) =>
    c.json(reply(await d.branches.delete(c.req.param('project_id'), c.req.param('branch_id')))));

  app.post('/projects/:project_id/branches/:branch_id/set_as_default', async (c) =>
    c.json(reply(await d.branches.setDefault(c.req.param('project_id'), c.req.param('branch_id')))));

  app.post('/projects/:project_id/branches/:branch_id/restore', async (c) => {
    const pid = c.req.param('project_id');
    const bid = getBranch(state.current, pid, c.req.param('branch_id')).id;
    const b = await bodyOf(c, RestoreBranchBody);
    return c.json(reply(await d.branches.restore(pid, bid, {
      sourceBranchId: b.source_branch_id,
      at: pointInTime(b.source_lsn, b.source_timestamp),
      preserveUnderName: b.preserve_under_name,
    })));
  });
}
