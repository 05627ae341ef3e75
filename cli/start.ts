// `lakebase start`: runs the whole lakebase on this machine as supervised processes (storage node, compute host,
// control plane, proxy), creates a default project on first start, prints how to connect, and writes
// <dir>/local.json for tools and tests. Ctrl-C stops everything cleanly (each service flushes first).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../lib/free-port.ts';
import { Supervisor } from './supervisor.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Secrets {
  apiKey: string;
  internalToken: string;
  computeToken: string;
  secretKey: string;
}

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
async function loadSecrets(dir: string): Promise<Secrets> {
  const path = join(dir, 'secrets.json');
  if (existsSync(path)) return JSON.parse(await readFile(path, 'utf8')) as Secrets;
  const s: Secrets = {
    apiKey: 'lb_' + randomBytes(24).toString('hex'),
    internalToken: randomBytes(24).toString('hex'),
    computeToken: randomBytes(24).toString('hex'),
    secretKey: randomBytes(32).toString('hex'),
  };
  await writeFile(path, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
  await chmod(path, 0o600);
  return s;
}

async function port(value: string | undefined, fallback: number, auto: boolean): Promise<number> {
  if (value !== undefined) return Number(value);
  return auto ? freePort() : fallback;
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

export async function start(argv: string[]): Promise<void> {
  const { values } = parseArgs({
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
  });
  const env = process.env;
  const dir = resolve(values.dir ?? env.LAKEBASE_DIR ?? '.lakebase');
  await mkdir(dir, { recursive: true });
  const auto = values['auto-ports'] ?? env.LAKEBASE_AUTO_PORTS === '1';
  const ports = {
    storage: await port(values['storage-port'] ?? env.LAKEBASE_STORAGE_PORT, 9870, auto),
    compute: await port(values['compute-port'] ?? env.LAKEBASE_COMPUTE_PORT, 9872, auto),
    api: await port(values['api-port'] ?? env.LAKEBASE_API_PORT, 9871, auto),
    http: await port(values['http-port'] ?? env.LAKEBASE_PROXY_HTTP_PORT, 4444, auto),
    tcp: await port(values['tcp-port'] ?? env.LAKEBASE_PROXY_TCP_PORT, 5432, auto),
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
  const storeEnv: Record<string, string> = {};
  if (!env.LAKEBASE_S3_BUCKET && !env.LAKEBASE_OBJECT_STORE_DIR) storeEnv.LAKEBASE_OBJECT_STORE_DIR = join(dir, 'objects');
  const stopAll = () => supervisor.stopAll();
  try {
    const storage = await supervisor.start({
      name: 'storage-node',
      script: join(ROOT, 'storage-node/main.ts'),
      args: ['--data-dir', join(dir, 'storage-node'), '--port', String(ports.storage)],
      env: storeEnv,
      readyMessage: 'storage node listening',
    });
    const storageUrl = String(storage.ready.url);
    const computeHost = await supervisor.start({
      name: 'compute-host',
      script: join(ROOT, 'compute/main.ts'),
      args: ['--storage-url', storageUrl, '--port', String(ports.compute)],
      env: { LAKEBASE_COMPUTE_TOKEN: secrets.computeToken },
      readyMessage: 'compute host listening',
    });
    const computeUrl = String(computeHost.ready.url);
    const controlPlane = await supervisor.start({
      name: 'control-plane',
      script: join(ROOT, 'control-plane/main.ts'),
      // Endpoint host names (ep-....lakebase.localhost) do not resolve on most machines: connection URIs name
      // 127.0.0.1 and carry the endpoint in options, which every client (psql, pg, the driver) passes on.
      args: ['--storage-url', storageUrl, '--compute-host', computeUrl, '--port', String(ports.api), '--proxy-port', String(ports.tcp), '--connection-host', '127.0.0.1'],
      env: {
        ...storeEnv,
        LAKEBASE_API_KEY: secrets.apiKey,
        LAKEBASE_INTERNAL_TOKEN: secrets.internalToken,
        LAKEBASE_COMPUTE_TOKEN: secrets.computeToken,
        LAKEBASE_SECRET_KEY: secrets.secretKey,
      },
      readyMessage: 'control plane listening',
    });
    const cpUrl = String(controlPlane.ready.url);
    await supervisor.start({
      name: 'proxy',
      script: join(ROOT, 'proxy/main.ts'),
      args: ['--directory-url', `${cpUrl}/internal`, '--http-port', String(ports.http), '--tcp-port', String(ports.tcp), '--base-domain', 'lakebase.localhost'],
      env: { LAKEBASE_PROXY_DIRECTORY_TOKEN: secrets.internalToken },
      readyMessage: 'httpPort',
    });

    // A default project on first start; kept across restarts.
    const localPath = join(dir, 'local.json');
    const previous = existsSync(localPath) ? (JSON.parse(await readFile(localPath, 'utf8')) as Partial<LocalInfo>) : {};
    let project = previous.project;
    if (project) {
      const known = await fetch(`${cpUrl}/api/v2/projects/${project.id}`, { headers: { authorization: `Bearer ${secrets.apiKey}` } });
      if (!known.ok) project = undefined;
    }
    if (!project) {
      const created = await api<CreatedProjectResponse>(cpUrl, secrets.apiKey, 'POST', '/api/v2/projects', { project: { name: 'default' } });
      const ep = created.endpoints[0].id;
      const role = created.roles[0];
      const db = created.databases[0].name;
      const cred = `${encodeURIComponent(role.name)}:${encodeURIComponent(role.password)}`;
      project = {
        id: created.project.id,
        branchId: created.branch.id,
        endpointId: ep,
        connectionString: `postgresql://${cred}@127.0.0.1:${ports.tcp}/${db}?options=endpoint%3D${ep}`,
        pooledConnectionString: `postgresql://${cred}@127.0.0.1:${ports.tcp}/${db}?options=endpoint%3D${ep}-pooler`,
      };
    }
    const local: LocalInfo = {
      apiUrl: `${cpUrl}/api/v2`,
      apiKey: secrets.apiKey,
      sqlUrl: `http://127.0.0.1:${ports.http}/sql`,
      wsProxy: `127.0.0.1:${ports.http}/v2`,
      tcp: { host: '127.0.0.1', port: ports.tcp },
      storageUrl,
      project,
    };
    await writeFile(localPath, JSON.stringify(local, null, 2) + '\n', { mode: 0o600 });
    process.stdout.write(
      [
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
      ].join('\n') + '\n',
    );
  } catch (e) {
    process.stderr.write(`lakebase start failed: ${(e as Error).message}\n`);
    await stopAll();
    process.exit(1);
  }
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('stopping: each service flushes to the object store first...\n');
    stopAll().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
