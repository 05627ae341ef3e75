// The CLI's client of the lakebase API: the shared client (lib/lakebase-api.ts) with its errors said as the CLI's
// one-line messages (what went wrong, and what to do).
import type { NeonBranch } from '../../control-plane/api/neon-types.ts';
import { ServiceError } from '../../lib/errors.ts';
import { LakebaseApi } from '../../lib/lakebase-api.ts';
import { CliError } from './errors.ts';
import type { CliConfig } from './config.ts';

export type Json = Record<string, unknown>;

export class Api {
  private readonly cfg: CliConfig;
  readonly client: LakebaseApi;

  constructor(cfg: CliConfig) {
    this.cfg = cfg;
    this.client = new LakebaseApi({ apiUrl: cfg.apiUrl, apiKey: cfg.apiKey });
  }

  async call<T = Json>(method: string, path: string, body?: unknown): Promise<T> {
    return cliErrors(this.cfg, () => this.client.call<T>(method, path, body));
  }

  /** The operator's API beside the public one: <base>/admin/v1 (control-plane/http/admin-api.ts), same key. */
  async admin<T = Json>(method: string, path: string, body?: unknown): Promise<T> {
    const adminUrl = this.cfg.apiUrl.replace(/\/api\/v2\/?$/, '') + '/admin/v1';
    // a drain moves every project of a node: minutes for many
    return cliErrors(this.cfg, () => new LakebaseApi({ apiUrl: adminUrl, apiKey: this.cfg.apiKey, timeoutMs: 3_600_000 }).call<T>(method, path, body));
  }

  /** The project to act on: --project, LAKEBASE_PROJECT_ID, local.json, or the only one there is. */
  async projectId(): Promise<string> {
    if (this.cfg.projectId) return this.cfg.projectId;
    const { projects } = await this.call<{ projects: { id: string }[] }>('GET', '/projects?limit=2');
    if (projects.length === 1) return projects[0].id;
    if (projects.length === 0) throw new CliError('there is no project yet: create one with `lakebase projects create`');
    throw new CliError('there are several projects: pick one with --project ID (or LAKEBASE_PROJECT_ID); `lakebase projects list` shows them');
  }

  /** A branch by id or name; none given: the default branch. */
  async branch(projectId: string, ref?: string): Promise<NeonBranch> {
    return cliErrors(this.cfg, () => this.client.branch(projectId, ref));
  }
}

async function cliErrors<T>(cfg: CliConfig, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e;
    if (e.status === 0) throw new CliError(`cannot reach the lakebase API at ${cfg.apiUrl} (${(e.cause as Error | undefined)?.message ?? e.message}): is \`lakebase start\` running?`);
    if (e.status === 401) throw new CliError(`the API refused the key: ${e.message}`);
    if (e.code === 'BRANCH_NOT_FOUND' && e.status === 404) throw new CliError(e.message);
    throw new CliError(`${e.message} (HTTP ${e.status})`);
  }
}
