// Client of a compute host's control API (compute/main.ts): start, list and stop computes. Sends the host's API
// token (LAKEBASE_COMPUTE_API_TOKEN) as a bearer token.
import { bearerHeader } from '../lib/http-guard.ts';

/** The compute host's own request type (compute/host/host.ts): one definition for both sides of the wire. */
export type { StartRequest as StartComputeRequest } from '../compute/host/host.ts';
import type { StartRequest as StartComputeRequest } from '../compute/host/host.ts';

export interface ComputeInfo {
  computeId: string;
  host: string;
  port: number;
  /** starting | running | restarting | stopping | stopped | failed */
  state?: string;
  timelineId?: string;
  lastActivityAt?: string | null;
  activeSessions?: number;
  inTransaction?: boolean;
}

export class ComputeHostError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'ComputeHostError';
    this.status = status;
  }
}

export class ComputeHostClient {
  readonly baseUrl: string;
  private readonly auth: Record<string, string>;

  constructor(baseUrl: string, token?: string) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.auth = bearerHeader(token);
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers: body === undefined ? this.auth : { ...this.auth, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (e) {
      throw new ComputeHostError(0, `compute host ${this.baseUrl} is unreachable: ${(e as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) {
      let message = text;
      try {
        const parsed = JSON.parse(text) as { error?: { message?: string }; message?: string };
        message = parsed.error?.message ?? parsed.message ?? text;
      } catch {
        // keep the raw text
      }
      throw new ComputeHostError(res.status, `compute host ${this.baseUrl}: ${message}`);
    }
    return (text ? JSON.parse(text) : {}) as T;
  }

  start(req: StartComputeRequest): Promise<ComputeInfo> {
    return this.call('POST', '/v1/computes', req);
  }

  /** The compute, or null when the host does not run it (e.g. the host restarted). */
  async get(computeId: string): Promise<ComputeInfo | null> {
    try {
      return await this.call<ComputeInfo>('GET', `/v1/computes/${encodeURIComponent(computeId)}`);
    } catch (e) {
      if (e instanceof ComputeHostError && (e.status === 404 || e.status === 0)) return null;
      throw e;
    }
  }

  async list(): Promise<ComputeInfo[]> {
    const r = await this.call<{ computes: ComputeInfo[] } | ComputeInfo[]>('GET', '/v1/computes');
    return Array.isArray(r) ? r : r.computes;
  }

  async stop(computeId: string): Promise<void> {
    try {
      await this.call('DELETE', `/v1/computes/${encodeURIComponent(computeId)}`);
    } catch (e) {
      if (e instanceof ComputeHostError && e.status === 404) return; // already gone
      throw e;
    }
  }
}
