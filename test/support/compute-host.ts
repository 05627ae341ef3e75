// Compute hosts for tests: as a real process (`node compute/main.ts`, for kill -9, with a random API token) and a
// small client of the host's control API.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ServiceError, decodeErrorResponse } from '../../lib/errors.ts';

const MAIN = fileURLToPath(new URL('../../compute/main.ts', import.meta.url));

export interface HostProcess {
  url: string;
  /** The control API's bearer token. */
  apiToken: string;
  proc: ChildProcess;
  api: HostApi;
  /** SIGKILL, and wait for the process to be gone. */
  kill9(): Promise<void>;
  /** SIGTERM (every compute stops cleanly), and wait. */
  stop(): Promise<void>;
  output(): string;
}

export async function startHostProcess(opts: { storageUrl: string; storageToken?: string; token: string; args?: string[]; env?: Record<string, string> }): Promise<HostProcess> {
  const apiToken = randomBytes(16).toString('hex');
  const proc = spawn(process.execPath, [MAIN, '--port', '0', '--storage-url', opts.storageUrl, '--token', opts.token, ...(opts.args ?? [])], {
    env: {
      ...process.env, LAKEBASE_LOG_LEVEL: 'info', LAKEBASE_COMPUTE_API_TOKEN: apiToken,
      ...(opts.storageToken ? { LAKEBASE_STORAGE_TOKEN: opts.storageToken } : {}), ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`compute host did not start in 60 s:\n${out}`)), 60_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('"compute host listening"')) continue;
        clearTimeout(timer);
        resolve((JSON.parse(line) as { url: string }).url);
        return;
      }
    });
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`compute host exited with ${code} before listening:\n${out}`));
    });
  });
  const alive = (): boolean => proc.exitCode === null && proc.signalCode === null;
  return {
    url,
    apiToken,
    proc,
    api: new HostApi(url, apiToken),
    output: () => out,
    kill9: async () => {
      if (alive()) proc.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (alive()) proc.kill('SIGTERM');
      await exited;
    },
  };
}

/** The compute host's answer to a start (its own type: one definition for both sides of the wire). */
export type { StartAnswer as StartedCompute } from '../../compute/host/host.ts';
import type { StartAnswer as StartedCompute } from '../../compute/host/host.ts';

/** An error answer of the host's API, decoded the way every client decodes one (lib/errors.ts). */
export class HostApiError extends ServiceError {
  override name = 'HostApiError';

  static from(status: number, text: string): HostApiError {
    const e = decodeErrorResponse('compute host', status, text, { kind: 'compute', prefix: false });
    return new HostApiError(e.status, e.code, `${status} ${e.code}: ${e.message}`, { kind: e.kind, details: e.details });
  }
}

export class HostApi {
  readonly url: string;
  private readonly auth: Record<string, string>;
  constructor(url: string, token?: string) {
    this.url = url;
    this.auth = token ? { authorization: `Bearer ${token}` } : {};
  }

  async request<T>(method: string, path: string, body?: unknown, raw?: string): Promise<T> {
    const res = await fetch(this.url + path, {
      method,
      headers: { ...this.auth, ...(body !== undefined || raw !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: raw ?? (body !== undefined ? JSON.stringify(body) : undefined),
    });
    const text = await res.text();
    if (!res.ok) throw HostApiError.from(res.status, text);
    return (text ? JSON.parse(text) : {}) as T;
  }

  start(req: { computeId: string; timelineId: string; lsn?: number; readOnly?: boolean; database?: string; username?: string }): Promise<StartedCompute> {
    return this.request<StartedCompute>('POST', '/v1/computes', req);
  }

  stop(computeId: string): Promise<{ computeId: string; stopped: boolean; clean: boolean; lsn: number }> {
    return this.request('DELETE', `/v1/computes/${encodeURIComponent(computeId)}`);
  }

  async list(): Promise<Record<string, unknown>[]> {
    return (await this.request<{ computes: Record<string, unknown>[] }>('GET', '/v1/computes')).computes;
  }
}

/** A `pg` client connected to a compute with the host's token. */
export async function connectPg(c: { host: string; port: number }, token: string, opts: { user?: string; database?: string; applicationName?: string } = {}): Promise<pg.Client> {
  const client = new pg.Client({
    host: c.host, port: c.port, user: opts.user ?? 'postgres', database: opts.database ?? 'neondb', password: token,
    application_name: opts.applicationName, connectionTimeoutMillis: 10_000,
  });
  await client.connect();
  return client;
}
