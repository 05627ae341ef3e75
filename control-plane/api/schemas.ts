// One schema per request body and query string of the public API (the route modules read requests through
// them with bodyOf/queryOf), built from api/fields.ts so every 400 names the field as the caller wrote it.
import type { PointInTime } from '../branch-admin.ts';
import type { DefaultEndpointSettings } from '../model.ts';
import { v } from '../../lib/validate.ts';
import {
  BRANCH_NAME, CHECKPOINT_NAME, ENDPOINT_NAME, PROJECT_NAME, type Field, body, fields, inOrder, objectFirst, oneOf, optBool, optCu,
  optDatabaseName, optEnum, optInt, optLsn, optString, optSuspendTimeout, optTimestamp, optional, params, queryBool, queryInt,
  queryString, reqDatabaseName, reqString, required, roleName, section, sectionOf, timestamp,
} from './fields.ts';

const ENDPOINT_TYPES = ['read_write', 'read_only'] as const;

// ---- shared parts ----

/** The cross-field rule of a point in history: an LSN or a time, not both, and not a time in the future. */
function pointInTimeRule(lsnName: string, timeName: string, lsn: number | undefined, time: string | undefined): string | null {
  if (lsn !== undefined && time !== undefined) return `give ${lsnName} or ${timeName}, not both`;
  if (time !== undefined && Date.parse(time) > Date.now()) return `${timeName} is in the future`;
  return null;
}

/** Autoscaling limits given the wrong way round. */
const isAbove = (min: number | undefined, max: number | undefined): boolean => min !== undefined && max !== undefined && min > max;

export function pointInTime(lsn: number | undefined, time: string | undefined): PointInTime {
  return lsn !== undefined ? { lsn } : time !== undefined ? { timestamp: time } : {};
}

/** `<where>.default_endpoint_settings`: absent or null is undefined; only the fields given are kept. */
function endpointSettings(where: string): Field<DefaultEndpointSettings | undefined> {
  const w = `${where}.default_endpoint_settings`;
  return optional(v.pipe(
    fields({
      suspend_timeout_seconds: optSuspendTimeout(`${w}.suspend_timeout_seconds`),
      autoscaling_limit_min_cu: optCu(`${w}.autoscaling_limit_min_cu`),
      autoscaling_limit_max_cu: optCu(`${w}.autoscaling_limit_max_cu`),
    }, `${w} must be an object`),
    v.check((s) => !isAbove(s.autoscaling_limit_min_cu, s.autoscaling_limit_max_cu), `${w}: autoscaling_limit_min_cu is above autoscaling_limit_max_cu`),
    v.transform((s) => {
      const out: DefaultEndpointSettings = {};
      if (s.suspend_timeout_seconds !== undefined) out.suspend_timeout_seconds = s.suspend_timeout_seconds;
      if (s.autoscaling_limit_min_cu !== undefined) out.autoscaling_limit_min_cu = s.autoscaling_limit_min_cu;
      if (s.autoscaling_limit_max_cu !== undefined) out.autoscaling_limit_max_cu = s.autoscaling_limit_max_cu;
      return out;
    }),
  ));
}

const historyRetention = (where: string) => optInt(`${where}.history_retention_seconds`, 0, 2592000);

// ---- projects ----

export const ListProjectsQuery = params({ limit: queryInt('limit', 1, 400), cursor: queryString(), search: queryString() });

export const CreateProjectBody = body({
  project: v.pipe(v.unknown(), objectFirst('branch', 'project.branch'), section('project', {
    name: optString('project.name', PROJECT_NAME),
    region_id: optString('project.region_id'),
    pg_version: optInt('project.pg_version', 14, 19),
    branch: section('project.branch', {
      name: optString('project.branch.name', BRANCH_NAME),
      role_name: optString('project.branch.role_name'),
      database_name: optString('project.branch.database_name'),
    }),
    default_endpoint_settings: endpointSettings('project'),
    history_retention_seconds: historyRetention('project'),
  })),
});

export const UpdateProjectBody = body({
  project: section('project', {
    name: optString('project.name', PROJECT_NAME),
    pg_version: optInt('project.pg_version', 14, 19),
    default_endpoint_settings: endpointSettings('project'),
    history_retention_seconds: historyRetention('project'),
  }, { required: true }),
});

export const ConnectionUriQuery = params({
  branch_id: queryString(),
  endpoint_id: queryString(),
  pooled: queryBool('pooled'),
  database_name: reqString('query parameter database_name'),
  role_name: reqString('query parameter role_name'),
});

// ---- branches ----

export const ListBranchesQuery = params({
  search: queryString(),
  limit: queryInt('limit', 1, 10000),
  cursor: queryString(),
  sort_by: optEnum('sort_by', ['name', 'created_at', 'updated_at']),
  sort_order: optEnum('sort_order', ['asc', 'desc']),
});

function newEndpointSpec(where: string) {
  return fields({
    type: required(`${where}.type`, oneOf(`${where}.type`, ENDPOINT_TYPES), 'read_write or read_only'),
    suspend_timeout_seconds: optSuspendTimeout(`${where}.suspend_timeout_seconds`),
    autoscaling_limit_min_cu: optCu(`${where}.autoscaling_limit_min_cu`),
    autoscaling_limit_max_cu: optCu(`${where}.autoscaling_limit_max_cu`),
  }, `${where} must be an object`);
}
type NewEndpointSpecs = v.InferOutput<ReturnType<typeof newEndpointSpec>>[];

