// Client of a compute host's control API (compute/host/api.ts): start, list and stop computes, over
// lib/internal-client.ts with the host's API token (LAKEBASE_COMPUTE_API_TOKEN) as a bearer token. The wire types
// are the host's own (compute/host/api-types.ts).
import type { AdminSqlAnswer, AdminSqlRequest, ComputeInfo, EngineName, StartAnswer, StartRequest, TemplateAnswer } from '../compute/host/api-types.ts';
import { ServiceError } from '../lib/errors.ts';
import { InternalClient } from '../lib/internal-client.ts';

export type { ComputeInfo, StartAnswer, StartRequest as StartComputeRequest } from '../compute/host/api-types.ts';

/** A compute host's refusal (its status), or status 0 when it did not answer (down, or no answer in 60 s). */
export class ComputeHostError extends ServiceError {
  override name = 'ComputeHostError';
}

/** Every call waits at most this long. */
const DEADLINE_MS = 60_000;
/**
 * A start waits for the compute to accept connections, and first, on a busy host, for memory (60 s by default,
 * --start-queue-timeout-s): the host's own refusal should arrive, not this deadline.
 */
const START_DEADLINE_MS = 120_000;

export class ComputeHostClient {
  readonly baseUrl: string;
  private readonly client: InternalClient;

  constructor(baseUrl: string, token?: string) {
    // the host's own text, with this host's URL in front (which of several hosts refused)
    this.client = new InternalClient(baseUrl, { service: 'compute host', kind: 'compute', token, timeoutMs: DEADLINE_MS, prefixErrors: false });
    this.baseUrl = this.client.baseUrl;
  }

  private async call<T>(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    try {
      return await this.client.json<T>(method, path, body, timeoutMs === undefined ? {} : { timeoutMs });
    } catch (e) {
      if (!(e instanceof ServiceError)) throw e;
      const message = e.status === 0 ? e.message : `compute host ${this.baseUrl}: ${e.message}`;
      throw new ComputeHostError(e.status, e.code, message, { kind: 'compute', cause: e.cause ?? e });
    }
  }

  /** Answers once the compute accepts connections; a host short of memory queues the start first. */
  start(req: StartRequest): Promise<StartAnswer> {
    return this.call('POST', '/v1/computes', req, START_DEADLINE_MS);
  }

  /** Runs statements as the compute's superuser (a Postgres refusal is a 400 `postgres_error`). */
  adminSql(computeId: string, req: AdminSqlRequest): Promise<AdminSqlAnswer> {
    return this.call('POST', `/v1/computes/${encodeURIComponent(computeId)}/sql`, req);
  }

  /** Makes the engine's template timeline on this host (initdb once); takes seconds. */
  createTemplate(engine: EngineName): Promise<TemplateAnswer> {
    return this.call('POST', '/v1/templates', { engine });
  }

  /** The compute, or null when the host does not run it (e.g. the host restarted) or does not answer in `timeoutMs`. */
  async get(computeId: string, timeoutMs?: number): Promise<ComputeInfo | null> {
    try {
      return await this.call<ComputeInfo>('GET', `/v1/computes/${encodeURIComponent(computeId)}`, undefined, timeoutMs);
    } catch (e) {
      if (e instanceof ComputeHostError && (e.status === 404 || e.status === 0)) return null;
      throw e;
    }
  }

  /** Whether the host answers its /healthz within `timeoutMs` (a host whose heartbeats are late may just be busy). */
  async answers(timeoutMs: number): Promise<boolean> {
    return this.call('GET', '/healthz', undefined, timeoutMs).then(() => true, () => false);
  }

  async list(timeoutMs?: number): Promise<ComputeInfo[]> {
    return (await this.call<{ computes: ComputeInfo[] }>('GET', '/v1/computes', undefined, timeoutMs)).computes;
  }

  /** `immediate`: killed without a shutdown checkpoint or any wait (its storage node is gone). */
  async stop(computeId: string, opts: { immediate?: boolean } = {}): Promise<void> {
    try {
      await this.call('DELETE', `/v1/computes/${encodeURIComponent(computeId)}${opts.immediate ? '?immediate=true' : ''}`);
    } catch (e) {
      if (e instanceof ComputeHostError && e.status === 404) return; // already gone
      throw e;
    }
  }

  /** Closes idle kept-alive connections to the host. */
  close(): void {
    this.client.close();
  }
}
