// Runs `wrangler dev` (or `npm run dev:workers`) as a child process for smoke tests, and stops it without
// leaving anything behind: the child gets its own process group, every descendant's pid is noted before
// stopping, and whatever survives SIGTERM (an orphaned workerd) is killed by pid.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { ROOT } from './workers-build.ts';

/** Keeps wrangler local: no metrics, no cf.json download, no banner, non-interactive. */
export const WRANGLER_ENV: Record<string, string> = {
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  CI: '1',
};

export interface TrackedProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves when the output matches `pattern` (rejects on exit or timeout, with the output). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  stop(): Promise<void>;
}

function descendants(root: number): number[] {
  const table = execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number));
  const out: number[] = [];
  const queue = [root];
  while (queue.length) {
    const parent = queue.shift() as number;
    for (const [pid, ppid] of table) {
      if (ppid === parent) {
        out.push(pid);
        queue.push(pid);
      }
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function spawnTracked(command: string, args: string[], env: Record<string, string> = {}): TrackedProcess {
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, ...WRANGLER_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const seen = new Set<number>();
  const track = () => {
    if (child.pid !== undefined && child.exitCode === null) for (const pid of descendants(child.pid)) seen.add(pid);
  };
  const tracker = setInterval(track, 250);
  return {
    child,
    output: () => out,
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(out);
          if (m) {
            done();
            resolve(m);
          }
        };
        const onExit = () => {
          done();
          reject(new Error(`${command} exited before ${pattern}:\n${out}`));
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${pattern}:\n${out}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', onExit);
        };
        listeners.add(check);
        child.once('exit', onExit);
        check();
      });
    },
    async stop() {
      clearInterval(tracker);
      track();
      const pids = [child.pid, ...seen].filter((p): p is number => p !== undefined);
      if (child.pid !== undefined && child.exitCode === null) {
        try {
          process.kill(-child.pid, 'SIGTERM');
        } catch {
          // group already gone
        }
      }
      for (let i = 0; i < 50 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
      for (const pid of pids.filter(alive)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // exited meanwhile
        }
      }
    },
  };
}
