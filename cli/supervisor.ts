// Runs the lakebase's services as child processes and restarts one that dies (with backoff), so that a crash
// of one process never takes the others down. Ctrl-C (SIGINT) or SIGTERM stops them all gracefully.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

export interface ServiceSpec {
  name: string;
  /** A TypeScript entry point, run with this process's Node. */
  script: string;
  args: string[];
  env?: Record<string, string>;
  /** Resolves with what the service printed when ready (a JSON log line matching `readyMessage`). */
  readyMessage: string;
}

export interface RunningService {
  spec: ServiceSpec;
  ready: Record<string, unknown>;
}

export class Supervisor {
  private readonly children = new Map<string, ChildProcess>();
  private stopping = false;
  private readonly onLog: (line: string) => void;
  private readonly onChange: (pids: Record<string, number>) => void;

  constructor(onLog: (line: string) => void, onChange: (pids: Record<string, number>) => void = () => {}) {
    this.onLog = onLog;
    this.onChange = onChange;
  }

  /** The pid of each running service. */
  pids(): Record<string, number> {
    return Object.fromEntries([...this.children].map(([name, c]) => [name, c.pid ?? -1]));
  }

  /** Starts a service and waits for its ready line; later crashes restart it. */
  start(spec: ServiceSpec, attempt = 0): Promise<RunningService> {
    return new Promise((resolve, reject) => {
      // stdin is a pipe we never write: when this process dies, even by kill -9, the child sees it close and stops.
      const child = spawn(process.execPath, [spec.script, ...spec.args], {
        env: { ...process.env, ...spec.env, LAKEBASE_SUPERVISED: '1' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      this.children.set(spec.name, child);
      let ready = false;
      let buffered = '';
      const onLine = (line: string) => {
        if (!line.trim()) return;
        this.onLog(line);
        if (ready || !line.includes(`"${spec.readyMessage}"`)) return;
        ready = true;
        this.onChange(this.pids());
        resolve({ spec, ready: JSON.parse(line) as Record<string, unknown> });
      };
      child.stdout!.on('data', (d: Buffer) => {
        buffered += d.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        lines.forEach(onLine);
      });
      child.stderr!.on('data', (d: Buffer) => d.toString().split('\n').forEach((l) => l && this.onLog(`[${spec.name}] ${l}`)));
      child.once('exit', (code, signal) => {
        this.children.delete(spec.name);
        if (this.stopping) return;
        if (!ready) {
          reject(new Error(`${spec.name} exited (${signal ?? code}) before it was ready; see its log above`));
          return;
        }
        const delay = Math.min(10_000, 250 * 2 ** attempt);
        this.onLog(JSON.stringify({ level: 40, component: 'supervisor', msg: `${spec.name} exited (${signal ?? code}); restarting in ${delay} ms` }));
        setTimeout(() => {
          if (!this.stopping) this.start(spec, attempt + 1).catch((e: unknown) => this.onLog(`[supervisor] ${(e as Error).message}`));
        }, delay);
      });
    });
  }

  /** SIGTERM to every child (each flushes and exits), SIGKILL after the grace period. */
  async stopAll(graceMs = 30_000): Promise<void> {
    this.stopping = true;
    const waits = [...this.children.values()].map(
      (child) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    );
    await Promise.all(waits);
  }
}
