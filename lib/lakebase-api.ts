// A client of the lakebase public API (Neon's API v2 shapes), shared by the CLI and the MCP server. Errors are the
// one error model's: the API's own status, code and message (lib/errors.ts), or status 0 when it is unreachable.
// The fetch is injectable so that the control plane can serve its own /mcp through its API in process.
import type { NeonBranch } from '../control-plane/api/neon-types.ts';
import { decodeErrorResponse, ServiceError, unreachable } from './errors.ts';

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface LakebaseApiOptions {
  /** The API's base, e.g. http://127.0.0.1:9871/api/v2. */
  apiUrl: string;
  apiKey: string;
  fetch?: FetchLike;
  /** A call that takes longer is abandoned (a wake or a branch can take seconds, never minutes). */
  timeoutMs?: number;
}

export class LakebaseApi {
  readonly apiUrl: string;
  private readonly apiKey: string;
  private readonly fetchFn: FetchLike;
  private readonly timeoutMs: number;

  constructor(opts: LakebaseApiOptions) {
    this.apiUrl = opts.apiUrl.replace(/\/+$/, '');
    this.apiKey = opts.apiKey;
    this.fetchFn = opts.fetch ?? ((url, init) => fetch(url, init));
    this.timeoutMs = opts.timeoutMs ?? 120_000;
  }

  async call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await this.fetchFn(this.apiUrl + path, {
        method,
        headers: { authorization: `Bearer ${this.apiKey}`, 'content-type': 'application/json', accept: 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw unreachable('the lakebase API', this.apiUrl, e, 'control_plane');
    }
    const text = await res.text();
    if (!res.ok) throw decodeErrorResponse('lakebase API', res.status, text, { prefix: false });
    try {
      return (text ? JSON.parse(text) : {}) as T;
    } catch {
      throw new ServiceError(502, 'bad_answer', `the lakebase API answered something that is not JSON: ${text.slice(0, 200)}`);
    }
  }

  /** A branch by id or name; none given: the project's default branch. */
  async branch(projectId: string, ref?: string): Promise<NeonBranch> {
    const { branches } = await this.call<{ branches: NeonBranch[] }>('GET', `/projects/${encodeURIComponent(projectId)}/branches`);
    const b = ref === undefined ? branches.find((x) => x.default) : branches.find((x) => x.id === ref) ?? branches.find((x) => x.name === ref);
    if (!b) {
      throw new ServiceError(404, 'BRANCH_NOT_FOUND', `no branch ${JSON.stringify(ref ?? 'default')} in project ${projectId}; its branches: ${branches.map((x) => `${x.name} (${x.id})`).join(', ')}`);
    }
    return b;
  }
}
