// Where the services' output goes under `lakebase start`: every line to DIR/logs/<service>.log (appended, one
// file per service, written synchronously so that a line is in its file before anything printed after it), and to
// the terminal only what a person needs there: each service coming up, a restart, and each error as one line that
// names the log file. `--verbose` also copies every line to stderr as it comes (for containers, and for tests that
// read the whole story in order); `--quiet` leaves out the progress. `lakebase logs` reads the files.
import { closeSync, existsSync, mkdirSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { lastLines, logDir } from './log-files.ts';
import type { ServiceEvent, ServiceOutput } from './supervisor.ts';

export type TerminalMode = 'quiet' | 'normal' | 'verbose';

/** A log file over this size is moved to <name>.log.1 (replacing the previous one) when a start opens it. */
const ROTATE_BYTES = 64 * 1024 * 1024;
/** pino's levels: 40 warn, 50 error, 60 fatal. */
const ERROR_LEVEL = 50;
/** Plain lines a service writes within this long of the first are one burst (a stack trace): one terminal line. */
const BURST_MS = 200;
/** The line of a burst that says what happened. */
const TELLING = /\b\w*(Error|Exception)\b|\bERR_|Warning:|EADDRINUSE|EACCES/;

export class ServiceLogs implements ServiceOutput {
  readonly dir: string;
  private readonly mode: TerminalMode;
  private readonly write: (s: string) => void;
  private readonly fds = new Map<string, number>();
  private readonly bursts = new Map<string, string[]>();

  constructor(stateDir: string, mode: TerminalMode, write: (s: string) => void = (s) => void process.stderr.write(s)) {
    this.dir = logDir(stateDir);
    this.mode = mode;
    this.write = write;
    mkdirSync(this.dir, { recursive: true });
  }

  path(service: string): string {
    return join(this.dir, `${service}.log`);
  }

  line(service: string, line: string, stream: 'stdout' | 'stderr'): void {
    this.append(service, line);
    if (this.mode === 'verbose') this.write(`${stream === 'stdout' ? line : `[${service}] ${line}`}\n`);
    else if (stream === 'stdout') this.summarizeLog(service, line);
    else this.summarizeStderr(service, line);
  }

  event(e: ServiceEvent): void {
    const note = (level: number, msg: string) => this.append(e.service, JSON.stringify({ level, time: Date.now(), component: 'supervisor', pid: process.pid, msg }));
    if (e.kind === 'starting') note(30, e.attempt === 0 ? `lakebase start (pid ${process.pid}) starts ${e.service}` : `restarting ${e.service} (attempt ${e.attempt})`);
    if (e.kind === 'exited') note(e.restartInMs === null && e.wasReady ? 30 : 40, `${e.service} exited (${e.how})${e.restartInMs === null ? '' : `; restarting in ${e.restartInMs} ms`}`);
    if (e.kind === 'restart-failed') note(40, e.message);
    this.tell(e);
  }

  /** Closes the files (the end of `lakebase start`). */
  close(): void {
    for (const service of [...this.bursts.keys()]) this.endBurst(service);
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }

  /** What the terminal says about an event (verbose mode: as before, the supervisor's JSON line on a restart). */
  private tell(e: ServiceEvent): void {
    const say = (s: string) => this.write(`lakebase: ${s}\n`);
    if (e.kind === 'ready' && this.mode !== 'quiet') {
      const where = typeof e.ready.url === 'string' ? `, ${e.ready.url}` : '';
      say(e.attempt === 0 ? `${e.service} is up (pid ${e.pid}${where})` : `${e.service} is back (pid ${e.pid})`);
    }
    if (e.kind !== 'exited') return;
    this.endBurst(e.service);
    if (e.restartInMs !== null) {
      if (this.mode === 'verbose') this.write(`${JSON.stringify({ level: 40, component: 'supervisor', msg: `${e.service} exited (${e.how}); restarting in ${e.restartInMs} ms` })}\n`);
      else say(`${e.service} exited (${e.how}); restarting in ${e.restartInMs} ms; its log: ${this.path(e.service)}`);
    } else if (!e.wasReady && this.mode !== 'verbose') {
      say(`${e.service} exited (${e.how}) before it was ready; the end of ${this.path(e.service)}:`);
      for (const l of lastLines(this.path(e.service), 20).lines) this.write(`    ${l}\n`);
    }
  }

  /** An error (or fatal) line of a service's JSON log, as one terminal line. */
  private summarizeLog(service: string, line: string): void {
    let entry: { level?: unknown; msg?: unknown; err?: { message?: unknown } };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      this.summarizeStderr(service, line);
      return;
    }
    if (typeof entry.level !== 'number' || entry.level < ERROR_LEVEL) return;
    const detail = typeof entry.err?.message === 'string' && entry.err.message !== entry.msg ? `: ${entry.err.message}` : '';
    this.write(`lakebase: ${service}: ${oneLine(`${String(entry.msg ?? 'error')}${detail}`)} (more in ${this.path(service)})\n`);
  }

  /** Plain output (a crash's stack trace, a warning of Node's): gathered into bursts, each said in one line. */
  private summarizeStderr(service: string, line: string): void {
    const burst = this.bursts.get(service);
    if (burst) {
      if (burst.length < 100) burst.push(line);
      return;
    }
    this.bursts.set(service, [line]);
    setTimeout(() => this.endBurst(service), BURST_MS).unref();
  }

  private endBurst(service: string): void {
    const burst = this.bursts.get(service);
    if (!burst) return;
    this.bursts.delete(service);
    const telling = burst.find((l) => TELLING.test(l)) ?? burst[0];
    this.write(`lakebase: ${service}: ${oneLine(telling)} (more in ${this.path(service)})\n`);
  }

  private append(service: string, line: string): void {
    let fd = this.fds.get(service);
    if (fd === undefined) {
      fd = openLog(this.path(service));
      this.fds.set(service, fd);
    }
    writeSync(fd, `${line}\n`);
  }
}

function openLog(path: string): number {
  if (existsSync(path) && statSync(path).size > ROTATE_BYTES) renameSync(path, `${path}.1`);
  return openSync(path, 'a');
}

function oneLine(s: string): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > 300 ? `${flat.slice(0, 297)}...` : flat;
}
