// The public API, shaped after Neon's API v2: `/api/v2/...` with a Bearer API key, Neon's JSON shapes and errors.
// The routes live in ../api/, one module per resource; this wires them to the services.
import { Hono } from 'hono';
import { ServiceError, errorBody, errorHandler, routeNotFound } from '../../lib/errors.ts';
import { bearerAuth, limitBody, requireAuth } from '../../lib/http-guard.ts';
import { checkpointRoutes } from '../api/checkpoints.ts';
import { lakeTableRoutes } from '../api/lake-tables.ts';
import { exportRoutes } from '../api/exports.ts';
import { syncedTableRoutes } from '../api/synced-tables.ts';
import { Exports } from '../lake/exports.ts';
import { SyncedTables } from '../lake/synced-tables.ts';
import type { LakeSyncer } from '../lake/lake-syncer.ts';
import { LakeTables } from '../lake/lake-tables.ts';
import { databaseRoutes } from '../api/databases.ts';
import type { ApiDeps } from '../api/deps.ts';
import { endpointRoutes } from '../api/endpoints.ts';
import { operationRoutes } from '../api/operations.ts';
import { projectRoutes } from '../api/projects.ts';
import { roleRoutes } from '../api/roles.ts';
import { branchRoutes } from '../api/branches.ts';
import { Views } from '../api/views.ts';
import { BranchAdmin } from '../branch-admin.ts';
import { CheckpointAdmin } from '../checkpoints.ts';
import { ComputeSql } from '../compute-sql.ts';
import type { EngineName } from '../engines.ts';
import { EndpointAdmin } from '../endpoint-admin.ts';
import { asApiError } from '../errors.ts';
import type { EndpointManager } from '../endpoints.ts';
import { KeyedLock } from '../keyed-lock.ts';
import { PasswordBox } from '../password-box.ts';
import type { Plane } from '../plane.ts';
import { ProjectAdmin } from '../project-admin.ts';
import type { Projects } from '../projects.ts';
import { RoleAdmin } from '../role-admin.ts';
import type { StateStore } from '../state-store.ts';
import type { StorageNodes } from '../storage/storage-nodes.ts';
import { type ErrorReport, reportErrors } from './error-report.ts';

export interface PublicApiOptions {
  apiKey: string;
  /** Base domain of endpoint hosts in connection strings, e.g. `lakebase.localhost`. */
  baseDomain: string;
  /** TCP port of the proxy, for connection strings. */
  proxyPort: number;
  /** If set, connection URIs name this host (e.g. 127.0.0.1) and the endpoint in `options`: for names that don't resolve. */
  connectionHost?: string;
  /** Key material for sealing role passwords (reveal_password). Default: the API key. */
  secret?: string;
  /** The compute hosts' internal password; with `drivesComputes`, roles and databases are made in Postgres too. */
  computePassword?: string;
  /** Whether the control plane drives compute hosts (static or registering); without, records only (no compute starts). */
  drivesComputes?: boolean;
  /** The storage nodes (a project's timelines are on one of them). */
  storage: StorageNodes;
  /** Engine of a project created without pg_version. */
  defaultEngine?: EngineName;
  /** Keeps lake tables fresh; their Iceberg tables live in its bucket. */
  lake: LakeSyncer;
  /** Where answered errors are logged and counted. */
  errors?: ErrorReport;
}

/** Largest request body (control-plane/api/fields.ts refuses more too, but only once it is read). */
const MAX_BODY = 1024 * 1024;

const UNAUTHORIZED = new ServiceError(401, 'UNAUTHORIZED',
  'authentication required: pass the API key as "Authorization: Bearer <key>" (lakebase start prints it, and writes it to .lakebase/local.json)');
const TOO_LARGE = new ServiceError(413, 'REQUEST_TOO_LARGE', `request body is too large (${MAX_BODY} bytes at most)`);

export function publicApi(state: StateStore, projects: Projects, endpoints: EndpointManager, opts: PublicApiOptions): Hono {
  const v2 = new Hono();
  const deps = apiDeps(state, projects, endpoints, opts);
  projectRoutes(v2, deps);
  branchRoutes(v2, deps);
  checkpointRoutes(v2, deps);
  lakeTableRoutes(v2, deps);
  syncedTableRoutes(v2, deps);
  exportRoutes(v2, deps);
  endpointRoutes(v2, deps);
  roleRoutes(v2, deps);
  databaseRoutes(v2, deps);
  operationRoutes(v2, deps);

  const app = new Hono();
  app.use('/api/*', requireAuth(bearerAuth(opts.apiKey), { unauthorized: (c) => c.json(errorBody(UNAUTHORIZED, 'neon'), 401) }));
  app.use('/api/*', limitBody(MAX_BODY, (c) => c.json(errorBody(TOO_LARGE, 'neon'), 413)));
  app.route('/api/v2', v2);
  const noRoute = routeNotFound('neon', 'NOT_FOUND');
  // A catch-all rather than notFound alone: server.ts mounts this app into its own, whose notFound would answer.
  app.all('/api/*', (c) => noRoute(c));
  // On both apps: Hono applies the handlers of the app that matched.
  const neon = errorHandler({ shape: 'neon', internalCode: 'INTERNAL_ERROR', log: reportErrors('public', opts.errors) });
  for (const a of [v2, app]) {
    a.onError((e, c) => neon(asApiError(e), c));
    a.notFound(noRoute);
  }
  return app;
}

/** The services behind the routes, over one plane. */
function apiDeps(state: StateStore, projects: Projects, endpoints: EndpointManager, opts: PublicApiOptions): ApiDeps {
  const hasHosts = opts.drivesComputes ?? false;
  const plane: Plane = {
    state,
    storage: opts.storage,
    endpoints,
    box: new PasswordBox(opts.secret ?? opts.apiKey),
    sql: hasHosts ? new ComputeSql(endpoints) : null,
    defaultEngine: opts.defaultEngine ?? 'pglite',
    lock: new KeyedLock(),
  };
  const branches = new BranchAdmin(plane);
  return {
    plane,
    views: new Views({ baseDomain: opts.baseDomain, proxyPort: opts.proxyPort, connectionHost: opts.connectionHost }),
    projects: new ProjectAdmin(plane, projects),
    branches,
    checkpoints: new CheckpointAdmin(plane, branches),
    endpoints: new EndpointAdmin(plane, hasHosts),
    roles: new RoleAdmin(plane),
    lake: {
      tables: new LakeTables(plane, opts.lake), synced: new SyncedTables(plane, opts.lake), exports: new Exports(plane, opts.lake), store: opts.lake.store,
    },
  };
}
