#!/usr/bin/env node
// The `lakebase` command: `start` runs the whole lakebase on this machine (cli/start.ts), `logs` reads its
// services' logs; the other commands drive its API (cli/commands/), once a start in progress has finished. Each
// command's modules load only when it runs, so that a start marks its directory at once and commands start fast.
import { findCommand, splitGlobals, startDir } from './argv.ts';
import { stateDir } from './commands/config.ts';
import type { CommandContext } from './commands/context.ts';
import { CliError } from './commands/errors.ts';
import { HELP } from './help.ts';
import { markStarting, startingPid, waitForStart } from './start-marker.ts';

type Command = (ctx: CommandContext) => Promise<void>;
const COMMANDS: Record<string, () => Promise<Command>> = {
  projects: async () => (await import('./commands/projects.ts')).projects,
  branches: async () => (await import('./commands/branches.ts')).branches,
  endpoints: async () => (await import('./commands/endpoints.ts')).endpoints,
  roles: async () => (await import('./commands/roles.ts')).roles,
  'connection-string': async () => (await import('./commands/connection-string.ts')).connectionString,
  sql: async () => (await import('./commands/sql.ts')).sql,
  dump: async () => (await import('./commands/dump.ts')).dump,
  mcp: async () => (await import('./commands/mcp.ts')).mcp,
  lake: async () => (await import('./commands/lake.ts')).lake,
  admin: async () => (await import('./commands/admin.ts')).admin,
};
const ALIASES: Record<string, string> = { project: 'projects', branch: 'branches', endpoint: 'endpoints', role: 'roles', cs: 'connection-string' };

/** The errors of a command that found no lakebase (no local.json yet, or an older start's ports). */
function foundNoApi(e: unknown): boolean {
  return e instanceof CliError && /^(no lakebase API configured|cannot reach the lakebase API)/.test(e.message);
}

/**
 * An API command, once a `lakebase start` in progress in the state directory has finished (unless the API is
 * named). Its modules load first, which gives a start launched at the same moment the time to mark its directory;
 * one that marked it only after the command found no API gets waited for, and the command runs again.
 */
async function runApiCommand(name: string, argv: string[]): Promise<void> {
  const { flags, rest: args } = splitGlobals(argv);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(HELP + '\n');
    return;
  }
  const [{ loadConfig }, { Api }, command] = await Promise.all([import('./commands/config.ts'), import('./commands/api.ts'), COMMANDS[name]()]);
  const waits = !flags['api-url'] && !process.env.LAKEBASE_API_URL;
  const run = () => {
    const cfg = loadConfig(flags);
    return command({ args, api: new Api(cfg), pg: cfg.pg, out: { json: cfg.json, write: (s) => process.stdout.write(s + '\n') } });
  };
  if (waits) await waitForStart(stateDir(flags));
  try {
    await run();
  } catch (e) {
    if (!waits || !foundNoApi(e) || startingPid(stateDir(flags)) === undefined) throw e;
    await waitForStart(stateDir(flags));
    await run();
  }
}

/** `lakebase start`: its directory marked as starting before its modules load (best effort; start() marks it again). */
async function runStart(argv: string[]): Promise<void> {
  if (!argv.includes('--help') && !argv.includes('-h')) {
    try {
      markStarting(startDir(argv));
    } catch (e) {
      if (e instanceof CliError) throw e;
    }
  }
  await (await import('./start.ts')).start(argv);
}

const { command, rest } = findCommand(process.argv.slice(2));
const name = command === undefined ? undefined : (ALIASES[command] ?? command);
try {
  if (name === 'start') {
    await runStart(rest);
  } else if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(HELP + '\n');
  } else if (name === 'logs') {
    const { flags, rest: args } = splitGlobals(rest);
    await (await import('./commands/logs.ts')).logs(args, stateDir(flags));
  } else if (COMMANDS[name]) {
    await runApiCommand(name, rest);
  } else {
    throw new CliError(`unknown command ${JSON.stringify(command)}; \`lakebase help\` lists them`, 2);
  }
} catch (e) {
  if (e instanceof CliError) {
    process.stderr.write(`lakebase: ${e.message}\n`);
    process.exit(e.code);
  }
  // parseArgs' errors (unknown option, missing value) are usage errors too.
  if (e instanceof TypeError && 'code' in e && String((e as { code: unknown }).code).startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`lakebase: ${e.message}; \`lakebase help\` shows the usage\n`);
    process.exit(2);
  }
  throw e;
}
