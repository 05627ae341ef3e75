// EndpointDirectory over HTTP, for a proxy running apart from the control plane. JSON routes:
//   GET  /v1/endpoints/:id/roles/:role  -> 200 {"verifier": "SCRAM-SHA-256$..."} | 404 (unknown endpoint or role)
//   POST /v1/endpoints/:id/wake         -> 200 {"host": "...", "port": 5432, "password": "..."} once the compute
//                                          accepts connections; an error status otherwise, with an optional body
//                                          {"message": "<user-facing text>", "reason": "ENDPOINT_IDLE", "retriable": true}
//   POST /v1/endpoints/:id/activity     -> 204 (best effort, throttled per endpoint)
//   GET  /v1/invalidations?after=N&epoch=E&wait_ms=W -> 200 {"epoch", "reset", "last", "events": [{"seq",
//                                          "endpoint_id", "role"}]}, held up to W ms until there is news (long poll)
// An optional bearer token authenticates the proxy to the service.
import http from 'node:http';
import https from 'node:https';
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

class StaleSocket extends Error {}

export class HttpEndpointDirectory implements EndpointDirectory {
  private readonly base: string;
  private readonly opts: HttpDirectoryOptions;
  private readonly lastActivity = new Map<string, number>();
  private readonly agent: http.Agent;
  private readonly secure: boolean;

  constructor(baseUrl: string, opts: HttpDirectoryOptions = {}) {
    this.base = baseUrl.replace(/\/+$/, '');
    this.opts = opts;
    this.secure = new URL(this.base).protocol === 'https:';
    this.agent = this.secure ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  }

  /**
   * A GET with node:http on kept-alive connections: the role lookup runs on every SQL-over-HTTP request, and
   * fetch() costs several times more CPU per call. Same errors as request() + failure().
   */
  private async get(path: string): Promise<{ status: number; body: string }> {
    try {
      return await this.getOnce(path);
    } catch (err) {
      // The control plane may close a kept-alive connection just as it is reused: once more on a fresh one.
      if (err instanceof StaleSocket) return this.getOnce(path);
      throw err;
    }
  }

  private getOnce(path: string): Promise<{ status: number; body: string }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    const timeoutMs = this.opts.timeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      const unreachable = (err: unknown): void =>
        reject(new DirectoryError(`control plane unreachable: ${String(err)}`, { status: 502, retriable: true }));
      const req = (this.secure ? https : http).request(this.base + path, { method: 'GET', headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          unreachable(err);
        });
      });
      const timer = setTimeout(() => req.destroy(new Error('The operation was aborted due to timeout')), timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) reject(new StaleSocket());
        else unreachable(err);
      });
      req.end();
    });
  }

  private static failureFrom(status: number, text: string): DirectoryError {
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
    return new DirectoryError(`control plane answered ${status}${reason ? ` (${reason})` : ''}`, { status, retriable, userMessage });
  }

  private async request(method: string, path: string): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    try {
      return await fetch(this.base + path, { method, headers, signal: AbortSignal.timeout(this.opts.timeoutMs ?? 60_000) });
    } catch (err) {
      // Transport failure: the control plane may be restarting, so retriable.
      throw new DirectoryError(`control plane unreachable: ${String(err)}`, { status: 502, retriable: true });
    }
  }

  private static async failure(res: Response): Promise<DirectoryError> {
    return HttpEndpointDirectory.failureFrom(res.status, await res.text().catch(() => ''));
  }

  async lookupRole(endpointId: string, role: string): Promise<RoleSecret | null> {
    const res = await this.get(`/v1/endpoints/${encodeURIComponent(endpointId)}/roles/${encodeURIComponent(role)}`);
    if (res.status === 404) return null;
    if (res.status < 200 || res.status > 299) throw HttpEndpointDirectory.failureFrom(res.status, res.body);
    const body = JSON.parse(res.body) as { verifier?: unknown } | null;
    if (typeof body?.verifier !== 'string') throw new DirectoryError('control plane sent no verifier');
    return { verifier: body.verifier };
  }

  async wake(endpointId: string): Promise<ComputeAddress> {
    const res = await this.request('POST', `/v1/endpoints/${encodeURIComponent(endpointId)}/wake`);
    if (!res.ok) throw await HttpEndpointDirectory.failure(res);
    const body = (await res.json()) as { host?: unknown; port?: unknown; password?: unknown };
    if (typeof body.host !== 'string' || typeof body.port !== 'number' || typeof body.password !== 'string') {
      throw new DirectoryError('control plane sent a malformed compute address');
    }
    return { host: body.host, port: body.port, password: body.password };
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
      (res) => res.body?.cancel(),
      () => {},
    );
  }
}
