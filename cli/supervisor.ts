// Runs the lakebase's services as child processes and restarts one that dies (with backoff), so that a crash
// of one process never takes the others down. Stopping goes in reverse start order, one service after the other
// (the proxy first, the storage node last), so that each service can still reach what it depends on while it stops:
// the compute host's clean stop of every compute needs the storage node up. Children run in their own process
// group (detached), so a terminal's Ctrl-C reaches only this process, which then decides the order. What the
// services print, and what happens to them, goes to a ServiceOutput (cli/service-logs.ts: files and the terminal).
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
  /**
   * Arguments for a restart after a crash, from the first start's ready line: a service started on port 0 comes
   * back on the port it got, where the other services reach it.
   */
  restartArgs?: (ready: Record<string, unknown>) => string[];
  /**
   * Stop it right before this earlier-started service, not in reverse start order: a service started late (it needs
   * a later one's address) may still depend on an early one and have to stop before the ones in between.
   */
  stopsBefore?: string;
}

export interface RunningService {
  spec: ServiceSpec;
  ready: Record<string, unknown>;
}

/** How a stopped service ended: on its own after SIGTERM, or killed after the grace period. */
export type StopOutcome = 'exited' | 'killed' | 'not running';

/** What happened to a service: started (a restart when attempt > 0), ready, or exited (and when it comes back). */
export type ServiceEvent =
  | { kind: 'starting'; service: string; attempt: number }
  | { kind: 'ready'; service: string; attempt: number; pid: number; ready: Record<string, unknown> }
  | { kind: 'exited'; service: string; how: string; wasReady: boolean; restartInMs: number | null }
  | { kind: 'restart-failed'; service: string; message: string };

/** Where the services' output and the supervisor's news go. */
export interface ServiceOutput {
  /** One line a service printed: its JSON log on stdout, anything on stderr. */
  line(service: string, line: string, stream: 'stdout' | 'stderr'): void;
  event(e: ServiceEvent): void;
}

/**
 * Everything as lines to one function: stdout lines as printed (JSON), stderr lines after `[service] `, and a
 * crash as a JSON line of the supervisor's.
 */
export function linesTo(onLine: (line: string) => void): ServiceOutput {
  return {
    line: (service, line, stream) => onLine(stream === 'stdout' ? line : `[${service}] ${line}`),
    event: (e) => {
      if (e.kind === 'exited' && e.restartInMs !== null) onLine(JSON.stringify({ level: 40, component: 'supervisor', msg: `${e.service} exited (${e.how}); restarting in ${e.restartInMs} ms` }));
      if (e.kind === 'restart-failed') onLine(`[supervisor] ${e.message}`);
    },
  };
}

export class Supervisor {
  private readonly children = new Map<string, ChildProcess>();
  /** Service names in the order they were first started; stopAll goes through it backwards. */
  private readonly order: string[] = [];
  /** Services stopped on purpose: their exit is not a crash. */
  private readonly halted = new Set<string>();
  private stopping = false;
  private readonly output: ServiceOutput;
  private readonly onChange: (pids: Record<string, number>) => void;

  /** `output` a function: every line to it, as `lakebase start --verbose` shows them (linesTo). */
  constructor(output: ServiceOutput | ((line: string) => void), onChange: (pids: Record<string, number>) => void = () => {}) {
    this.output = typeof output === 'function' ? linesTo(output) : output;
    this.onChange = onChange;
  }

  /** True once stopAll began: nothing starts or restarts any more. */
  get isStopping(): boolean {
    return this.stopping;
  }

  /** The pid of each running service. */
  pids(): Record<string, number> {
    return Object.fromEntries([...this.children].map(([name, c]) => [name, c.pid ?? -1]));
  }

