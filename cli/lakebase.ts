#!/usr/bin/env node
// The `lakebase` command: `start` runs the whole lakebase on this machine (cli/start.ts); the other commands
// drive its API (cli/commands/).
import { start } from './start.ts';
import { Api } from './commands/api.ts';
import { branches } from './commands/branches.ts';
import { loadConfig } from './commands/config.ts';
import type { GlobalFlags } from './commands/config.ts';
import { connectionString } from './commands/connection-string.ts';
import type { CommandContext } from './commands/context.ts';
import { endpoints } from './commands/endpoints.ts';
import { mcp } from './commands/mcp.ts';
import { CliError } from './commands/errors.ts';
import { projects } from './commands/projects.ts';
import { roles } from './commands/roles.ts';
import { sql } from './commands/sql.ts';

const HELP = `lakebase: an open lakebase (serverless Postgres on branchable storage in S3/R2)

Usage:
  lakebase start [--dir DIR] [--storage-port N] [--compute-port N] [--api-port N] [--http-port N] [--tcp-port N]
                 [--auto-ports] [--quiet]
      Runs every service on this machine, supervised (a service that dies is restarted).
      State (object store folder, storage node disk) lives in DIR (default .lakebase, or LAKEBASE_DIR).
      With LAKEBASE_S3_BUCKET (and LAKEBASE_S3_ENDPOINT, ...) the object store is that bucket instead.
      Writes DIR/local.json with the addresses of what it started. Ctrl-C stops everything cleanly.

  lakebase projects list | create [--name N] | get ID | delete ID
  lakebase branches list
  lakebase branches create [--name N] [--parent BRANCH] [--at LSN|TIMESTAMP] [--no-endpoint] [--read-only]
  lakebase branches delete BRANCH
  lakebase branches reset BRANCH [--preserve-under-name N]          to its parent's head
  lakebase branches restore BRANCH --source BRANCH [--at LSN|TIMESTAMP] [--preserve-under-name N]
  lakebase branches checkpoint BRANCH NAME                          name the branch's current state
  lakebase branches checkpoints BRANCH
  lakebase branches rewind BRANCH NAME                              back to a checkpoint, in O(1)
  lakebase endpoints list | start ENDPOINT_ID | suspend ENDPOINT_ID
  lakebase roles list | create NAME | delete NAME | reset-password NAME   [--branch BRANCH]
  lakebase connection-string [BRANCH] [--role R] [--database D] [--pooled]
  lakebase sql "STATEMENT" [BRANCH] [--role R] [--database D]
  lakebase mcp                                                      the MCP server for agents, over stdio
                                                                    (over HTTP: the API's /mcp, same key)
  lakebase help

  BRANCH is a branch id or name (default: the project's default branch). LSNs look like 0/16B3748.

Options of the API commands (flag, then environment variable, then DIR/local.json from \`lakebase start\`):
  --api-url URL     LAKEBASE_API_URL      the API, e.g. http://127.0.0.1:9871/api/v2
  --api-key KEY     LAKEBASE_API_KEY      its Bearer key
  --project ID      LAKEBASE_PROJECT_ID   the project (default: local.json's, or the only one)
  --dir DIR         LAKEBASE_DIR          where local.json is (.lakebase)
  --json                                  JSON output for scripts (default: a table)
                    LAKEBASE_PG_HOST, LAKEBASE_PG_PORT   the proxy's Postgres address, for \`sql\`

Environment of start: LAKEBASE_DIR, LAKEBASE_STORAGE_PORT (9870), LAKEBASE_COMPUTE_PORT (9872),
LAKEBASE_API_PORT (9871), LAKEBASE_PROXY_HTTP_PORT (4444), LAKEBASE_PROXY_TCP_PORT (5432), LAKEBASE_AUTO_PORTS=1,
LAKEBASE_DURABILITY (local | object-store), LAKEBASE_S3_* (see docs/storage-node-api.md), LAKEBASE_LOG_LEVEL (info).`;

type Command = (ctx: CommandContext) => Promise<void>;
const COMMANDS: Record<string, Command> = {
  projects, project: projects, branches, branch: branches, endpoints, endpoint: endpoints, roles, role: roles,
  'connection-string': connectionString, cs: connectionString, sql, mcp,
};

/** Takes the global flags out of argv (anywhere on the line), leaving the command's own. */
function splitGlobals(argv: string[]): { flags: GlobalFlags; rest: string[] } {
  const flags: GlobalFlags = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--(api-url|api-key|project|dir)(?:=(.*))?$/.exec(a);
    if (m) {
      const v = m[2] ?? argv[++i];
      if (v === undefined) throw new CliError(`--${m[1]} needs a value`, 2);
      flags[m[1] as 'api-url' | 'api-key' | 'project' | 'dir'] = v;
    } else if (a === '--json') flags.json = true;
    else rest.push(a);
  }
  return { flags, rest };
}

const [command, ...rest] = process.argv.slice(2);
try {
  if (command === 'start') {
    await start(rest);
  } else if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(HELP + '\n');
  } else if (COMMANDS[command]) {
    const { flags, rest: args } = splitGlobals(rest);
    if (args.includes('--help') || args.includes('-h')) {
      process.stdout.write(HELP + '\n');
    } else {
      const cfg = loadConfig(flags);
      await COMMANDS[command]({ args, api: new Api(cfg), pg: cfg.pg, out: { json: cfg.json, write: (s) => process.stdout.write(s + '\n') } });
    }
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
