// The CLI's client of the lakebase API (Neon's API v2 shapes: the answer types are the server's own,
// control-plane/api/neon-types.ts; errors are decoded by the one error model, lib/errors.ts).
import { decodeErrorResponse } from '../../lib/errors.ts';
import type { NeonBranch } from '../../control-plane/api/neon-types.ts';
import { CliError } from './errors.ts';
import type { CliConfig } from './config.ts';

export type Json = Record<string, unknown>;

export class Api {
  private readonly cfg: CliConfig;

  constructor(cfg: CliConfig) {
    this.cfg = cfg;
  }

  async call<T = Json>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.cfg.apiUrl + path, {
        method,
        headers: { authorization: `Bearer ${this.cfg.apiKey}`, 'content-type': 'application/json', accept: 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(120_000),
      });
    } catch (e) {
      throw new CliError(`cannot reach the lakebase API at ${this.cfg.apiUrl} (${(e as Error).message}): is \`lakebase start\` running?`);
    }
    const text = await res.text();
    if (!res.ok) {
      const { message } = decodeErrorResponse('lakebase API', res.status, text, { prefix: false });
      if (res.status === 401) throw new CliError(`the API refused the key: ${message}`);
      throw new CliError(`${message} (HTTP ${res.status})`);
    }
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      // not JSON; reported below
    }
    if (parsed === undefined) throw new CliError(`the API answered something that is not JSON: ${text.slice(0, 200)}`);
    return parsed as T;
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
    const { branches } = await this.call<{ branches: NeonBranch[] }>('GET', `/projects/${projectId}/branches`);
    const b = ref === undefined ? branches.find((x) => x.default) : branches.find((x) => x.id === ref) ?? branches.find((x) => x.name === ref);
    if (!b) throw new CliError(`no branch ${JSON.stringify(ref ?? 'default')} in project ${projectId}; branches: ${branches.map((x) => x.name).join(', ')}`);
    return b;
  }
}
