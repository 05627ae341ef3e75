// A proxy in front of a real native PostgreSQL for tests: a TestDirectory (the EndpointDirectory a control
// plane will provide) whose endpoints all live on the cluster, roles with client passwords stored only as
// SCRAM verifiers, and one internal password the proxy uses towards PostgreSQL.
import pg from 'pg';
import { DirectoryError, type ComputeAddress, type EndpointDirectory, type RoleSecret } from '../../proxy/directory/directory.ts';
import { makeVerifier } from '../../proxy/auth/scram.ts';
import { startProxy, type ProxyConfig, type RunningProxy } from '../../proxy/server.ts';
import { createLogger } from '../../lib/logger.ts';
import { startNativePostgres, type NativePostgres, type NativePostgresOptions } from './native-postgres.ts';

interface TestEndpoint {
  address: ComputeAddress;
  roles: Map<string, string>;
  wakeDelayMs: number;
  /** Thrown by the next `n` wake calls (then cleared). */
  failures: DirectoryError[];
}

export class TestDirectory implements EndpointDirectory {
  readonly endpoints = new Map<string, TestEndpoint>();
  readonly wakeCalls = new Map<string, number>();
  readonly activity = new Map<string, number>();

  addEndpoint(id: string, address: ComputeAddress, wakeDelayMs = 0): void {
    this.endpoints.set(id, { address, roles: new Map(), wakeDelayMs, failures: [] });
  }

  async setRole(endpointId: string, role: string, password: string): Promise<void> {
    const ep = this.endpoints.get(endpointId);
    if (!ep) throw new Error(`no endpoint ${endpointId}`);
    ep.roles.set(role, await makeVerifier(password));
  }

  async lookupRole(endpointId: string, role: string): Promise<RoleSecret | null> {
    const verifier = this.endpoints.get(endpointId)?.roles.get(role);
    return verifier ? { verifier } : null;
  }

  async wake(endpointId: string): Promise<ComputeAddress> {
    this.wakeCalls.set(endpointId, (this.wakeCalls.get(endpointId) ?? 0) + 1);
    const ep = this.endpoints.get(endpointId);
    if (!ep) throw new DirectoryError('endpoint not found', { status: 404 });
    if (ep.wakeDelayMs) await new Promise((r) => setTimeout(r, ep.wakeDelayMs));
    const failure = ep.failures.shift();
    if (failure) throw failure;
    return ep.address;
  }

  noteActivity(endpointId: string): void {
    this.activity.set(endpointId, (this.activity.get(endpointId) ?? 0) + 1);
  }
}

export const ENDPOINT = 'ep-quiet-lake-123456';
export const BASE_DOMAIN = 'lakebase.local';
export const INTERNAL_PASSWORD = 'internal-compute-secret';
export const USER = 'alex';
export const PASSWORD = 's3cret-alex';
export const DATABASE = 'neondb';

export interface ProxyStack {
  pg: NativePostgres;
  proxy: RunningProxy;
  directory: TestDirectory;
  /** Connection string the driver uses (host under the base domain; no port). */
  connString(opts?: { user?: string; password?: string; database?: string; endpoint?: string; query?: string }): string;
  /** node-postgres config straight to PostgreSQL as the same role (the reference side of comparisons). */
  directConfig(): pg.ClientConfig;
  /** SQL as superuser, straight to PostgreSQL. */
  admin(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
  close(): Promise<void>;
}

export interface StackOptions {
  proxy?: Partial<ProxyConfig>;
  postgres?: NativePostgresOptions;
  wakeDelayMs?: number;
}

export async function startProxyStack(opts: StackOptions = {}): Promise<ProxyStack> {
  const pgServer = await startNativePostgres(opts.postgres);
  const adminClient = new pg.Client({ connectionString: pgServer.url() });
  const directory = new TestDirectory();
  let proxy: RunningProxy;
  try {
    await adminClient.connect();
    await adminClient.query(`CREATE ROLE ${USER} LOGIN PASSWORD '${INTERNAL_PASSWORD}'`);
    await adminClient.query(`CREATE DATABASE ${DATABASE} OWNER ${USER}`);
    directory.addEndpoint(ENDPOINT, { host: pgServer.host, port: pgServer.port, password: INTERNAL_PASSWORD, engine: 'pglite' }, opts.wakeDelayMs ?? 0);
    await directory.setRole(ENDPOINT, USER, PASSWORD);
    proxy = await startProxy({
      directory,
      baseDomains: [BASE_DOMAIN],
      logger: createLogger('proxy-test', process.env.LAKEBASE_LOG_LEVEL ?? 'silent'),
      // Short retries keep failure tests fast; the defaults are Neon's.
      connectRetry: { retries: 2, baseDelayMs: 20, factor: 2 },
      wakeRetry: { retries: 2, baseDelayMs: 20, factor: 2 },
      ...opts.proxy,
    });
  } catch (err) {
    await adminClient.end().catch(() => {});
    await pgServer.stop();
    throw err;
  }
  return {
    pg: pgServer,
    proxy,
    directory,
    connString(o = {}) {
      const user = encodeURIComponent(o.user ?? USER);
      const password = encodeURIComponent(o.password ?? PASSWORD);
      const q = o.query ? `?${o.query}` : '';
      return `postgresql://${user}:${password}@${o.endpoint ?? ENDPOINT}.${BASE_DOMAIN}/${o.database ?? DATABASE}${q}`;
    },
    directConfig() {
      return { host: pgServer.host, port: pgServer.port, user: USER, password: INTERNAL_PASSWORD, database: DATABASE };
    },
    admin(sql, params) {
      return adminClient.query(sql, params);
    },
    async close() {
      await proxy.close();
      await adminClient.end().catch(() => {});
      await pgServer.stop();
    },
  };
}
