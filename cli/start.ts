// `lakebase start`: runs the whole lakebase on this machine as supervised processes (storage node, compute host,
// control plane, proxy), creates a default project on first start, prints how to connect, and writes
// <dir>/local.json for tools and tests, always with the ports this start listens on. Every internal API gets a
// credential made once per directory (secrets.json). Ctrl-C or SIGTERM stops the services in dependency order
// (proxy, control plane, compute host, storage node), each after the previous one has exited, so every compute
// stops cleanly while the storage node is still up.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../lib/free-port.ts';
import { Supervisor } from './supervisor.ts';
import type { ServiceSpec, StopOutcome } from './supervisor.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** How long one service has to stop after SIGTERM before it is killed. */
const STOP_GRACE_MS = 30_000;

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
/** Each secret and how to make it; a secrets.json from an older version gets the missing ones added. */
const SECRET_MAKERS = {
  apiKey: () => 'lb_' + hex(24),
  internalToken: () => hex(24),
  computeToken: () => hex(24),
  secretKey: () => hex(32),
  storageToken: () => hex(24),
  computeApiToken: () => hex(24),
};
export type Secrets = Record<keyof typeof SECRET_MAKERS, string>;

export interface LocalInfo {
  apiUrl: string;
  apiKey: string;
  sqlUrl: string;
  wsProxy: string;
  tcp: { host: string; port: number };
  storageUrl: string;
  project: {
    id: string;
    branchId: string;
    endpointId: string;
    connectionString: string;
    pooledConnectionString: string;
  };
}

/** Secrets are made once per state directory and kept (0600), so the API key survives restarts. */
export async function loadSecrets(dir: string): Promise<Secrets> {
  const path = join(dir, 'secrets.json');
  const old = existsSync(path) ? (JSON.parse(await readFile(path, 'utf8')) as Partial<Secrets>) : {};
  const keys = Object.keys(SECRET_MAKERS) as (keyof Secrets)[];
  const s = { ...old } as Secrets;
  for (const k of keys) if (typeof old[k] !== 'string' || !old[k]) s[k] = SECRET_MAKERS[k]();
  if (keys.some((k) => s[k] !== old[k])) {
    await writeFile(path, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
    await chmod(path, 0o600);
  }
  return s;
}

/** A port: the one asked for, else 0 (the service binds any free port and reports it) or the default. */
function port(value: string | undefined, fallback: number, auto: boolean): number {
  if (value !== undefined) return Number(value);
  return auto ? 0 : fallback;
}

function portOf(url: unknown): string {
  return new URL(String(url)).port;
}

async function api<T>(apiUrl: string, apiKey: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(apiUrl + path, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`control plane ${method} ${path} answered ${res.status}: ${text}`);
  return JSON.parse(text) as T;
}

interface CreatedProjectResponse {
  project: { id: string };
  branch: { id: string };
  endpoints: { id: string }[];
  roles: { name: string; password: string }[];
  databases: { name: string }[];
}

interface Ports {
  storage: number;
  compute: number;
  api: number;
  http: number;
  /** undefined: any free port (see startFront). */
  tcp: number | undefined;
}

interface Front {
  cpUrl: string;
  httpPort: number;
  tcpPort: number;
}

/**
 * The control plane and the proxy. They need each other's address: the proxy asks the control plane (its URL),
 * and the control plane names the proxy's TCP port in every connection URI it returns. With auto ports, the
 * control plane binds port 0 and the proxy's TCP port is picked just before (lib/free-port.ts); if another process
 * takes it in between, the proxy fails to start, and both start again with another port. Every other port is
 * bound by the service itself and read from its ready line.
 */
async function startFront(sv: Supervisor, ports: Ports, specs: { controlPlane: (tcp: number) => ServiceSpec; proxy: (cpUrl: string, tcp: number) => ServiceSpec }): Promise<Front> {
  for (let attempt = 1; ; attempt++) {
    const tcp = ports.tcp ?? (await freePort());
    const cp = await sv.start(specs.controlPlane(tcp));
    const cpUrl = String(cp.ready.url);
    try {
      const proxy = await sv.start(specs.proxy(cpUrl, tcp));
      return { cpUrl, httpPort: Number(proxy.ready.httpPort), tcpPort: Number(proxy.ready.tcpPort) };
    } catch (e) {
      if (ports.tcp !== undefined || attempt >= 3 || sv.isStopping) throw e;
      process.stderr.write(`lakebase: the proxy could not start on TCP port ${tcp} (${(e as Error).message}); trying another port\n`);
      await sv.stop('control-plane', STOP_GRACE_MS);
    }
  }
}

interface Login {
  role: string;
  password: string;
  database: string;
}

function connectionString(login: Login, tcpPort: number, endpointId: string): string {
  const cred = `${encodeURIComponent(login.role)}:${encodeURIComponent(login.password)}`;
  return `postgresql://${cred}@127.0.0.1:${tcpPort}/${encodeURIComponent(login.database)}?options=endpoint%3D${endpointId}`;
}

function projectInfo(ids: { id: string; branchId: string; endpointId: string }, login: Login, tcpPort: number): LocalInfo['project'] {
  return {
    ...ids,
    connectionString: connectionString(login, tcpPort, ids.endpointId),
    pooledConnectionString: connectionString(login, tcpPort, `${ids.endpointId}-pooler`),
  };
}

/**
 * The default project, made on first start and kept across restarts; its connection strings are built anew each
 * start with this start's TCP port and the role's current password (revealed by the API; the one local.json had
 * if the API cannot reveal it).
 */
async function defaultProject(cpUrl: string, apiKey: string, previous: Partial<LocalInfo>, tcpPort: number): Promise<LocalInfo['project']> {
  const known = previous.project;
  if (known && (await fetch(`${cpUrl}/api/v2/projects/${known.id}`, { headers: { authorization: `Bearer ${apiKey}` } })).ok) {
    const url = new URL(known.connectionString);
    const login = { role: decodeURIComponent(url.username), password: decodeURIComponent(url.password), database: decodeURIComponent(url.pathname.slice(1)) };
    const reveal = `/api/v2/projects/${known.id}/branches/${known.branchId}/roles/${encodeURIComponent(login.role)}/reveal_password`;
    login.password = await api<{ password: string }>(cpUrl, apiKey, 'GET', reveal).then((r) => r.password, () => login.password);
    return projectInfo(known, login, tcpPort);
  }
  const created = await api<CreatedProjectResponse>(cpUrl, apiKey, 'POST', '/api/v2/projects', { project: { name: 'default' } });
  const role = created.roles[0];
  const ids = { id: created.project.id, branchId: created.branch.id, endpointId: created.endpoints[0].id };
  return projectInfo(ids, { role: role.name, password: role.password, database: created.databases[0].name }, tcpPort);
}

function banner(local: LocalInfo, dir: string, localPath: string): string {
  return [
    '',
    'lakebase is running',
    '',
    `  connection string  ${local.project.connectionString}`,
    `  SQL over HTTP      ${local.sqlUrl}`,
    `  API                ${local.apiUrl}   (Authorization: Bearer ${local.apiKey})`,
    '',
    '  With @neondatabase/serverless:',
    `    neonConfig.fetchEndpoint = () => '${local.sqlUrl}';`,
    `    neonConfig.wsProxy = () => '${local.wsProxy}';`,
    '    neonConfig.useSecureWebSocket = false;',
    '',
    `  psql '${local.project.connectionString}'`,
    '',
    `  state in ${dir}; details in ${localPath}`,
    '  Ctrl-C to stop.',
    '',
  ].join('\n') + '\n';
}

function parseStartArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      dir: { type: 'string' },
      'storage-port': { type: 'string' },
      'compute-port': { type: 'string' },
      'api-port': { type: 'string' },
      'http-port': { type: 'string' },
      'tcp-port': { type: 'string' },
      'auto-ports': { type: 'boolean' },
      quiet: { type: 'boolean' },
    },
  }).values;
}

