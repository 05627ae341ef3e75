// Starts a compute host: the host (computes, pool, budget) behind its HTTP control API.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { requireTokenOffLoopback } from '../../lib/http-guard.ts';
import { createHostApp } from './api.ts';
import { ComputeHost } from './host.ts';
import type { HostOptions } from './host.ts';

export interface RunningHost {
  /** Base URL of the control API. */
  url: string;
  port: number;
  host: ComputeHost;
  /** Stops every compute cleanly, then the API. */
  close(): Promise<void>;
}

export interface HostServerOptions extends HostOptions {
  /** Control API address (default 127.0.0.1, port 0 = any). */
  apiHost?: string;
  apiPort?: number;
  /** Bearer token for /v1 and /metrics (lib/http-guard.ts). Without one the API listens on loopback only. */
  apiToken?: string;
}

export async function startComputeHost(opts: HostServerOptions): Promise<RunningHost> {
  const apiHost = opts.apiHost ?? '127.0.0.1';
  requireTokenOffLoopback(apiHost, opts.apiToken, 'the compute host API', (msg) => opts.log.warn(msg));
  const host = new ComputeHost(opts);
  await host.init();
  const app = createHostApp(host, { apiToken: opts.apiToken });
  const { server, port } = await new Promise<{ server: Server; port: number }>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: opts.apiPort ?? 0, hostname: apiHost }, (info: AddressInfo) => resolve({ server: s as Server, port: info.port }));
    s.once('error', reject);
  });
  server.keepAliveTimeout = 60_000;
  // a start can take seconds on a cold storage node: don't let the default request timeout cut it
  server.requestTimeout = 0;
  const url = `http://${apiHost}:${port}`;
  opts.log.info({ url, storageUrl: opts.storageUrl, poolSize: opts.poolSize, memoryBudgetMiB: Math.round(opts.memoryBudgetBytes / 1048576) }, 'compute host listening');
  return {
    url,
    port,
    host,
    close: async () => {
      await host.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      opts.log.info('compute host stopped');
    },
  };
}
