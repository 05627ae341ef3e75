// Starts a storage node: the engine (recovery first), then its HTTP API.
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { bearerAuth, requireTokenOffLoopback } from '../lib/http-guard.ts';
import { createLogger } from '../lib/logger.ts';
import type { Logger } from '../lib/logger.ts';
import { DEFAULT_ENGINE_CONFIG, StorageEngine } from './engine/storage-engine.ts';
import type { EngineConfig } from './engine/storage-engine.ts';
import { createApp } from './http/app.ts';
import { StorageMetrics } from './metrics.ts';
import type { ObjectStore } from './object-store/object-store.ts';

export interface StorageNodeConfig extends Partial<Omit<EngineConfig, 'objectStore' | 'dataDir' | 'events'>> {
  dataDir: string;
  /** Built by the caller (see object-store/from-config.ts); metrics are attached by the caller too. */
  objectStore: ObjectStore;
  host?: string;
  port?: number;
  /** Bearer token required on every route but /healthz. Without one the node listens on loopback only. */
  token?: string;
  maxBatchBytes?: number;
  maxPagesPerRead?: number;
  logger?: Logger;
  metrics?: StorageMetrics;
}

export interface StorageNode {
  url: string;
  port: number;
  /** The bearer token it requires (undefined: none). */
  token?: string;
  engine: StorageEngine;
  metrics: StorageMetrics;
  /** Graceful: stops accepting requests, then freezes and uploads what is in memory. */
  close(): Promise<void>;
}

export async function startStorageNode(config: StorageNodeConfig): Promise<StorageNode> {
  const log = config.logger ?? createLogger('storage-node');
  const host = config.host ?? '127.0.0.1';
  requireTokenOffLoopback(host, config.token, 'the storage node', (msg) => log.warn(msg));
  const metrics = config.metrics ?? new StorageMetrics();
  const engine = new StorageEngine({
    ...DEFAULT_ENGINE_CONFIG,
    ...Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)),
    dataDir: config.dataDir,
    objectStore: config.objectStore,
    events: metrics.engineEvents((msg, err) => log.warn({ err }, msg)),
  } as EngineConfig);
  const started = Date.now();
  await engine.start();
  log.info({ timelines: engine.stats().timelines, ms: Date.now() - started, objectStore: config.objectStore.description, durability: engine.config.durability }, 'storage engine recovered');
  const app = createApp(engine, metrics, {
    maxBatchBytes: config.maxBatchBytes ?? 64 * 1024 * 1024,
    maxPagesPerRead: config.maxPagesPerRead ?? 4096,
    auth: config.token ? bearerAuth(config.token) : undefined,
    log: (level, msg, fields) => log[level](fields ?? {}, msg),
  });
  const { server, port } = await new Promise<{ server: Server; port: number }>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: config.port ?? 0, hostname: host }, (info: AddressInfo) => resolve({ server: s as Server, port: info.port }));
    s.once('error', reject);
  });
  server.keepAliveTimeout = 60_000;
  const url = `http://${host}:${port}`;
  log.info({ url }, 'storage node listening');
  return {
    url,
    port,
    token: config.token,
    engine,
    metrics,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await engine.close();
      log.info('storage node stopped');
    },
  };
}
