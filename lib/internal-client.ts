// The one HTTP client of the internal APIs (storage node, compute host, the control plane's /internal routes):
// node:http(s) on kept-alive connections (about half the CPU of fetch() per call on loopback, which page reads
// and per-query role lookups feel), the service's bearer token on every request, a deadline per request, one
// retry when a kept-alive connection turns out to be closed, and every failure as a ServiceError (lib/errors.ts):
// an error answer decoded from either body shape, no answer at all as status 0 `unreachable`.
import http from 'node:http';
import https from 'node:https';
import { decodeErrorResponse, type ErrorKind, type ServiceError, unreachable } from './errors.ts';

export interface InternalClientOptions {
  /** Name used in error messages ("storage node", "compute host", "control plane"). */
  service: string;
  /** The ErrorKind of this service's failures (storage, compute, control_plane). */
  kind: ErrorKind;
  token?: string;
  /** Per request, including reading the answer (default 60 s). */
  timeoutMs?: number;
  maxSockets?: number;
  /** Put the service's name in front of error messages (default true). */
  prefixErrors?: boolean;
}

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RequestOptions {
  body?: string | Uint8Array;
  contentType?: string;
  timeoutMs?: number;
  headers?: Record<string, string>;
}

/** Thrown inside, never out: a kept-alive socket the server had closed; the request is sent once more. */
class StaleSocket extends Error {}

export class InternalClient {
  readonly baseUrl: string;
  private readonly opts: InternalClientOptions;
  private readonly url: URL;
  /** The base URL's own path ('' or e.g. '/internal'), put in front of every request's path. */
  private readonly basePath: string;
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;
  private readonly authorization: string | undefined;

  constructor(baseUrl: string, opts: InternalClientOptions) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.opts = opts;
    this.url = new URL(this.baseUrl);
    this.basePath = this.url.pathname.replace(/\/+$/, '');
    const secure = this.url.protocol === 'https:';
    this.transport = secure ? https : http;
    const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets ?? 64 };
    this.agent = secure ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
    this.authorization = opts.token ? `Bearer ${opts.token}` : undefined;
  }

  /** Any answer, error statuses included; only a transport failure throws (status 0). */
  async raw(method: string, path: string, ro: RequestOptions = {}): Promise<RawAnswer> {
    try {
      return await this.once(method, path, ro);
    } catch (e) {
      if (e instanceof StaleSocket) return this.once(method, path, ro);
      throw e;
    }
  }

  /** A 2xx answer, or the error it carried as a ServiceError. */
  async call(method: string, path: string, ro: RequestOptions = {}): Promise<RawAnswer> {
    const res = await this.raw(method, path, ro);
    if (res.status < 200 || res.status > 299) throw this.failure(res);
    return res;
  }

  /** JSON in (optional), JSON out. An empty 2xx body is `{}`. */
  async json<T>(method: string, path: string, body?: unknown, ro: Omit<RequestOptions, 'body' | 'contentType'> = {}): Promise<T> {
    const res = await this.call(method, path, body === undefined ? ro : { ...ro, body: JSON.stringify(body), contentType: 'application/json' });
    return (res.body.length === 0 ? {} : JSON.parse(res.body.toString('utf8'))) as T;
  }

  /** The ServiceError an error answer stands for. */
  failure(res: RawAnswer): ServiceError {
    return decodeErrorResponse(this.opts.service, res.status, res.body.toString('utf8'), { kind: this.opts.kind, prefix: this.opts.prefixErrors });
  }

  /** Closes idle keep-alive connections (a process can exit without waiting for them). */
  close(): void {
    this.agent.destroy();
  }

  private once(method: string, path: string, ro: RequestOptions): Promise<RawAnswer> {
    const headers: Record<string, string | number> = { accept: 'application/json', ...ro.headers };
    if (this.authorization) headers.authorization = this.authorization;
    if (ro.contentType) headers['content-type'] = ro.contentType;
    if (ro.body !== undefined) headers['content-length'] = typeof ro.body === 'string' ? Buffer.byteLength(ro.body) : ro.body.byteLength;
    const deadline = ro.timeoutMs ?? this.opts.timeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      const fail = (err: unknown): void => {
        clearTimeout(timer);
        reject(unreachable(this.opts.service, this.baseUrl, err, this.opts.kind));
      };
      const req = this.transport.request(
        { protocol: this.url.protocol, host: this.url.hostname, port: this.url.port, method, path: this.basePath + path, headers, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => {
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks) });
          });
          res.on('error', fail);
        },
      );
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${deadline} ms`)), deadline);
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
          clearTimeout(timer);
          reject(new StaleSocket());
        } else fail(err);
      });
      req.end(ro.body);
    });
  }
}
