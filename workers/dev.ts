// `npm run dev:workers [-- --app-via-gateway]`: runs both Workers with `wrangler dev` against a running
// `lakebase start`, whose addresses come from .lakebase/local.json (or $LAKEBASE_DIR/local.json).
//   example app   http://127.0.0.1:8787   DATABASE_URL = the default project, LAKEBASE_PROXY = the proxy
//   edge gateway  http://127.0.0.1:8788   LAKEBASE_UPSTREAM = the proxy
// With --app-via-gateway the app reaches the database through the gateway. Without local.json, DATABASE_URL
// and LAKEBASE_PROXY are taken from the environment. No Cloudflare login, nothing sent beyond loopback.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const APP_PORT = Number(process.env.LAKEBASE_APP_PORT ?? 8787);
const GATEWAY_PORT = Number(process.env.LAKEBASE_GATEWAY_PORT ?? 8788);

interface LocalJson {
  sqlUrl: string;
  project: { connectionString: string };
}

function lakebaseAddresses(): { proxy: string; databaseUrl: string } {
  const localPath = join(resolve(ROOT, process.env.LAKEBASE_DIR ?? '.lakebase'), 'local.json');
  if (existsSync(localPath)) {
    const local = JSON.parse(readFileSync(localPath, 'utf8')) as LocalJson;
    return { proxy: new URL(local.sqlUrl).origin, databaseUrl: local.project.connectionString };
  }
  const { DATABASE_URL, LAKEBASE_PROXY } = process.env;
  if (!DATABASE_URL || !LAKEBASE_PROXY) {
    process.stderr.write(`no ${localPath}: run \`npm start\` (lakebase start) first, or set DATABASE_URL and LAKEBASE_PROXY\n`);
    process.exit(2);
  }
  return { proxy: LAKEBASE_PROXY, databaseUrl: DATABASE_URL };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Keeps wrangler local and quiet: no metrics, no cf.json download, no login prompts. */
const WRANGLER_ENV = {
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  CI: '1',
};

function wranglerDev(label: string, args: string[]): ChildProcess {
  const child = spawn('npx', ['wrangler', 'dev', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...WRANGLER_ENV },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so that stopping it also stops its workerd
  });
  const prefix = (chunk: Buffer) =>
    chunk
      .toString()
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('npm warn'))
      .map((l) => `[${label}] ${l}\n`)
      .join('');
  child.stdout?.on('data', (c: Buffer) => process.stdout.write(prefix(c)));
  child.stderr?.on('data', (c: Buffer) => process.stderr.write(prefix(c)));
  return child;
}

const { proxy, databaseUrl } = lakebaseAddresses();
const gatewayOrigin = `http://127.0.0.1:${GATEWAY_PORT}`;
const appProxy = process.argv.includes('--app-via-gateway') ? gatewayOrigin : proxy;
// Each wrangler also opens a DevTools inspector port (9229 by default): give each its own.
const children = [
  wranglerDev('gateway', [
    '-c', 'workers/gateway/wrangler.toml',
    '--port', String(GATEWAY_PORT),
    '--inspector-port', String(await freePort()),
    '--var', `LAKEBASE_UPSTREAM:${proxy}`,
  ]),
  wranglerDev('app', [
    '--port', String(APP_PORT),
    '--inspector-port', String(await freePort()),
    '--var', `DATABASE_URL:${databaseUrl}`,
    '--var', `LAKEBASE_PROXY:${appProxy}`,
  ]),
];
process.stdout.write(
  [
    `lakebase proxy   ${proxy}`,
    `example app      http://127.0.0.1:${APP_PORT}   (try: curl http://127.0.0.1:${APP_PORT}/products)`,
    `edge gateway     ${gatewayOrigin}   (point the driver here: LAKEBASE_PROXY=${gatewayOrigin})`,
    `app database via ${appProxy}`,
    'Ctrl-C to stop.',
    '',
  ].join('\n'),
);

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  for (const child of children) {
    if (child.pid !== undefined && child.exitCode === null) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }
  setTimeout(() => process.exit(0), 3000).unref();
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
for (const child of children) child.on('exit', () => stop());