/** `endpoints` of a branch create: up to 10 (absent is none); each item's messages name its index. */
const newEndpointSpecs: Field<NewEndpointSpecs> = v.pipe(
  optional(v.pipe(
    v.array(v.unknown(), 'endpoints must be an array'),
    v.maxLength(10, 'endpoints: at most 10'),
    v.rawTransform<unknown[], NewEndpointSpecs>(({ dataset, addIssue, NEVER }) => {
      const out: NewEndpointSpecs = [];
      for (const [i, item] of dataset.value.entries()) {
        const r = v.safeParse(newEndpointSpec(`endpoints[${i}]`), item, { abortEarly: true });
        if (!r.success) {
          addIssue({ message: r.issues[0].message });
          return NEVER;
        }
        out.push(r.output);
      }
      return out;
    }),
  )),
  v.transform((list) => list ?? []),
);

const newBranch = sectionOf('branch', inOrder({
  expires_at: v.pipe(optTimestamp('branch.expires_at'), v.check((t) => t === undefined || Date.parse(t) > Date.now(), 'branch.expires_at must be in the future')),
  // schema-only branches are not supported: only parent-data passes
  init_source: optEnum('branch.init_source', ['parent-data']),
  name: optString('branch.name', BRANCH_NAME),
  parent_id: optString('branch.parent_id'),
  parent_lsn: optLsn('branch.parent_lsn'),
  parent_timestamp: optTimestamp('branch.parent_timestamp'),
  // beyond Neon: a checkpoint of the parent (control-plane/checkpoints.ts) instead of an LSN or a time
  parent_checkpoint: optString('branch.parent_checkpoint', CHECKPOINT_NAME),
}, (b) => (b.parent_checkpoint !== undefined && (b.parent_lsn !== undefined || b.parent_timestamp !== undefined)
  ? 'give branch.parent_checkpoint, or branch.parent_lsn or branch.parent_timestamp, not both'
  : pointInTimeRule('branch.parent_lsn', 'branch.parent_timestamp', b.parent_lsn, b.parent_timestamp)), {
  protected: optBool('branch.protected'),
}, 'branch must be an object'));

export const CreateBranchBody = v.pipe(v.unknown(), objectFirst('branch', 'branch'), body({ endpoints: newEndpointSpecs, branch: newBranch }));

export const UpdateBranchBody = body({
  branch: section('branch', {
    // null clears the expiry
    expires_at: v.optional(v.nullable(timestamp('branch.expires_at'))),
    name: optString('branch.name', BRANCH_NAME),
    protected: optBool('branch.protected'),
  }, { required: true }),
});

export const RestoreBranchBody = inOrder({
  source_branch_id: reqString('source_branch_id'),
  source_lsn: optLsn('source_lsn'),
  source_timestamp: optTimestamp('source_timestamp'),
}, (b) => pointInTimeRule('source_lsn', 'source_timestamp', b.source_lsn, b.source_timestamp), {
  preserve_under_name: optString('preserve_under_name', BRANCH_NAME),
}, 'request body must be a JSON object');

// ---- checkpoints ----

export const CreateCheckpointBody = body({ name: reqString('name', CHECKPOINT_NAME), lsn: optLsn('lsn') });

export const CreateLakeTableBody = body({
  lake_table: section('lake_table', { source_table: reqString('lake_table.source_table') }, { required: true }),
});

export const RewindBody = body({ checkpoint: reqString('checkpoint', CHECKPOINT_NAME) });

// ---- endpoints ----

export const CreateEndpointBody = body({
  endpoint: sectionOf('endpoint', inOrder({
    type: required('endpoint.type', oneOf('endpoint.type', ENDPOINT_TYPES), 'read_write or read_only'),
    autoscaling_limit_min_cu: optCu('endpoint.autoscaling_limit_min_cu'),
    autoscaling_limit_max_cu: optCu('endpoint.autoscaling_limit_max_cu'),
  }, (e) => (isAbove(e.autoscaling_limit_min_cu, e.autoscaling_limit_max_cu) ? 'endpoint.autoscaling_limit_min_cu is above endpoint.autoscaling_limit_max_cu' : null), {
    region_id: optString('endpoint.region_id', { re: /^local$/, what: '"local", the only region' }),
    branch_id: reqString('endpoint.branch_id'),
    name: optString('endpoint.name', ENDPOINT_NAME),
    suspend_timeout_seconds: optSuspendTimeout('endpoint.suspend_timeout_seconds'),
    disabled: optBool('endpoint.disabled'),
  }, 'endpoint must be an object'), { required: true }),
});

export const UpdateEndpointBody = body({
  endpoint: section('endpoint', {
    branch_id: optString('endpoint.branch_id'),
    name: optString('endpoint.name', ENDPOINT_NAME),
    suspend_timeout_seconds: optSuspendTimeout('endpoint.suspend_timeout_seconds'),
    autoscaling_limit_min_cu: optCu('endpoint.autoscaling_limit_min_cu'),
    autoscaling_limit_max_cu: optCu('endpoint.autoscaling_limit_max_cu'),
    disabled: optBool('endpoint.disabled'),
  }, { required: true }),
});

// ---- roles and databases ----

export const CreateRoleBody = body({
  role: section('role', { name: roleName('role.name'), no_login: optBool('role.no_login') }, { required: true }),
});

export const CreateDatabaseBody = body({
  database: section('database', {
    name: reqDatabaseName('database.name'),
    owner_name: reqString('database.owner_name'),
  }, { required: true }),
});

export const UpdateDatabaseBody = body({
  database: section('database', {
    name: optDatabaseName('database.name'),
    owner_name: optString('database.owner_name'),
  }, { required: true }),
});

// ---- operations ----

export const ListOperationsQuery = params({ limit: queryInt('limit', 1, 1000), cursor: queryString() });
