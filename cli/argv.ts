// The `lakebase` command line: the command word and the global flags (--api-url, --api-key, --project, --dir,
// --json), which may come before or after the command.
import { resolve } from 'node:path';
import type { GlobalFlags } from './commands/config.ts';
import { CliError } from './commands/errors.ts';

const GLOBAL = /^--(api-url|api-key|project|dir)(?:=(.*))?$/;

/** Takes the global flags out of argv (anywhere on the line), leaving the command's own. */
export function splitGlobals(argv: string[]): { flags: GlobalFlags; rest: string[] } {
  const flags: GlobalFlags = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = GLOBAL.exec(a);
    if (m) {
      const v = m[2] ?? argv[++i];
      if (v === undefined) throw new CliError(`--${m[1]} needs a value`, 2);
      flags[m[1] as 'api-url' | 'api-key' | 'project' | 'dir'] = v;
    } else if (a === '--json') flags.json = true;
    else rest.push(a);
  }
  return { flags, rest };
}

/** The command (the first word that is not a global flag or its value) and every other argument, in order. */
export function findCommand(argv: string[]): { command: string | undefined; rest: string[] } {
  for (let i = 0; i < argv.length; i++) {
    const m = GLOBAL.exec(argv[i]);
    if (m) {
      if (m[2] === undefined) i++;
    } else if (argv[i] !== '--json') {
      return { command: argv[i], rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
    }
  }
  return { command: undefined, rest: argv };
}

/**
 * The state directory `lakebase start` will use, read before its modules load (so that the starting marker is
 * there as early as possible): --dir, else LAKEBASE_DIR, else .lakebase, as its own options say (cli/start.ts).
 */
export function startDir(argv: string[], env: NodeJS.ProcessEnv = process.env): string {
  let dir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const m = /^--dir(?:=(.*))?$/.exec(argv[i]);
    if (m) dir = m[1] ?? argv[++i];
  }
  return resolve(dir || env.LAKEBASE_DIR || '.lakebase');
}
