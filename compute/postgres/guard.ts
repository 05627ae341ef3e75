// Locates (building if needed) lakebase_guard.so, the shared_preload_libraries module that stops a PG15
// CREATEROLE role from granting itself pg_execute_server_program and friends (see guard/README.md). Built on
// the machine that runs it because it must match the local server's headers; the result goes to a directory
// named by the source's hash so that a changed .c never loads a stale build, readable by any uid because the
// server runs as the `postgres` OS user.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PG_CONFIG = '/usr/lib/postgresql/15/bin/pg_config';
const SOURCE = fileURLToPath(new URL('./guard/lakebase_guard.c', import.meta.url));
const LIBRARY = 'lakebase_guard.so';
const INSTALL_HINT = 'apt-get install postgresql-server-dev-15 gcc';

/** The build under way per output directory: concurrent callers share it; other processes rely on the rename. */
const builds = new Map<string, Promise<string>>();

/**
 * Absolute path of lakebase_guard.so, compiled from guard/lakebase_guard.c when it is missing or older than
 * the source. `buildDir` defaults to `<tmpdir>/lakebase-pg-guard-<source hash>/`.
 */
export async function guardLibrary(opts: { buildDir?: string } = {}): Promise<string> {
  const source = await readFile(SOURCE);
  const dir = path.resolve(opts.buildDir ?? path.join(tmpdir(), `lakebase-pg-guard-${createHash('sha256').update(source).digest('hex').slice(0, 16)}`));
  let build = builds.get(dir);
  if (!build) {
    build = ensureBuilt(dir);
    builds.set(dir, build);
    // forget it once settled: the next call checks the file again (deleted, or the source edited)
    const forget = (): void => void builds.delete(dir);
    build.then(forget, forget);
  }
  return build;
}

async function ensureBuilt(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await checkOwned(dir);
  await chmod(dir, 0o755); // whatever the umask: the server's uid must read it, no one else may write
  const out = path.join(dir, LIBRARY);
  const [src, lib] = await Promise.all([stat(SOURCE), stat(out).catch(() => null)]);
  if (lib && lib.mtimeMs >= src.mtimeMs) {
    await checkOwned(out);
    await chmod(out, 0o644);
    return out;
  }
  const includeDir = await serverIncludeDir();
  // build under a unique name, then rename: concurrent builders each produce a whole file, the last one wins
  const tmp = `${out}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    await run('cc', ['-shared', '-fPIC', '-O2', '-Wall', `-I${includeDir}`, '-o', tmp, SOURCE]);
    await chmod(tmp, 0o644);
    await rename(tmp, out);
  } catch (err) {
    await rm(tmp, { force: true });
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`C compiler \`cc\` not found: ${INSTALL_HINT}`, { cause: err });
    throw new Error(`building ${LIBRARY} failed: ${(err as { stderr?: string }).stderr ?? String(err)}`, { cause: err });
  }
  return out;
}

/** The PG15 server headers' directory, or an Error saying what to install. */
async function serverIncludeDir(): Promise<string> {
  const missing = `PostgreSQL 15 server headers not found: ${INSTALL_HINT}`;
  if (!existsSync(PG_CONFIG)) throw new Error(missing);
  const dir = (await run(PG_CONFIG, ['--includedir-server'])).stdout.trim();
  if (!existsSync(path.join(dir, 'postgres.h'))) throw new Error(missing);
  return dir;
}

/**
 * The server loads whatever .so sits at this path, and the default directory is a guessable name in a shared
 * tmp dir: refuse one planted by another user (a symlink, or not ours; ours we then chmod).
 */
async function checkOwned(p: string): Promise<void> {
  const st = await lstat(p);
  const uid = process.getuid?.();
  if (st.isSymbolicLink() || (uid !== undefined && st.uid !== uid)) {
    throw new Error(`refusing to use ${p}: it must be owned by uid ${uid} and not be a symlink`);
  }
}
