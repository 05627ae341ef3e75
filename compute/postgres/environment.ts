// What the `postgres` engine needs from the machine, checked once with an error that says what to install:
// Debian's PostgreSQL 15 binaries, /dev/fuse with libfuse2 (fuse-native loads it), and root (the host mounts FUSE
// and runs each compute's postmaster under a uid of its own).
import { access, constants } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { ServiceError } from '../../lib/errors.ts';

/** Debian's PostgreSQL 15 server binaries (LAKEBASE_PG_BIN to use another build of 15). */
export const PG_BIN = process.env.LAKEBASE_PG_BIN ?? '/usr/lib/postgresql/15/bin';
/** The major version those binaries are. */
export const POSTGRES_MAJOR = 15;

/** The postgres engine cannot run on this machine: 503 `engine_unavailable`, with what to install or change. */
export class EngineUnavailableError extends ServiceError {
  override name = 'EngineUnavailableError';
  constructor(message: string) {
    super(503, 'engine_unavailable', message, { kind: 'compute' });
  }
}

let checked: Promise<void> | null = null;

/** Resolves when the postgres engine can run here; rejects with EngineUnavailableError otherwise (cached). */
export function checkPostgresEngine(): Promise<void> {
  checked ??= runChecks();
  return checked;
}

async function runChecks(): Promise<void> {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('run the compute host as root (it mounts FUSE and runs each compute under its own uid)');
  for (const bin of ['postgres', 'initdb']) {
    await access(`${PG_BIN}/${bin}`, constants.X_OK).catch(() => missing.push(`${PG_BIN}/${bin} is missing: apt-get install postgresql-15`));
  }
  await access('/dev/fuse').catch(() => missing.push('/dev/fuse is missing: load the fuse kernel module (modprobe fuse)'));
  try {
    createRequire(import.meta.url)('fuse-native');
  } catch (e) {
    missing.push(`FUSE cannot be loaded (${(e as Error).message.split('\n')[0]}): apt-get install libfuse2 fuse3`);
  }
  if (missing.length > 0) {
    throw new EngineUnavailableError(`the postgres engine cannot run on this compute host: ${missing.join('; ')}`);
  }
}
