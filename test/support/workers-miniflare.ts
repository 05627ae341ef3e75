// One Miniflare (workerd) per test file running the real Workers, bundled from the same entries as
// wrangler.toml, and configured against a backend (workers-backend.ts). Each has its own loopback port:
//   app      workers/app           the example shop API          -> `app(path, init)`
//   gateway  workers/gateway       the edge gateway              -> `gatewayOrigin` (for Node and Workers)
//   probe    workers-probe-worker  runs given SQL via the driver -> `probe()`
// plus `app-without-database` (the app with a proxy address where nothing listens: port 9, discard), and,
// when `recorderOrigin` is given, `gateway-to-recorder`: the gateway again, forwarding to a recording
// server instead of the proxy (for byte-transparency checks).
import { Miniflare, type WorkerOptions } from 'miniflare';
import { bundleWorker, COMPATIBILITY_DATE, type BundledWorker } from './workers-build.ts';
import type { ProbeRequest, ProbeResponse } from './workers-probe-worker.ts';

export interface WorkersHarness {
  mf: Miniflare;
  /** Sends a request to the example app Worker. */
  app(path: string, init?: RequestInit): Promise<Response>;
  /** The same app configured with a proxy address where nothing listens (for the unavailable-database path). */
  appWithoutDatabase(path: string, init?: RequestInit): Promise<Response>;
  /** Origin (http://127.0.0.1:port) of the gateway Worker, reachable by Node and by other Workers. */
  gatewayOrigin: string;
  /** Origin of the gateway that forwards to the recorder (when configured). */
  recorderGatewayOrigin: string | null;
  /** Runs SQL through the driver inside workerd. */
  probe(req: ProbeRequest): Promise<ProbeResponse>;
  dispose(): Promise<void>;
}

export interface HarnessOptions {
  proxyOrigin: string;
  databaseUrl: string;
  recorderOrigin?: string;
  /** The gateway's largest allowed TTL (CACHE_MAX_TTL). */
  cacheMaxTtl?: number;
}

const bundles = new Map<string, Promise<BundledWorker>>();
function bundle(entry: string): Promise<BundledWorker> {
  let b = bundles.get(entry);
  if (!b) {
    b = bundleWorker(entry);
    bundles.set(entry, b);
  }
  return b;
}

function worker(name: string, code: BundledWorker, bindings: Record<string, string>, ownPort = false): WorkerOptions {
  return {
    name,
    modules: [{ type: 'ESModule', path: code.path, contents: code.contents }],
    compatibilityDate: COMPATIBILITY_DATE,
    bindings,
    ...(ownPort ? { unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }] } : {}),
  };
}

export async function startWorkers(opts: HarnessOptions): Promise<WorkersHarness> {
  const [app, gateway, probe] = await Promise.all([
    bundle('workers/app/index.ts'),
    bundle('workers/gateway/index.ts'),
    bundle('test/support/workers-probe-worker.ts'),
  ]);
  const gatewayVars = { CACHE_MAX_TTL: String(opts.cacheMaxTtl ?? 300) };
  const workers: WorkerOptions[] = [
    worker('app', app, { DATABASE_URL: opts.databaseUrl, LAKEBASE_PROXY: opts.proxyOrigin }, true),
    worker('app-without-database', app, { DATABASE_URL: opts.databaseUrl, LAKEBASE_PROXY: 'http://127.0.0.1:9' }, true),
    worker('gateway', gateway, { ...gatewayVars, LAKEBASE_UPSTREAM: opts.proxyOrigin }, true),
    worker('probe', probe, { DATABASE_URL: opts.databaseUrl, LAKEBASE_PROXY: opts.proxyOrigin }, true),
  ];
  if (opts.recorderOrigin) {
    workers.push(worker('gateway-to-recorder', gateway, { ...gatewayVars, LAKEBASE_UPSTREAM: opts.recorderOrigin }, true));
  }
  // cf: false: never fetch Cloudflare's request metadata from the internet.
  const mf = new Miniflare({ cf: false, workers });
  await mf.ready;
  // Each Worker listens on its own loopback port, so tests use Node's fetch (and WebSocket) on it.
  const origin = async (name: string) => (await mf.unsafeGetDirectURL(name)).origin;
  const appOrigin = await origin('app');
  const noDatabaseOrigin = await origin('app-without-database');
  const probeOrigin = await origin('probe');
  return {
    mf,
    app: (path, init) => fetch(`${appOrigin}${path}`, init),
    appWithoutDatabase: (path, init) => fetch(`${noDatabaseOrigin}${path}`, init),
    gatewayOrigin: await origin('gateway'),
    recorderGatewayOrigin: opts.recorderOrigin ? await origin('gateway-to-recorder') : null,
    async probe(req) {
      const res = await fetch(probeOrigin, { method: 'POST', body: JSON.stringify(req) });
      return (await res.json()) as ProbeResponse;
    },
    dispose: () => mf.dispose(),
  };
}