/** Progress of a stop on stderr: "stopping proxy..." then "stopping proxy... done". */
function stopProgress(name: string, outcome?: StopOutcome, ms?: number): void {
  const how = outcome === undefined ? '' : outcome === 'killed' ? ` killed (no exit within ${STOP_GRACE_MS / 1000} s of SIGTERM)` : ` done (${ms} ms)`;
  process.stderr.write(`lakebase: stopping ${name}...${how}\n`);
}

export async function start(argv: string[]): Promise<void> {
  const values = parseStartArgs(argv);
  const env = process.env;
  const dir = resolve(values.dir ?? env.LAKEBASE_DIR ?? '.lakebase');
  await mkdir(dir, { recursive: true });
  const auto = values['auto-ports'] ?? env.LAKEBASE_AUTO_PORTS === '1';
  const tcpAsked = values['tcp-port'] ?? env.LAKEBASE_PROXY_TCP_PORT;
  const tcp = tcpAsked === undefined ? (auto ? 0 : 5432) : Number(tcpAsked);
  const ports: Ports = {
    storage: port(values['storage-port'] ?? env.LAKEBASE_STORAGE_PORT, 9870, auto),
    compute: port(values['compute-port'] ?? env.LAKEBASE_COMPUTE_PORT, 9872, auto),
    api: port(values['api-port'] ?? env.LAKEBASE_API_PORT, 9871, auto),
    http: port(values['http-port'] ?? env.LAKEBASE_PROXY_HTTP_PORT, 4444, auto),
    tcp: tcp === 0 ? undefined : tcp,
  };
  const secrets = await loadSecrets(dir);
  const quiet = values.quiet ?? false;
  // services.json names each service's pid (updated when one restarts), for operators and crash tests.
  const supervisor = new Supervisor(
    (line) => {
      if (!quiet) process.stderr.write(line + '\n');
    },
    (pids) => void writeFile(join(dir, 'services.json'), JSON.stringify(pids, null, 2) + '\n').catch(() => {}),
  );

  // One stop for everything: a signal during the start stops what has started so far, in order.
  let stopping: Promise<void> | null = null;
  const stopServices = () => (stopping ??= supervisor.stopAll(STOP_GRACE_MS, stopProgress));
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`lakebase: ${sig}: already stopping, one service after the other (each has ${STOP_GRACE_MS / 1000} s)\n`);
      return;
    }
    process.stderr.write(`lakebase: ${sig}: stopping the services in order; each flushes to the object store first\n`);
    void stopServices().then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const local = await startAll(supervisor, { dir, ports, secrets });
    const localPath = join(dir, 'local.json');
    await writeFile(localPath, JSON.stringify(local, null, 2) + '\n', { mode: 0o600 });
    process.stdout.write(banner(local, dir, localPath));
  } catch (e) {
    const interrupted = stopping !== null;
    if (!interrupted) process.stderr.write(`lakebase start failed: ${(e as Error).message}\n`);
    await stopServices();
    process.exit(interrupted ? 0 : 1);
  }
}

