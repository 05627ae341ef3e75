// `lakebase start`: runs the whole lakebase on this machine as supervised processes (M storage nodes over one
// bucket, the control plane, the proxy, and N compute hosts that register with the control plane), creates a default project on
// first start, prints how to connect, and writes
// <dir>/local.json for tools and tests, always with the ports this start listens on. The services' logs go to
// <dir>/logs/<service>.log (cli/service-logs.ts); while it starts, <dir>/starting.pid makes other `lakebase`
// commands wait for it (cli/start-marker.ts). Every internal API gets a credential made once per directory
// (secrets.json). Ctrl-C or SIGTERM stops the services in dependency order
// (proxy, control plane, compute hosts, storage node), each after the previous one has exited, so every compute
// stops cleanly while the storage node is still up. Services are named for what they are (`compute-host-1`,
// `storage-node-1`) in services.json and DIR/logs.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, defineConfig, envName, flag, helpText, integer, oneOf, option, parseConfig, port, text } from '../lib/config.ts';
import { ENGINES, type EngineName } from '../control-plane/engines.ts';
import type { Parsed, Values } from '../lib/config.ts';
import { freePort } from '../lib/free-port.ts';
import { CliError } from './commands/errors.ts';
import { ServiceLogs } from './service-logs.ts';
import type { TerminalMode } from './service-logs.ts';
import { markStarting } from './start-marker.ts';
import { localTlsCertificate, type LocalTlsFiles } from './local-tls.ts';
import { Supervisor } from './supervisor.ts';
import type { ServiceSpec, StopOutcome } from './supervisor.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** How long one service has to stop after SIGTERM before it is killed. */
const STOP_GRACE_MS = 30_000;
/** Endpoint host names are <endpoint id>.<this>; the local TLS certificate covers them. */
const BASE_DOMAIN = 'lakebase.localhost';

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
  /** The first storage node (templates are made there). */
  storageUrl: string;
  /** Every storage node, by service name. */
  storageNodes: Record<string, string>;
  /** The compute hosts' control APIs, by service name. */
  computeHosts: Record<string, string>;
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

