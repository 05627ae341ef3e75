// The PostgreSQL settings and pg_hba of a compute: the host owns them (passed with -c and a host-side hba_file),
// so nothing stored in the timeline, which the tenant's owner could influence, decides who may log in how.
import { TIMELINE_SETTING } from '../../lib/compute-startup.ts';
import type { AdminAddress } from './admin.ts';
import { ADMIN_ROLE } from './admin.ts';

/**
 * Who may log in: the host's superuser only over the unix socket (trust: the socket's directory is the compute's,
 * mode 0700), every other role only over TCP with SCRAM (the proxy logs each session in with pass-through keys).
 */
export function hbaFile(): string {
  return [
    `local all ${ADMIN_ROLE} trust`,
    'local all all reject',
    `host all ${ADMIN_ROLE} all reject`,
    'host all all all scram-sha-256',
    '',
  ].join('\n');
}

export interface ComputeSettingsInput {
  computeId: string;
  at: AdminAddress;
  hbaPath: string;
  sharedBuffersBytes: number;
  /** The guard module that keeps CREATEROLE roles from the file and program roles (compute/postgres/guard.ts). */
  preloadLibraries: string[];
  /** The file the host creates before a suspend's fast shutdown (the guard module then marks the sessions' 57P01). */
  suspendMarker: string;
  /** The timeline it serves: the lake's capture triggers capture only on the timeline they were made for. */
  timelineId: string;
}

export function computeSettings(i: ComputeSettingsInput): Record<string, string> {
  return {
    cluster_name: i.computeId,
    hba_file: i.hbaPath,
    unix_socket_permissions: '0700',
    shared_buffers: `${Math.max(128, Math.round(i.sharedBuffersBytes / 8192))}`,
    max_connections: '100',
    password_encryption: 'scram-sha-256',
    shared_preload_libraries: i.preloadLibraries.join(','),
    // for list_slow_queries (the MCP server): statements' times, bounded to 1000 entries of shared memory
    'pg_stat_statements.max': '1000',
    'pg_stat_statements.track': 'top',
    'lakebase.suspend_marker': i.suspendMarker,
    [TIMELINE_SETTING]: i.timelineId,
    // commits are durable only once the storage node acknowledged them (fsync ships the batch): keep both on
    fsync: 'on',
    synchronous_commit: 'on',
    hot_standby: 'on',
    huge_pages: 'off',
    // the server's log goes to the host's log: no statement text (it may hold data), no per-connection lines
    log_min_error_statement: 'panic',
    log_min_messages: 'warning',
    logging_collector: 'off',
    log_line_prefix: '%m [%p] ',
  };
}
