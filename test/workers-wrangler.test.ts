// Smoke tests of the local developer loop: `wrangler dev` runs a Worker from wrangler.toml (no login,
// loopback only) and serves a request that reaches the lakebase; `npm run dev:workers` runs both Workers
// against the addresses in local.json, the app reaching the database through the gateway.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './support/native-postgres.ts';
import { startBackend, type WorkersBackend } from './support/workers-backend.ts';
import { spawnTracked, type TrackedProcess } from './support/workers-wrangler.ts';

let backend: WorkersBackend;
let tmp: string;
const running: TrackedProcess[] = [];

beforeAll(async () => {
  backend = await startBackend();
  tmp = await mkdtemp(path.join(tmpdir(), 'lakebase-wrangler-'));
}, 180_000);

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await backend?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('local development', () => {
  it('`wrangler dev` starts the app from wrangler.toml and serves a request against the lakebase', async () => {
    const port = await freePort();
    const wrangler = spawnTracked('npx', [
      'wrangler', 'dev',
      '--port', String(port),
      '--inspector-port', String(await freePort()),
      '--persist-to', path.join(tmp, 'state-app'),
      '--var', `DATABASE_URL:${backend.connectionString}`,
      '--var', `LAKEBASE_PROXY:${backend.proxyOrigin}`,
    ]);
    running.push(wrangler);
    await wrangler.waitFor(/Ready on http:\/\/127\.0\.0\.1:\d+/);
    const res = await fetch(`http://127.0.0.1:${port}/products`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ products: [] });
    await wrangler.stop();
  });

  it('`npm run dev:workers` runs app and gateway from local.json; the app goes through the gateway', async () => {
    const dir = path.join(tmp, 'lakebase');
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    // What `lakebase start` writes (the fields dev:workers reads).
    await writeFile(path.join(dir, 'local.json'), JSON.stringify({ sqlUrl: `${backend.proxyOrigin}/sql`, project: { connectionString: backend.connectionString } }));
    const [appPort, gatewayPort] = [await freePort(), await freePort()];
    const dev = spawnTracked('npm', ['run', 'dev:workers', '--', '--app-via-gateway'], {
      LAKEBASE_DIR: dir,
      LAKEBASE_APP_PORT: String(appPort),
      LAKEBASE_GATEWAY_PORT: String(gatewayPort),
    });
    running.push(dev);
    await dev.waitFor(new RegExp(`\\[app\\].*Ready on http://127\\.0\\.0\\.1:${appPort}`), 60_000);
    await dev.waitFor(new RegExp(`\\[gateway\\].*Ready on http://127\\.0\\.0\\.1:${gatewayPort}`), 60_000);

    const created = await fetch(`http://127.0.0.1:${appPort}/products`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ sku: 'DEV-1', name: 'From wrangler dev', priceCents: 1, stock: 1 }),
    });
    expect(created.status).toBe(201);
    // The app reached the database through the gateway: the gateway logged the app's SQL requests.
    await dev.waitFor(/\[gateway\].*POST \/sql 200/, 5000);
    // An order is a transaction over WebSocket: through wrangler dev's gateway too.
    const order = await fetch(`http://127.0.0.1:${appPort}/orders`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ customer: 'Dev Loop', lines: [{ sku: 'DEV-1', quantity: 1 }] }),
    });
    expect(order.status).toBe(201);
    expect(((await order.json()) as { totalCents: number }).totalCents).toBe(1);
    const cached = (ttl: string) =>
      fetch(`http://127.0.0.1:${gatewayPort}/sql`, {
        method: 'POST',
        headers: { 'Neon-Connection-String': backend.connectionString, 'Neon-Array-Mode': 'true', 'Neon-Raw-Text-Output': 'true', 'Lakebase-Cache-TTL': ttl },
        body: JSON.stringify({ query: 'SELECT name FROM products WHERE sku = $1', params: ['DEV-1'] }),
      });
    const first = await cached('30');
    expect(first.headers.get('Lakebase-Cache')).toBe('miss');
    expect(((await first.json()) as { rows: unknown[][] }).rows).toEqual([['From wrangler dev']]);
    expect((await cached('30')).headers.get('Lakebase-Cache')).toBe('hit');
    await dev.stop();
  });
});
