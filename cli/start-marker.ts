// How a `lakebase` command learns that `lakebase start` is still starting in its state directory, and waits for it
// instead of failing with "no lakebase API configured" (or reading an older start's local.json): the start writes
// DIR/starting.pid (its pid) before anything else and removes it once local.json is written, or when it exits.
// A marker whose pid is not alive (a start killed with -9) means nothing is starting.
import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CliError } from './commands/errors.ts';
import { pidAlive } from '../lib/pid-alive.ts';

const MARKER = 'starting.pid';


/** The pid of a `lakebase start` still starting in `dir`, if there is one. */
export function startingPid(dir: string): number | undefined {
  const path = join(dir, MARKER);
  if (!existsSync(path)) return undefined;
  const pid = Number(readFileSync(path, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid) ? pid : undefined;
}

/** The marker this process holds, if any: `lakebase` marks as early as it can, and start() again once it knows its directory. */
let held: { path: string; done: () => void } | undefined;

/**
 * Marks `dir` as starting, by this process, until done() or this process's exit (a mark of another directory by
 * this process is taken back). Refuses when another start is starting there.
 */
export function markStarting(dir: string): { done: () => void } {
  const path = join(dir, MARKER);
  if (held?.path === path) return held;
  held?.done();
  const other = startingPid(dir);
  if (other !== undefined) throw new CliError(`another \`lakebase start\` (pid ${other}) is starting in ${dir}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path, `${process.pid}\n`);
  const done = () => {
    process.removeListener('exit', done);
    if (held?.path === path) held = undefined;
    try {
      if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
    } catch {
      // already gone
    }
  };
  process.on('exit', done);
  held = { path, done };
  return held;
}

/**
 * Waits while a `lakebase start` is starting in `dir` (saying so once on stderr), up to timeoutMs. Resolves at once
 * when nothing is starting.
 */
export async function waitForStart(dir: string, timeoutMs = 60_000, say: (s: string) => void = (s) => void process.stderr.write(s)): Promise<void> {
  const pid = startingPid(dir);
  if (pid === undefined) return;
  say(`lakebase: waiting for \`lakebase start\` (pid ${pid}) to finish starting in ${dir}...\n`);
  const deadline = Date.now() + timeoutMs;
  while (startingPid(dir) === pid) {
    if (Date.now() > deadline) {
      throw new CliError(`\`lakebase start\` (pid ${pid}) is still starting after ${Math.round(timeoutMs / 1000)} s; its progress: \`lakebase logs\` (${join(dir, 'logs')})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  // Gone with its marker (a failed start removes it as it exits) or without (killed): either way it never got ready.
  if (!pidAlive(pid)) {
    throw new CliError(`\`lakebase start\` (pid ${pid}) stopped before it was ready; \`lakebase logs\` shows why (${join(dir, 'logs')})`);
  }
}
