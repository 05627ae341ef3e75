// The template timeline of the postgres engine: initdb once, as the `postgres` OS user, on a local directory; the
// roles a new project starts with; a clean stop; then the directory is imported into a new timeline (the same
// import as the PGlite template, compute/template.ts) and a checkpoint, so that every storage node over the bucket
// reads it. Every postgres-engine project branches from it.
// initdb runs on a local directory rather than on a FUSE mount: the result is the same files, and it takes 1.8 s
// instead of 5 s (initdb syncs only at its end, so on a mount everything ships at once anyway).
import { execFile } from 'node:child_process';
import { chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../../lib/logger.ts';
import type { StorageClient } from '../../storage-node/client.ts';
import { checkpointTemplate, importDataDir } from '../template.ts';
import type { TemplateAnswer } from '../host/api-types.ts';
import { ADMIN_ROLE, withAdmin } from './admin.ts';
import { PG_BIN } from './environment.ts';
import { freePort } from './ports.ts';
import { Postmaster } from './postmaster.ts';

const run = promisify(execFile);

export const OWNER_ROLE = 'neondb_owner';
export const DEFAULT_DATABASE = 'neondb';

/** Run in template1 before the rest, so that neondb and every database made later have them. */
export const TEMPLATE_EXTENSIONS = [
  // statements' times for list_slow_queries (mcp/); the compute preloads the library (compute/postgres/settings.ts)
  'CREATE EXTENSION pg_stat_statements',
  // no comment: pg_dump would write COMMENT ON EXTENSION, which a project's role (not its owner) may not restore
  'COMMENT ON EXTENSION pg_stat_statements IS NULL',
];

/**
 * What Neon's `neon_superuser` gives, on PostgreSQL 15: roles made through the API are its members. Never
 * SUPERUSER, pg_read_server_files, pg_write_server_files or pg_execute_server_program (the guard module keeps a
 * CREATEROLE role from granting those to itself), no REPLICATION while no walsender is exposed.
 */
export const TEMPLATE_SETUP = [
  'CREATE ROLE neon_superuser NOLOGIN CREATEDB CREATEROLE BYPASSRLS',
  'GRANT pg_read_all_data, pg_write_all_data TO neon_superuser',
  'GRANT pg_monitor, pg_signal_backend TO neon_superuser WITH ADMIN OPTION',
  `CREATE ROLE ${OWNER_ROLE} LOGIN CREATEDB CREATEROLE BYPASSRLS IN ROLE neon_superuser`,
  `CREATE DATABASE ${DEFAULT_DATABASE} OWNER ${OWNER_ROLE}`,
];

async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const [u, g] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** initdb + setup in a local directory, owned by the postgres OS user. */
async function initLocal(dir: string, log: Logger): Promise<void> {
  const { uid, gid } = await postgresUser();
  const data = path.join(dir, 'data');
  const sock = path.join(dir, 'sock');
  await mkdir(sock, { mode: 0o700 });
  await chown(dir, uid, gid);
  await chown(sock, uid, gid);
  await run('runuser', ['-u', 'postgres', '--', `${PG_BIN}/initdb`, '-D', data, '-U', ADMIN_ROLE, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8', '-N']);
  const port = await freePort('127.0.0.1');
  const pm = await Postmaster.start({
    dataDir: data, socketDir: sock, port, listenHost: '', uid, gid, ownsUid: false, settings: { fsync: 'off' }, readyTimeoutMs: 30_000, log,
  });
  try {
    await withAdmin({ socketDir: sock, port }, 'template1', async (c) => {
      for (const sql of TEMPLATE_EXTENSIONS) await c.query(sql);
    });
    await withAdmin({ socketDir: sock, port }, 'postgres', async (c) => {
      for (const sql of TEMPLATE_SETUP) await c.query(sql);
      await c.query('CHECKPOINT');
    });
  } catch (e) {
    await pm.kill();
    throw e;
  }
  if (!(await pm.stop(30_000))) throw new Error(`the template's postgres did not stop cleanly: ${pm.tail()}`);
}

/** Makes the template timeline: a new timeline holding a clean, stopped PostgreSQL 15 data directory. */
export async function createPostgresTemplate(storage: StorageClient, log: Logger): Promise<TemplateAnswer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lakebase-pg-template-'));
  try {
    const t0 = performance.now();
    await initLocal(dir, log);
    const initdbMs = performance.now() - t0;
    const imported = await importDataDir(storage, path.join(dir, 'data'));
    await checkpointTemplate(storage, imported.timelineId, imported.lsn);
    log.info({ timelineId: imported.timelineId, files: imported.files, bytes: imported.bytesShipped, initdbMs: Math.round(initdbMs) }, 'postgres template timeline made');
    return { engine: 'postgres', timelineId: imported.timelineId, lsn: imported.lsn, initdbMs: Math.round(initdbMs) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
