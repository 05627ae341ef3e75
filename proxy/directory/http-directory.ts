// EndpointDirectory over HTTP, for a proxy running apart from the control plane. JSON routes:
//   GET  /v1/endpoints/:id/roles/:role  -> 200 {"verifier": "SCRAM-SHA-256$..."} | 404 (unknown endpoint or role)
//   POST /v1/endpoints/:id/wake         -> 200 {"host": "...", "port": 5432, "engine": "pglite", "password": "..."}
//                                          or {"host", "port", "engine": "postgres"} (no password: the proxy logs in
//                                          as each client's role) once the compute accepts connections; a missing
//                                          engine means pglite; `phases` (optional) the steps of the start it made,
//                                          in ms; an error status otherwise, with an optional body
//                                          {"message": "<user-facing text>", "reason": "ENDPOINT_IDLE", "retriable": true}
//   POST /v1/endpoints/:id/activity     -> 204 (best effort, throttled per endpoint)
//   GET  /v1/invalidations?after=N&epoch=E&wait_ms=W -> 200 {"epoch", "reset", "last", "events": [{"seq",
//                                          "endpoint_id", "role"}]}, held up to W ms until there is news (long poll)
// An optional bearer token authenticates the proxy to the service. Requests go through lib/internal-client.ts
// (kept-alive node:http: the role lookup runs on every SQL-over-HTTP request, and fetch() costs several times
// more CPU per call); the long poll stays on fetch (invalidation-feed.ts), which it aborts when the proxy stops.
import * as v from 'valibot';
import { InternalClient, type RawAnswer } from '../../lib/internal-client.ts';
import { parse } from '../../lib/validate.ts';
import { DirectoryError, type ComputeAddress, type EndpointDirectory, type InvalidationHandler, type RoleSecret } from './directory.ts';
import { followInvalidations } from './invalidation-feed.ts';

// Neon's transient control-plane reasons: worth a retry.
const TRANSIENT_REASONS = new Set(['RUNNING_OPERATIONS', 'CONCURRENCY_LIMIT_REACHED', 'LOCK_ALREADY_TAKEN', 'ENDPOINT_IDLE', 'PROJECT_UNDER_MAINTENANCE']);

export interface HttpDirectoryOptions {
  token?: string;
  /** Per request (Neon: 60 s; a wake may legitimately take a while). */
  timeoutMs?: number;
  activityIntervalMs?: number;
}

interface ErrorBody {
  message?: unknown;
  reason?: unknown;
  retriable?: unknown;
}

/** The DirectoryError an error answer stands for: Neon's `{"message", "reason", "retriable"}` body, if any. */
export function directoryFailure(status: number, text: string): DirectoryError {
  let body: ErrorBody = {};
  try {
    const parsed: unknown = JSON.parse(text);
    body = typeof parsed === 'object' && parsed !== null ? (parsed as ErrorBody) : {};
  } catch {
    body = {};
  }
  const reason = typeof body.reason === 'string' ? body.reason : undefined;
  const retriable = body.retriable === true || (reason !== undefined && TRANSIENT_REASONS.has(reason)) || status === 503;
  const userMessage = typeof body.message === 'string' && body.message !== '' ? body.message : undefined;
  return new DirectoryError(`control plane answered ${status}${reason ? ` (${reason})` : ''}`, { status, retriable, userMessage, code: reason });
}

/** `phases`: the wake's steps in ms, as the control plane measured them (optional: older control planes send none). */
const ADDRESS = { host: v.string(), port: v.number(), phases: v.optional(v.record(v.string(), v.number())) };

/** The wake answer: a password for `pglite` only (a `postgres` compute never gets the internal one). */
const WAKE_ANSWER = v.union([
  v.object({ ...ADDRESS, engine: v.optional(v.literal('pglite'), 'pglite'), password: v.string() }),
  v.object({ ...ADDRESS, engine: v.literal('postgres') }),
]);

/** The wake answer as a ComputeAddress (a missing engine is `pglite`, what every control plane sent before). */
export function computeAddress(body: unknown): ComputeAddress {
  return parse(WAKE_ANSWER, body, () => new DirectoryError('control plane sent a malformed compute address'));
}

export class HttpEndpointDirectory implements EndpointDirectory {
  private readonly base: string;
  private readonly opts: HttpDirectoryOptions;
  private readonly lastActivity = new Map<string, number>();
  private readonly client: InternalClient;

  constructor(baseUrl: string, opts: HttpDirectoryOptions = {}) {
    this.base = baseUrl.replace(/\/+$/, '');
    this.opts = opts;
    // Errors are decoded here (directoryFailure), not by the client: the client only reaches the service.
    this.client = new InternalClient(this.base, { service: 'control plane', kind: 'control_plane', token: opts.token, timeoutMs: opts.timeoutMs ?? 60_000, maxSockets: Infinity });
  }

  /** Any answer; no answer at all is a retriable 502 (the control plane may be restarting). */
  private async request(method: 'GET' | 'POST', path: string): Promise<RawAnswer> {
    try {
      return await this.client.raw(method, path, method === 'POST' ? { body: '' } : {});
    } catch (err) {
      // the client's text already reads "control plane <url> is unreachable: <why>"
      throw new DirectoryError(err instanceof Error ? err.message : String(err), {
        status: 502,
        retriable: true,
        code: 'control_plane_unreachable',
        cause: err,
      });
    }
  }

  async lookupRole(endpointId: string, role: string): Promise<RoleSecret | null> {
    const res = await this.request('GET', `/v1/endpoints/${encodeURIComponent(endpointId)}/roles/${encodeURIComponent(role)}`);
    if (res.status === 404) return null;
    if (res.status < 200 || res.status > 299) throw directoryFailure(res.status, res.body.toString('utf8'));
    const body = JSON.parse(res.body.toString('utf8')) as { verifier?: unknown } | null;
    if (typeof body?.verifier !== 'string') throw new DirectoryError('control plane sent no verifier');
    return { verifier: body.verifier };
  }

  async wake(endpointId: string): Promise<ComputeAddress> {
    const res = await this.request('POST', `/v1/endpoints/${encodeURIComponent(endpointId)}/wake`);
    if (res.status < 200 || res.status > 299) throw directoryFailure(res.status, res.body.toString('utf8'));
    return computeAddress(JSON.parse(res.body.toString('utf8')));
  }

  watchInvalidations(handler: InvalidationHandler): () => void {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    return followInvalidations(`${this.base}/v1/invalidations`, headers, handler);
  }

  noteActivity(endpointId: string): void {
    const now = Date.now();
    if (now - (this.lastActivity.get(endpointId) ?? 0) < (this.opts.activityIntervalMs ?? 10_000)) return;
    this.lastActivity.set(endpointId, now);
    this.request('POST', `/v1/endpoints/${encodeURIComponent(endpointId)}/activity`).then(
      () => {},
      () => {},
    );
  }
}
