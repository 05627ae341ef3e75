// The lakebase the Workers tests talk to, behind one small interface, so that the backend is chosen on one
// line (`startBackend` below):
//   - startLakebaseBackend: the whole lakebase as processes (`lakebase start`: storage node, compute host,
//     control plane, proxy), with a real project whose endpoint can be suspended;
//   - startProxyBackend: the proxy in front of a native PostgreSQL (no compute to suspend).
import pg from 'pg';
import { startLakebaseStack } from './lakebase-stack.ts';
import { DATABASE, ENDPOINT, PASSWORD, USER, startProxyStack } from './proxy-stack.ts';

export interface WorkersBackend {
  name: string;
  /** Origin of the proxy's HTTP + WebSocket listener (LAKEBASE_PROXY for the Workers). */
  proxyOrigin: string;
  /** The project's connection string, as a Worker's DATABASE_URL. */
  connectionString: string;
  /** node-postgres to the proxy's Postgres TCP port, same role and database: the reference side. */
  tcpConfig(): pg.ClientConfig;
  /** Suspends the endpoint's compute (scale to zero); null when the backend has no compute to suspend. */
  suspend: (() => Promise<void>) | null;
  close(): Promise<void>;
}

export async function startLakebaseBackend(): Promise<WorkersBackend> {
  const stack = await startLakebaseStack();
  return {
    name: 'lakebase',
    proxyOrigin: new URL(stack.sqlUrl).origin,
    connectionString: stack.project.connectionString,
    tcpConfig: () => ({ connectionString: stack.project.connectionString }),
    suspend: () => stack.suspend(),
    close: () => stack.stop(),
  };
}

export async function startProxyBackend(): Promise<WorkersBackend> {
  const stack = await startProxyStack();
  return {
    name: 'proxy + native PostgreSQL',
    proxyOrigin: `http://127.0.0.1:${stack.proxy.httpPort}`,
    connectionString: stack.connString(),
    tcpConfig: () => ({
      host: '127.0.0.1',
      port: stack.proxy.tcpPort ?? undefined,
      user: USER,
      password: PASSWORD,
      database: DATABASE,
      options: `endpoint=${ENDPOINT}`,
    }),
    suspend: null,
    close: () => stack.close(),
  };
}

/** The backend every workers-*.test.ts uses. */
export const startBackend: () => Promise<WorkersBackend> = startLakebaseBackend;

/** A pg client to the proxy over TCP, connected. */
export async function tcpClient(backend: WorkersBackend): Promise<pg.Client> {
  const client = new pg.Client(backend.tcpConfig());
  await client.connect();
  return client;
}