  /** Starts a service and waits for its ready line; later crashes restart it. Rejects if it exits before ready. */
  start(spec: ServiceSpec, attempt = 0): Promise<RunningService> {
    if (this.stopping) return Promise.reject(new Error(`not starting ${spec.name}: stopping`));
    this.halted.delete(spec.name);
    if (!this.order.includes(spec.name)) {
      const at = spec.stopsBefore ? this.order.indexOf(spec.stopsBefore) : -1;
      this.order.splice(at < 0 ? this.order.length : at + 1, 0, spec.name);
    }
    return new Promise((resolve, reject) => {
      // stdin is a pipe we never write: when this process dies, even by kill -9, the child sees it close and stops
      // (lib/supervised.ts). detached: its own process group, out of reach of the terminal's Ctrl-C.
      const child = spawn(process.execPath, [spec.script, ...spec.args], {
        env: { ...process.env, ...spec.env, LAKEBASE_SUPERVISED: '1' },
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
      });
      this.children.set(spec.name, child);
      this.output.event({ kind: 'starting', service: spec.name, attempt });
      let ready: Record<string, unknown> | null = null;
      this.forwardLines(spec.name, child, 'stdout', (line) => {
        if (ready || !line.includes(`"${spec.readyMessage}"`)) return;
        ready = JSON.parse(line) as Record<string, unknown>;
        this.onChange(this.pids());
        this.output.event({ kind: 'ready', service: spec.name, attempt, pid: child.pid ?? -1, ready });
        resolve({ spec, ready });
      });
      this.forwardLines(spec.name, child, 'stderr', () => {});
      child.once('exit', (code, signal) => {
        if (this.children.get(spec.name) === child) this.children.delete(spec.name);
        const how = `${signal ?? code}`;
        if (!ready) reject(new Error(`${spec.name} exited (${how}) before it was ready`));
        // A first start that fails is the caller's to handle; a crash, or a restart that fails, is retried.
        const retry = !this.stopping && !this.halted.has(spec.name) && (ready !== null || attempt > 0);
        const restartInMs = retry ? Math.min(10_000, 250 * 2 ** attempt) : null;
        this.output.event({ kind: 'exited', service: spec.name, how, wasReady: ready !== null, restartInMs });
        if (restartInMs === null) return;
        const next = ready && spec.restartArgs ? { ...spec, args: spec.restartArgs(ready), restartArgs: undefined } : spec;
        this.restartLater(next, attempt + 1, restartInMs);
      });
    });
  }

  /** Stops one service: SIGTERM, then SIGKILL if it has not exited after graceMs. Resolves once its output ended. */
  stop(name: string, graceMs: number): Promise<StopOutcome> {
    this.halted.add(name);
    const child = this.children.get(name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve('not running');
    return new Promise((resolve) => {
      let killed = false;
      const timer = setTimeout(() => {
        killed = true;
        child.kill('SIGKILL');
      }, graceMs);
      // 'close' comes after the last line of its output, so a service's own stop log precedes the caller's "done".
      child.once('close', () => {
        clearTimeout(timer);
        resolve(killed ? 'killed' : 'exited');
      });
      child.kill('SIGTERM');
    });
  }

  /** Stops every service, in reverse start order (but see stopsBefore), each once the previous one has exited; no more restarts. */
  async stopAll(graceMs = 30_000, progress: (name: string, outcome?: StopOutcome, ms?: number) => void = () => {}): Promise<void> {
    this.stopping = true;
    for (const name of [...this.order].reverse()) {
      if (!this.children.has(name)) continue;
      progress(name);
      const t0 = performance.now();
      const outcome = await this.stop(name, graceMs);
      progress(name, outcome, Math.round(performance.now() - t0));
    }
  }

  /**
   * Hands each complete line of one of the child's streams to the output (then to onLine), and a last partial
   * line at the end.
   */
  private forwardLines(name: string, child: ChildProcess, stream: 'stdout' | 'stderr', onLine: (line: string) => void): void {
    let buffered = '';
    const emit = (line: string) => {
      if (!line.trim()) return;
      this.output.line(name, line, stream);
      onLine(line);
    };
    const from = child[stream]!;
    from.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      lines.forEach(emit);
    });
    from.on('end', () => emit(buffered));
  }

  private restartLater(spec: ServiceSpec, attempt: number, delay: number): void {
    setTimeout(() => {
      if (this.stopping || this.halted.has(spec.name)) return;
      // A restart that fails before ready schedules the next one itself (see the exit handler).
      this.start(spec, attempt).catch((e: unknown) => this.output.event({ kind: 'restart-failed', service: spec.name, message: (e as Error).message }));
    }, delay);
  }
}
