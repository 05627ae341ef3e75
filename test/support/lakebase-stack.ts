// The whole lakebase as real processes, started the way a user starts it: `lakebase start` in a temporary
// directory with free ports. Tests read the addresses from the local.json it writes. By default with --verbose,
// so that what the start printed (log()) holds every service's lines in the order they came, interleaved with the
// start's own; without it the terminal shows only progress, and log() adds the services' log files.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readAppended } from '../../cli/log-files.ts';
import type { LocalInfo } from '../../cli/start.ts';

const CLI = fileURLToPath(new URL('../../cli/lakebase.ts', import.meta.url));

export interface LakebaseStack extends LocalInfo {
  dir: string;
  /** The pid of `lakebase start` (the supervisor). */
  pid: number;
  /** The control plane's base URL (the API is at apiUrl = base + /api/v2). */
  controlPlaneUrl: string;
  /** Calls the public API with the stack's API key. */
  api<T>(method: string, path: string, body?: unknown): Promise<T>;
  suspend(endpointId?: string): Promise<void>;
  /**
   * Ctrl-C equivalent: every service flushes and exits. The directory is removed unless keepDir. SIGINT goes to
   * `lakebase start` alone, or with group (a stack started with ownGroup) to its whole process group, as a
   * terminal's Ctrl-C does.
   */
  stop(opts?: { keepDir?: boolean; group?: boolean }): Promise<void>;
  /** What `lakebase start` printed, then (without verbose) the services' log lines of this start, for failure messages. */
  log(): string;
  /** What `lakebase start` printed (stdout and stderr). */
  output(): string;
}

/** Each log file in dir/logs and its size now: a start on a used directory appends to them. */
function logSizes(dir: string): Map<string, number> {
  const logs = join(dir, 'logs');
  const sizes = new Map<string, number>();
  if (existsSync(logs)) for (const f of readdirSync(logs)) if (f.endsWith('.log')) sizes.set(f, statSync(join(logs, f)).size);
  return sizes;
}

/** The last lines each service logged since `from` (sizes before this start), one section per file. */
function serviceLogTails(dir: string, from: Map<string, number>, lines = 200): string {
  const logs = join(dir, 'logs');
  if (!existsSync(logs)) return '';
  return readdirSync(logs).filter((f) => f.endsWith('.log')).sort().map((f) => {
    const got = readAppended(join(logs, f), { offset: from.get(f) ?? 0 }).slice(-lines);
    return `--- ${join(logs, f)} (this start, last ${lines} lines) ---\n${got.join('\n')}\n`;
  }).join('');
}

/**
 * ownGroup: `lakebase start` leads its own process group (as in a terminal), for stop({ group: true }).
 * verbose (default true): `lakebase start --verbose`, every service's lines on its stderr too.
 */
export async function startLakebaseStack(opts: { dir?: string; env?: Record<string, string>; ownGroup?: boolean; verbose?: boolean } = {}): Promise<LakebaseStack> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'lakebase-stack-')));
  const ownsDir = opts.dir === undefined;
  const verbose = opts.verbose ?? true;
  const logsBefore = logSizes(dir);
  const child: ChildProcess = spawn(process.execPath, [CLI, 'start', '--dir', dir, '--auto-ports', ...(verbose ? ['--verbose'] : [])], {
    env: { ...process.env, LAKEBASE_LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.ownGroup ?? false,
  });
  // Out of the test runner's process group, it would outlive a runner stopped by Ctrl-C: take it down on exit
  // (its services follow when their stdin closes, lib/supervised.ts).
  const orphanGuard = () => child.kill('SIGKILL');
  if (opts.ownGroup) process.once('exit', orphanGuard);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  void exited.then(() => process.removeListener('exit', orphanGuard));
  await new Promise<void>((resolve, reject) => {
    // Under vitest's hook timeout (120 s), so that this cleans up rather than the hook being abandoned.
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // its services see their stdin close and stop (lib/supervised.ts)
      reject(new Error(`lakebase start did not finish in 100 s:\n${out.slice(-4000)}${verbose ? '' : serviceLogTails(dir, logsBefore, 40)}`));
    }, 100_000);
    const check = () => {
      if (out.includes('lakebase is running')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`lakebase start exited with ${code}:\n${out.slice(-4000)}${verbose ? '' : serviceLogTails(dir, logsBefore, 40)}`));
    });
  });
  const localPath = join(dir, 'local.json');
  if (!existsSync(localPath)) throw new Error(`lakebase start wrote no ${localPath}`);
  const local = JSON.parse(await readFile(localPath, 'utf8')) as LocalInfo;
  const controlPlaneUrl = local.apiUrl.replace(/\/api\/v2$/, '');
  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(local.apiUrl + path, {
      method,
      headers: { authorization: `Bearer ${local.apiKey}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path} -> ${res.status}: ${text}`);
    return (text ? JSON.parse(text) : {}) as T;
  };
  return {
    ...local,
    dir,
    pid: child.pid ?? -1,
    controlPlaneUrl,
    api,
    suspend: async (endpointId = local.project.endpointId) => {
      await api('POST', `/projects/${local.project.id}/endpoints/${endpointId}/suspend`);
    },
    stop: async ({ keepDir = false, group = false } = {}) => {
      if (child.exitCode === null && child.signalCode === null) {
        if (group) process.kill(-child.pid!, 'SIGINT');
        else child.kill('SIGINT');
      }
      await exited;
      if (ownsDir && !keepDir) await rm(dir, { recursive: true, force: true });
    },
    log: () => (verbose ? out : `${out}${serviceLogTails(dir, logsBefore)}`),
    output: () => out,
  };
}
