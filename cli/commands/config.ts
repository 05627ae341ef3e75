// Where the CLI finds the API: flags, then LAKEBASE_* variables, then the local.json `lakebase start` writes.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CliError } from './errors.ts';

export interface CliConfig {
  apiUrl: string;
  apiKey: string;
  /** The default project (local.json's, or LAKEBASE_PROJECT_ID), if any. */
  projectId?: string;
  /** The proxy's Postgres port, for `sql`. */
  pg?: { host: string; port: number };
  json: boolean;
}

export interface GlobalFlags {
  'api-url'?: string;
  'api-key'?: string;
  project?: string;
  dir?: string;
  json?: boolean;
}

interface LocalJson {
  apiUrl?: string;
  apiKey?: string;
  tcp?: { host: string; port: number };
  project?: { id?: string };
}

/** The state directory of `lakebase start` that local.json and the logs are in: --dir, LAKEBASE_DIR or .lakebase. */
export function stateDir(flags: GlobalFlags, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flags.dir ?? env.LAKEBASE_DIR ?? '.lakebase');
}

export function loadConfig(flags: GlobalFlags, env: NodeJS.ProcessEnv = process.env): CliConfig {
  const dir = stateDir(flags, env);
  const localPath = join(dir, 'local.json');
  let local: LocalJson = {};
  if (existsSync(localPath)) {
    try {
      local = JSON.parse(readFileSync(localPath, 'utf8')) as LocalJson;
    } catch {
      throw new CliError(`${localPath} is not valid JSON; run \`lakebase start\` again to rewrite it`);
    }
  }
  const apiUrl = flags['api-url'] ?? env.LAKEBASE_API_URL ?? local.apiUrl;
  const apiKey = flags['api-key'] ?? env.LAKEBASE_API_KEY ?? local.apiKey;
  if (!apiUrl || !apiKey) {
    throw new CliError(`no lakebase API configured: run \`lakebase start\` here (it writes ${localPath}), or set LAKEBASE_API_URL and LAKEBASE_API_KEY (or pass --api-url and --api-key)`);
  }
  const pgPort = env.LAKEBASE_PG_PORT ? Number(env.LAKEBASE_PG_PORT) : local.tcp?.port;
  return {
    apiUrl: apiUrl.replace(/\/+$/, ''),
    apiKey,
    projectId: flags.project ?? env.LAKEBASE_PROJECT_ID ?? local.project?.id,
    pg: pgPort ? { host: env.LAKEBASE_PG_HOST ?? local.tcp?.host ?? '127.0.0.1', port: pgPort } : undefined,
    json: flags.json ?? false,
  };
}
