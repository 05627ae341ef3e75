// lakebase logs [SERVICE] [--lines N] [--follow]: what the services of `lakebase start` logged, from the files it
// writes in DIR/logs. Every service by default, its lines after its name and merged in time order (each JSON
// line's `time`), so one crash reads as one story; one service's lines as they are (JSON, for jq).
import { parseArgs } from 'node:util';
import { lastLines, logDir, readAppended, serviceLogFiles } from '../log-files.ts';
import { CliError } from './errors.ts';

const USAGE = 'usage: lakebase logs [SERVICE] [--lines N] [--follow]';
const FOLLOW_POLL_MS = 250;

interface Source {
  service: string;
  path: string;
}

/** The time of a pino line (ms since the epoch), if it has one. */
function timeOf(line: string): number | undefined {
  const m = /"time":(\d+)/.exec(line);
  return m ? Number(m[1]) : undefined;
}

/**
 * Every source's lines in one list ordered by time; a line without one (a ready line, a stack trace) keeps the time
 * of the line before it in its file, or of the first timed one after it.
 */
function merge(tails: { service: string; lines: string[] }[]): { service: string; line: string }[] {
  const all: { service: string; line: string; time: number; seq: number }[] = [];
  for (const t of tails) {
    const times = t.lines.map(timeOf);
    let time = times.find((x) => x !== undefined) ?? 0;
    t.lines.forEach((line, i) => {
      time = times[i] ?? time;
      all.push({ service: t.service, line, time, seq: all.length });
    });
  }
  return all.sort((a, b) => a.time - b.time || a.seq - b.seq);
}

function lineCount(text: string | undefined): number {
  if (text === undefined) return 100;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new CliError(`--lines ${JSON.stringify(text)} is not a whole number; ${USAGE}`, 2);
  return n;
}

/** The log files asked for: one service's, or every service's. */
function sources(stateDir: string, service: string | undefined): Source[] {
  const all = serviceLogFiles(stateDir);
  if (all.length === 0) {
    throw new CliError(`no logs in ${logDir(stateDir)}: \`lakebase start\` writes them there (--dir DIR or LAKEBASE_DIR names another state directory)`);
  }
  if (service === undefined) return all;
  const one = all.filter((s) => s.service === service);
  if (one.length === 0) throw new CliError(`no log of ${JSON.stringify(service)} in ${logDir(stateDir)}; there are: ${all.map((s) => s.service).join(', ')}`, 2);
  return one;
}

export async function logs(args: string[], stateDir: string, write: (s: string) => void = (s) => void process.stdout.write(s)): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { lines: { type: 'string', short: 'n' }, follow: { type: 'boolean', short: 'f' } } });
  if (positionals.length > 1) throw new CliError(USAGE, 2);
  const n = lineCount(values.lines);
  const chosen = sources(stateDir, positionals[0]);
  const width = Math.max(...serviceLogFiles(stateDir).map((s) => s.service.length));
  const show = (service: string, line: string) => write(positionals[0] ? `${line}\n` : `${service.padEnd(width)} | ${line}\n`);
  const offsets = new Map<string, { offset: number }>();
  const tails = chosen.map((s) => {
    const t = lastLines(s.path, n);
    offsets.set(s.path, { offset: t.size });
    return { service: s.service, lines: t.lines };
  });
  for (const { service, line } of merge(tails)) show(service, line);
  if (values.follow) await follow(stateDir, positionals[0], offsets, show);
}

/** Prints what is appended to the files from here on (and the files of services that start later), until killed. */
async function follow(stateDir: string, service: string | undefined, offsets: Map<string, { offset: number }>, show: (service: string, line: string) => void): Promise<never> {
  for (;;) {
    await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
    const now = serviceLogFiles(stateDir).filter((s) => service === undefined || s.service === service);
    const fresh = now.map((s) => {
      const at = offsets.get(s.path) ?? { offset: 0 };
      offsets.set(s.path, at);
      return { service: s.service, lines: readAppended(s.path, at) };
    });
    for (const { service: name, line } of merge(fresh)) show(name, line);
  }
}
