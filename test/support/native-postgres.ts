// A private native PostgreSQL cluster (Debian's `postgresql` package) for one test file: initdb into a temp
// dir, start on a free loopback port, stop and delete at the end. Superuser `postgres`, password auth with
// SCRAM over TCP, trust over the Unix socket.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../lib/free-port.ts';

export { freePort };

export interface NativePostgres {
  host: string;
  port: number;
  /** Directory of the Unix socket (for psql -h). */
  socketDir: string;
  superuser: string;
  superPassword: string;
  binDir: string;
  /** postgresql:// URL over TCP for `user` (default: the superuser). */
  url(user?: string, password?: string, database?: string): string;
  stop(): Promise<void>;
}

export interface NativePostgresOptions {
  /** pg_hba.conf lines placed before the default ones (first match wins). */
  hbaFirst?: string[];
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
}

function findBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')) && existsSync(path.join(root, v, 'bin', 'pg_ctl')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error('PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql: run `apt-get install postgresql`');
  }
  return path.join(root, versions[0], 'bin');
}

export async function startNativePostgres(opts: NativePostgresOptions = {}): Promise<NativePostgres> {
  const binDir = findBinDir();
  const root = mkdtempSync(path.join(tmpdir(), 'lakebase-pg-'));
  const dataDir = path.join(root, 'data');
  const superPassword = 'postgres-super-secret';
  writeFileSync(path.join(root, 'pwfile'), superPassword + '\n');
  // Postgres refuses to run as root: run it as the `postgres` user when we are root.
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]): void => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
    execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  };
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(root, uid, gid);
    chownSync(path.join(root, 'pwfile'), uid, gid);
  }
  run(path.join(binDir, 'initdb'), [
    '-D', dataDir, '-U', 'postgres', '--pwfile', path.join(root, 'pwfile'),
    '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions',
  ]);
  if (opts.hbaFirst?.length) {
    const hba = path.join(dataDir, 'pg_hba.conf');
    writeFileSync(hba, opts.hbaFirst.join('\n') + '\n' + readFileSync(hba, 'utf8'));
  }
  const port = await freePort();
  const settings = { listen_addresses: '127.0.0.1', fsync: 'off', max_connections: '200', TimeZone: 'UTC', ...opts.settings };
  const o = [`-p ${port}`, `-k ${root}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
  run(path.join(binDir, 'pg_ctl'), ['-D', dataDir, '-o', o, '-l', path.join(root, 'log'), '-w', 'start']);
  let stopped = false;
  const stopNow = (): void => {
    if (stopped) return;
    stopped = true;
    try {
      run(path.join(binDir, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  };
  // A test process that ends without reaching stop() (a failed hook, a timeout) must not leave a cluster behind.
  process.once('exit', stopNow);
  return {
    host: '127.0.0.1',
    port,
    socketDir: root,
    superuser: 'postgres',
    superPassword,
    binDir,
    url(user = 'postgres', password = superPassword, database = 'postgres') {
      return `postgresql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
    },
    async stop() {
      process.off('exit', stopNow);
      stopNow();
    },
  };
}