/** Starts the four services in dependency order and returns what local.json says about them. */
async function startAll(sv: Supervisor, o: { dir: string; ports: Ports; secrets: Secrets }): Promise<LocalInfo> {
  const { dir, ports, secrets } = o;
  const storeEnv: Record<string, string> = {};
  if (!process.env.LAKEBASE_S3_BUCKET && !process.env.LAKEBASE_OBJECT_STORE_DIR) storeEnv.LAKEBASE_OBJECT_STORE_DIR = join(dir, 'objects');
  const storageArgs = (p: string) => ['--data-dir', join(dir, 'storage-node'), '--port', p];
  const storage = await sv.start({
    name: 'storage-node',
    script: join(ROOT, 'storage-node/main.ts'),
    args: storageArgs(String(ports.storage)),
    restartArgs: (ready) => storageArgs(portOf(ready.url)),
    env: { ...storeEnv, LAKEBASE_STORAGE_TOKEN: secrets.storageToken },
    readyMessage: 'storage node listening',
  });
  const storageUrl = String(storage.ready.url);
  const computeArgs = (p: string) => ['--storage-url', storageUrl, '--port', p];
  const computeHost = await sv.start({
    name: 'compute-host',
    script: join(ROOT, 'compute/main.ts'),
    args: computeArgs(String(ports.compute)),
    restartArgs: (ready) => computeArgs(portOf(ready.url)),
    env: { LAKEBASE_COMPUTE_TOKEN: secrets.computeToken, LAKEBASE_STORAGE_TOKEN: secrets.storageToken, LAKEBASE_COMPUTE_API_TOKEN: secrets.computeApiToken },
    readyMessage: 'compute host listening',
  });
  const computeUrl = String(computeHost.ready.url);
  // Endpoint host names (ep-....lakebase.localhost) do not resolve on most machines: connection URIs name
  // 127.0.0.1 and carry the endpoint in options, which every client (psql, pg, the driver) passes on.
  const cpArgs = (p: string, tcp: number) => ['--storage-url', storageUrl, '--compute-host', computeUrl, '--port', p, '--proxy-port', String(tcp), '--connection-host', '127.0.0.1'];
  const proxyArgs = (cpUrl: string, http: string, tcp: string) => ['--directory-url', `${cpUrl}/internal`, '--http-port', http, '--tcp-port', tcp, '--base-domain', 'lakebase.localhost'];
  const front = await startFront(sv, ports, {
    controlPlane: (tcp) => ({
      name: 'control-plane',
      script: join(ROOT, 'control-plane/main.ts'),
      args: cpArgs(String(ports.api), tcp),
      restartArgs: (ready) => cpArgs(portOf(ready.url), tcp),
      env: {
        ...storeEnv,
        LAKEBASE_API_KEY: secrets.apiKey,
        LAKEBASE_INTERNAL_TOKEN: secrets.internalToken,
        LAKEBASE_COMPUTE_TOKEN: secrets.computeToken,
        LAKEBASE_SECRET_KEY: secrets.secretKey,
        LAKEBASE_STORAGE_TOKEN: secrets.storageToken,
        LAKEBASE_COMPUTE_API_TOKEN: secrets.computeApiToken,
      },
      readyMessage: 'control plane listening',
    }),
    proxy: (cpUrl, tcp) => ({
      name: 'proxy',
      script: join(ROOT, 'proxy/main.ts'),
      args: proxyArgs(cpUrl, String(ports.http), String(tcp)),
      restartArgs: (ready) => proxyArgs(cpUrl, String(ready.httpPort), String(ready.tcpPort)),
      env: { LAKEBASE_PROXY_DIRECTORY_TOKEN: secrets.internalToken },
      readyMessage: 'httpPort',
    }),
  });

  const localPath = join(dir, 'local.json');
  const previous = existsSync(localPath) ? (JSON.parse(await readFile(localPath, 'utf8')) as Partial<LocalInfo>) : {};
  return {
    apiUrl: `${front.cpUrl}/api/v2`,
    apiKey: secrets.apiKey,
    sqlUrl: `http://127.0.0.1:${front.httpPort}/sql`,
    wsProxy: `127.0.0.1:${front.httpPort}/v2`,
    tcp: { host: '127.0.0.1', port: front.tcpPort },
    storageUrl,
    project: await defaultProject(front.cpUrl, secrets.apiKey, previous, front.tcpPort),
  };
}
