// Our records as Neon's API v2 shows them. Usage counters Neon reports are zero here: nothing is metered.
import { showLsn } from '../lsn.ts';
import type { BranchRecord, CheckpointRecord, DatabaseRecord, EndpointRecord, OperationRecord, ProjectRecord, RoleRecord } from '../model.ts';
import { formatLsn } from '../lsn.ts';
import type { NeonBranch, NeonConnectionDetails, NeonDatabase, NeonEndpoint, NeonOperation, NeonProject, NeonProjectListItem, NeonRole } from './neon-types.ts';

/** A checkpoint as the API shows it (ours: Neon has none). */
export interface CheckpointView {
  name: string;
  branch_id: string;
  lsn: string;
  created_at: string;
}

export interface ViewOptions {
  /** Endpoint host names are `<endpoint id>.<baseDomain>`. */
  baseDomain: string;
  /** The proxy's TCP port; named in hosts when it is not Postgres' 5432, so clients that build URIs from `host` reach it. */
  proxyPort: number;
  /** If set, connection URIs use this host (e.g. 127.0.0.1) and name the endpoint in the password instead (uri()). */
  connectionHost?: string;
}

const DEFAULT_CU = 0.25;

export class Views {
  private readonly o: ViewOptions;

  constructor(o: ViewOptions) {
    this.o = o;
  }

  private portSuffix(): string {
    return this.o.proxyPort === 5432 ? '' : `:${this.o.proxyPort}`;
  }

  host(ep: EndpointRecord, pooled = false): string {
    return `${ep.id}${pooled ? '-pooler' : ''}.${this.o.baseDomain}${this.portSuffix()}`;
  }

  proxyHost(): string {
    return `${this.o.baseDomain}${this.portSuffix()}`;
  }

  /**
   * A role's connection URI. With a connection host (a local lakebase: names under the base domain do not resolve)
   * the endpoint rides in the password, Neon's `endpoint=<id>$<password>` form, percent-encoded: the one place
   * every client keeps (the driver's poolQueryViaFetch rebuilds the string from user, password, host and database
   * and drops `options`). `$` rather than `;`, which key=value connection strings (JDBC, .NET) take as a separator.
   * No sslmode: libpq then prefers TLS (psql, pgbench: the proxy needs a certificate, or cleartext allowed on plain
   * TCP), while `pg` takes any sslmode but disable to mean verify-full, which a local self-signed certificate fails.
   * Without a connection host, the Neon form: the endpoint is the host's first label.
   */
  uri(ep: EndpointRecord, role: string, password: string, database: string, pooled = false): string {
    const id = `${ep.id}${pooled ? '-pooler' : ''}`;
    const path = `/${encodeURIComponent(database)}`;
    const at = this.o.connectionHost;
    if (at) {
      const host = at.includes(':') && !at.startsWith('[') ? `[${at}]` : at;
      return `postgresql://${encodeURIComponent(role)}:${encodeURIComponent(`endpoint=${id}$${password}`)}@${host}:${this.o.proxyPort}${path}`;
    }
    return `postgresql://${encodeURIComponent(role)}:${encodeURIComponent(password)}@${id}.${this.o.baseDomain}:${this.o.proxyPort}${path}?sslmode=disable`;
  }

  connectionDetails(ep: EndpointRecord, role: string, password: string, database: string): NeonConnectionDetails {
    return {
      connection_uri: this.uri(ep, role, password, database),
      connection_parameters: { database, password, role, host: this.host(ep), pooler_host: this.host(ep, true) },
    };
  }

  projectListItem(p: ProjectRecord): NeonProjectListItem {
    return {
      id: p.id, platform_id: 'lakebase', region_id: p.region_id, name: p.name, provisioner: 'k8s-neonvm',
      default_endpoint_settings: { suspend_timeout_seconds: 0, ...(p.default_endpoint_settings ?? {}) }, settings: {},
      pg_version: p.pg_version, proxy_host: this.proxyHost(), branch_logical_size_limit: 0, branch_logical_size_limit_bytes: 0,
      store_passwords: true, active_time: 0, cpu_used_sec: 0, creation_source: 'console', created_at: p.created_at,
      updated_at: p.updated_at, owner_id: 'local', history_retention_seconds: p.history_retention_seconds ?? 86400,
    };
  }

  project(p: ProjectRecord): NeonProject {
    const { active_time: _active, ...item } = this.projectListItem(p);
    return {
      ...item, data_storage_bytes_hour: 0, data_transfer_bytes: 0, written_data_bytes: 0, compute_time_seconds: 0,
      active_time_seconds: 0, history_retention_seconds: p.history_retention_seconds ?? 86400,
      consumption_period_start: p.created_at, consumption_period_end: '9999-12-31T23:59:59Z',
    };
  }

  branch(b: BranchRecord): NeonBranch {
    return {
      id: b.id, project_id: b.project_id, name: b.name, current_state: 'ready', state_changed_at: b.updated_at,
      creation_source: 'console', primary: b.default, default: b.default, protected: b.protected ?? false,
      cpu_used_sec: 0, compute_time_seconds: 0, active_time_seconds: 0, written_data_bytes: 0, data_transfer_bytes: 0,
      created_at: b.created_at, updated_at: b.updated_at, init_source: 'parent-data',
      ...(b.parent_id ? { parent_id: b.parent_id } : {}),
      ...(b.parent_lsn !== null ? { parent_lsn: showLsn(b.parent_lsn) } : {}),
      ...(b.parent_timestamp ? { parent_timestamp: b.parent_timestamp } : {}),
      ...(b.expires_at ? { expires_at: b.expires_at } : {}),
      ...(b.last_reset_at ? { last_reset_at: b.last_reset_at } : {}),
    };
  }

  endpoint(e: EndpointRecord): NeonEndpoint {
    return {
      host: this.host(e), id: e.id, ...(e.name ? { name: e.name } : {}), project_id: e.project_id, branch_id: e.branch_id,
      autoscaling_limit_min_cu: e.autoscaling_limit_min_cu ?? DEFAULT_CU, autoscaling_limit_max_cu: e.autoscaling_limit_max_cu ?? DEFAULT_CU,
      region_id: 'local', type: e.type, current_state: e.current_state, settings: {}, pooler_enabled: true, pooler_mode: 'transaction',
      disabled: e.disabled, passwordless_access: false, ...(e.last_active ? { last_active: e.last_active } : {}),
      creation_source: 'console', created_at: e.created_at, updated_at: e.updated_at, proxy_host: this.proxyHost(),
      suspend_timeout_seconds: e.suspend_timeout_seconds, provisioner: 'k8s-neonvm',
    };
  }

  role(r: RoleRecord, password?: string): NeonRole {
    return {
      branch_id: r.branch_id, name: r.name, ...(password !== undefined ? { password } : {}), protected: r.protected,
      authentication_method: r.no_login ? 'no_login' : 'password', created_at: r.created_at, updated_at: r.updated_at ?? r.created_at,
    };
  }

  database(d: DatabaseRecord): NeonDatabase {
    return { id: d.id ?? 0, branch_id: d.branch_id, name: d.name, owner_name: d.owner_name, created_at: d.created_at, updated_at: d.updated_at ?? d.created_at };
  }

  /** The record as is: Neon's fields, `error` (Neon's) once failed, and beyond Neon its stable `error_code`. */
  operation(o: OperationRecord): NeonOperation {
    return { ...o };
  }

  checkpoint(c: CheckpointRecord): CheckpointView {
    return { name: c.name, branch_id: c.branch_id, lsn: formatLsn(c.wal_lsn ?? c.lsn), created_at: c.created_at };
  }
}