/** As the API prints them (control-plane/api/views.ts): the endpoint in the password, which every client keeps. */
function connectionString(login: Login, tcpPort: number, endpointId: string): string {
  const cred = `${encodeURIComponent(login.role)}:${encodeURIComponent(`endpoint=${endpointId}$${login.password}`)}`;
  return `postgresql://${cred}@127.0.0.1:${tcpPort}/${encodeURIComponent(login.database)}`;
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
    // the password without the `endpoint=<id>$` prefix (older local.json files have none)
    const password = decodeURIComponent(url.password).replace(/^endpoint=[^;$]*[;$]/, '');
    const login = { role: decodeURIComponent(url.username), password, database: decodeURIComponent(url.pathname.slice(1)) };
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

/**
 * `lakebase start`'s own flags. Their environment names predate the LAKEBASE_<SERVICE>_<OPTION> rule and are
 * kept as they were documented (each names the service the port is for).
 */
const START_CONFIG = defineConfig({
  service: 'start',
  title: 'lakebase start: runs every service on this machine, supervised (a service that dies is restarted).',
  usage: 'lakebase start [--dir DIR] [--storage-port N] [--compute-port N] [--api-port N] [--http-port N] [--tcp-port N] [--auto-ports] [--quiet | --verbose]',
  options: {
    dir: option(text('DIR'), { help: 'state: object store folder, storage node disk, secrets, local.json', default: '.lakebase', env: 'LAKEBASE_DIR' }),
    storagePort: option(port(), { help: 'the first storage node (the others: any free port)', defaultText: '9870', env: 'LAKEBASE_STORAGE_PORT' }),
    storageNodes: option(integer({ min: 1, max: 16, unit: 'nodes' }), { help: 'storage nodes to run over the one bucket (storage-node-1, -2, ...); projects are spread over them', default: 1, env: 'LAKEBASE_STORAGE_NODES' }),
    computePort: option(port(), { help: "the first compute host's control API (the others: any free port)", defaultText: '9872', env: 'LAKEBASE_COMPUTE_PORT' }),
    computeHosts: option(integer({ min: 1, max: 16, unit: 'hosts' }), { help: 'compute hosts to run (compute-host-1, -2, ...); each registers with the control plane', default: 1, env: 'LAKEBASE_COMPUTE_HOSTS' }),
    apiPort: option(port(), { help: 'the control plane (API)', defaultText: '9871', env: 'LAKEBASE_API_PORT' }),
    httpPort: option(port(), { help: 'SQL over HTTP and WebSocket', defaultText: '4444', env: 'LAKEBASE_PROXY_HTTP_PORT' }),
    tcpPort: option(port(), { help: 'Postgres TCP', defaultText: '5432', env: 'LAKEBASE_PROXY_TCP_PORT' }),
    autoPorts: flag({ help: 'every port not given is any free one (several lakebases on one machine)', env: 'LAKEBASE_AUTO_PORTS' }),
    quiet: flag({ help: 'only the banner, restarts and errors on the terminal (every log line is in DIR/logs)', env: null }),
    verbose: flag({ help: "every service's log lines on stderr too, as they come (they are in DIR/logs either way)", env: 'LAKEBASE_VERBOSE' }),
    engine: option(oneOf(ENGINES), {
      help: 'engine of new projects: pglite (Postgres 18 in WebAssembly) or postgres (PostgreSQL 15 on FUSE; needs root, libfuse2, postgresql-15)',
      default: 'pglite',
      env: 'LAKEBASE_ENGINE',
    }),
  },
});

type StartValues = Values<typeof START_CONFIG.options>;

/** Where the state lives and which ports to ask for; null when --help was asked (and printed). */
function startOptions(argv: string[]): { dir: string; ports: Ports; terminal: TerminalMode; engine: EngineName; computeHosts: number; storageNodes: number } | null {
  let parsed: Parsed<typeof START_CONFIG.options>;
  try {
    parsed = parseConfig(START_CONFIG, argv, process.env);
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(`${e.message}; \`lakebase help\` shows the usage`, 2);
    throw e;
  }
  if (parsed.help) {
    process.stdout.write(helpText(START_CONFIG) + '\n');
    return null;
  }
  const v = parsed.values;
  if (v.quiet && v.verbose) throw new CliError('--quiet and --verbose contradict each other; `lakebase help` shows the usage', 2);
  return { dir: resolve(v.dir), ports: portsOf(v), terminal: v.verbose ? 'verbose' : v.quiet ? 'quiet' : 'normal', engine: v.engine, computeHosts: v.computeHosts, storageNodes: v.storageNodes };
}

/** Each port: the one asked for, else 0 with --auto-ports (the service binds any free one and reports it), else the default. */
function portsOf(v: StartValues): Ports {
  const pick = (asked: number | undefined, fallback: number) => asked ?? (v.autoPorts ? 0 : fallback);
  const tcp = pick(v.tcpPort, 5432);
  return {
    storage: pick(v.storagePort, 9870),
    compute: pick(v.computePort, 9872),
    api: pick(v.apiPort, 9871),
    http: pick(v.httpPort, 4444),
    tcp: tcp === 0 ? undefined : tcp,
  };
}

/** Progress of a stop on stderr: "stopping proxy..." then "stopping proxy... done". */
function stopProgress(name: string, outcome?: StopOutcome, ms?: number): void {
  const how = outcome === undefined ? '' : outcome === 'killed' ? ` killed (no exit within ${STOP_GRACE_MS / 1000} s of SIGTERM)` : ` done (${ms} ms)`;
  process.stderr.write(`lakebase: stopping ${name}...${how}\n`);
}

/** The supervisor: services' lines in DIR/logs (and what a person needs on stderr); services.json names each service's pid (updated on restarts). */
function supervisorFor(dir: string, terminal: TerminalMode): Supervisor {
  return new Supervisor(
    new ServiceLogs(dir, terminal),
    (pids) => void writeFile(join(dir, 'services.json'), JSON.stringify(pids, null, 2) + '\n').catch(() => {}),
  );
}

/**
 * One stop for everything: a signal during the start stops what has started so far, in order. Returns the stop
 * (the same promise however often called) and whether a signal began it.
 */
function stopOnSignals(sv: Supervisor): { stop: () => Promise<void>; interrupted: () => boolean } {
  let stopping: Promise<void> | null = null;
  const stop = () => (stopping ??= sv.stopAll(STOP_GRACE_MS, stopProgress));
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`lakebase: ${sig}: already stopping, one service after the other (each has ${STOP_GRACE_MS / 1000} s)\n`);
      return;
    }
    process.stderr.write(`lakebase: ${sig}: stopping the services in order; each flushes to the object store first\n`);
    void stop().then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return { stop, interrupted: () => stopping !== null };
}

export async function start(argv: string[]): Promise<void> {
  const opts = startOptions(argv);
  if (!opts) return;
  const { dir, ports, terminal, engine, computeHosts, storageNodes } = opts;
  await mkdir(dir, { recursive: true });
  const starting = markStarting(dir);
  const secrets = await loadSecrets(dir);
  const supervisor = supervisorFor(dir, terminal);
  const stops = stopOnSignals(supervisor);
  if (terminal !== 'quiet') process.stderr.write(`lakebase: starting in ${dir}; each service logs to ${join(dir, 'logs')} (\`lakebase logs\`)\n`);
  try {
    const local = await startAll(supervisor, { dir, ports, secrets, engine, computeHosts, storageNodes });
    const localPath = join(dir, 'local.json');
    await writeFile(localPath, JSON.stringify(local, null, 2) + '\n', { mode: 0o600 });
    starting.done();
    process.stdout.write(banner(local, dir, localPath));
  } catch (e) {
    const interrupted = stops.interrupted();
    if (!interrupted) process.stderr.write(`lakebase start failed: ${(e as Error).message}\n`);
    await stops.stop();
    process.exit(interrupted ? 0 : 1);
  }
}

interface StartContext {
  dir: string;
  ports: Ports;
  secrets: Secrets;
  /** The local-folder object store in DIR, unless the environment names one (a bucket or a folder). */
  storeEnv: Record<string, string>;
  /** Engine of new projects. */
  engine: EngineName;
  computeHosts: number;
  storageNodes: number;
}

/**
 * Storage node number `n` over the one bucket, with its own disk (DIR/storage-node for the first, as before there
 * were several; DIR/storage-node-N for the others), on the port asked for (on restart: the one it had).
 */
async function startStorage(sv: Supervisor, c: StartContext, n: number): Promise<[string, string]> {
  const name = `storage-node-${n}`;
  const args = (p: string) => ['--data-dir', join(c.dir, n === 1 ? 'storage-node' : name), '--port', p];
  const storage = await sv.start({
    name,
    script: join(ROOT, 'storage-node/main.ts'),
    args: args(String(n === 1 ? c.ports.storage : 0)),
    restartArgs: (ready) => args(portOf(ready.url)),
    env: { ...c.storeEnv, [envName('storage-node', 'token')]: c.secrets.storageToken },
    readyMessage: 'storage node listening',
  });
  return [name, String(storage.ready.url)];
}

/**
 * Compute host number `n`, on the storage node at `storageUrl`, registering with the control plane at `cpUrl`. It
 * stops after the control plane and before the storage node (and before the compute hosts started before it).
 */
async function startCompute(sv: Supervisor, c: StartContext, storageUrl: string, cpUrl: string, n: number): Promise<[string, string]> {
  const name = `compute-host-${n}`;
  const args = (p: string) => ['--storage-url', storageUrl, '--port', p, '--control-plane-url', cpUrl, '--name', name];
  const computeHost = await sv.start({
    name,
    stopsBefore: n === 1 ? `storage-node-${c.storageNodes}` : `compute-host-${n - 1}`,
    script: join(ROOT, 'compute/main.ts'),
    args: args(String(n === 1 ? c.ports.compute : 0)),
    restartArgs: (ready) => args(portOf(ready.url)),
    env: {
      [envName('compute', 'token')]: c.secrets.computeToken,
      [envName('compute', 'storage-token')]: c.secrets.storageToken,
      [envName('compute', 'api-token')]: c.secrets.computeApiToken,
    },
    readyMessage: 'compute host listening',
  });
  return [name, String(computeHost.ready.url)];
}

/** Waits until every compute host has registered with the control plane (its first heartbeat). */
async function hostsRegistered(cpUrl: string, apiKey: string, names: string[]): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { compute_hosts: hosts } = await api<{ compute_hosts: { name: string; state: string }[] }>(cpUrl, apiKey, 'GET', '/admin/v1/compute_hosts');
    const missing = names.filter((n) => !hosts.some((h) => h.name === n && h.state === 'live'));
    if (missing.length === 0) return;
    if (Date.now() > deadline) throw new Error(`${missing.join(', ')} did not register with the control plane within 60 s (see DIR/logs/${missing[0]}.log)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** How to start the control plane (given the proxy's TCP port) and the proxy (given the control plane's URL). */
function frontSpecs(c: StartContext, storageUrls: string[], tls: LocalTlsFiles): { controlPlane: (tcp: number) => ServiceSpec; proxy: (cpUrl: string, tcp: number) => ServiceSpec } {
  // Endpoint host names (ep-....lakebase.localhost) do not resolve on most machines: connection URIs name
  // 127.0.0.1 and carry the endpoint in the password (Neon's form for clients without SNI), which every client
  // passes on. That login is a cleartext password: over TLS when the client asks (psql, pgbench do), else on
  // loopback only. Clients that say the endpoint in options or SNI still log in with SCRAM.
  const cpArgs = (p: string, tcp: number) => ['--storage-url', storageUrls.join(','), '--port', p, '--proxy-port', String(tcp), '--connection-host', '127.0.0.1', '--engine', c.engine];
  const proxyArgs = (cpUrl: string, http: string, tcp: string) => [
    '--directory-url', `${cpUrl}/internal`, '--http-port', http, '--tcp-port', tcp, '--base-domain', BASE_DOMAIN,
    '--tls-cert', tls.cert, '--tls-key', tls.key, '--tcp-allow-cleartext',
  ];
  const cp = (option: string) => envName('control-plane', option);
  return {
    controlPlane: (tcp) => ({
      name: 'control-plane',
      script: join(ROOT, 'control-plane/main.ts'),
      args: cpArgs(String(c.ports.api), tcp),
      restartArgs: (ready) => cpArgs(portOf(ready.url), tcp),
      env: {
        ...c.storeEnv,
        [cp('api-key')]: c.secrets.apiKey,
        [cp('internal-token')]: c.secrets.internalToken,
        [cp('compute-token')]: c.secrets.computeToken,
        [cp('secret-key')]: c.secrets.secretKey,
        [cp('storage-token')]: c.secrets.storageToken,
        [cp('compute-api-token')]: c.secrets.computeApiToken,
      },
      readyMessage: 'control plane listening',
    }),
    proxy: (cpUrl, tcp) => ({
      name: 'proxy',
      script: join(ROOT, 'proxy/main.ts'),
      args: proxyArgs(cpUrl, String(c.ports.http), String(tcp)),
      restartArgs: (ready) => proxyArgs(cpUrl, String(ready.httpPort), String(ready.tcpPort)),
      env: { [envName('proxy', 'directory-token')]: c.secrets.internalToken },
      readyMessage: 'httpPort',
    }),
  };
}

/** What local.json says: the addresses this start listens on, and the default project (made on first start). */
async function localInfo(c: StartContext, storageNodes: Record<string, string>, front: Front, computeHosts: Record<string, string>): Promise<LocalInfo> {
  const localPath = join(c.dir, 'local.json');
  const previous = existsSync(localPath) ? (JSON.parse(await readFile(localPath, 'utf8')) as Partial<LocalInfo>) : {};
  return {
    apiUrl: `${front.cpUrl}/api/v2`,
    apiKey: c.secrets.apiKey,
    sqlUrl: `http://127.0.0.1:${front.httpPort}/sql`,
    wsProxy: `127.0.0.1:${front.httpPort}/v2`,
    tcp: { host: '127.0.0.1', port: front.tcpPort },
    storageUrl: storageNodes['storage-node-1'],
    storageNodes,
    computeHosts,
    project: await defaultProject(front.cpUrl, c.secrets.apiKey, previous, front.tcpPort),
  };
}

/**
 * Starts the services in dependency order (the storage node, the control plane and the proxy, then the compute
 * hosts, which register with the control plane) and returns what local.json says about them.
 */
async function startAll(sv: Supervisor, o: { dir: string; ports: Ports; secrets: Secrets; engine: EngineName; computeHosts: number; storageNodes: number }): Promise<LocalInfo> {
  const storeEnv: Record<string, string> = {};
  if (!process.env.LAKEBASE_S3_BUCKET && !process.env.LAKEBASE_OBJECT_STORE_DIR) storeEnv.LAKEBASE_OBJECT_STORE_DIR = join(o.dir, 'objects');
  const c: StartContext = { ...o, storeEnv };
  const nodes: [string, string][] = [];
  for (let n = 1; n <= o.storageNodes; n++) nodes.push(await startStorage(sv, c, n));
  const storageUrls = nodes.map(([, url]) => url);
  const tls = await localTlsCertificate(o.dir, BASE_DOMAIN);
  const front = await startFront(sv, c.ports, frontSpecs(c, storageUrls, tls));
  const hosts: [string, string][] = [];
  for (let n = 1; n <= o.computeHosts; n++) hosts.push(await startCompute(sv, c, storageUrls[0], front.cpUrl, n));
  await hostsRegistered(front.cpUrl, o.secrets.apiKey, hosts.map(([name]) => name));
  return localInfo(c, Object.fromEntries(nodes), front, Object.fromEntries(hosts));
}
