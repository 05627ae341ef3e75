// In-process entry: starts the proxy's listeners. HTTP (/sql, /metrics) and WebSocket (upgrade on any path)
// share one port; the Postgres TCP port is separate.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { WebSocketServer } from 'ws';
import { createLogger, type Logger } from '../lib/logger.ts';
import { Authenticator } from './auth/authenticator.ts';
import type { AuthLimitOptions } from './auth/limits.ts';
import type { EndpointDirectory } from './directory/directory.ts';
import { BackendPool, type PoolOptions } from './http/connection-pool.ts';
import { CancelRegistry } from './wire/cancel-registry.ts';
import { tcpTransport, wsTransport, type ClientTransport } from './wire/client-transport.ts';
import { ComputeConnector, type RetryPolicy } from './compute/connector.ts';
import { endpointFromAddress, endpointFromHost } from './endpoint-id.ts';
import { createHttpHandler } from './http/app.ts';
import { ProxyMetrics } from './metrics.ts';
import { EndpointRateLimiter, NEON_RATE_WINDOWS, type RateWindow } from './compute/rate-limit.ts';
import type { RoleCacheOptions } from './auth/role-cache.ts';
import { runWireSession, type WireSessionDeps } from './wire/session.ts';

export interface ProxyConfig {
  directory: EndpointDirectory;
  /** Listen address for every port (default 127.0.0.1). */
  host?: string;
  /** HTTP + WebSocket port (default 0: any free port). */
  httpPort?: number;
  /** Postgres TCP port (default 0: any free port; null: no TCP listener). */
  tcpPort?: number | null;
  /** Domains whose first label names an endpoint in a WebSocket Host header or TLS SNI, e.g. `lakebase.local`. */
  baseDomains?: string[];
  /** SQL-over-HTTP body limit (default 10 MiB, 413 above). */
  maxRequestBytes?: number;
  /** SQL-over-HTTP encoded rows limit (default 10 MiB, 507 above). */
  maxResponseBytes?: number;
  /** Wire startup handshake must finish within this (default 15 s). */
  handshakeTimeoutMs?: number;
  /** Per-endpoint limits on new compute connections (default Neon's). */
  rateLimits?: RateWindow[];
  pool?: Partial<PoolOptions>;
  wakeRetry?: Partial<RetryPolicy>;
  connectRetry?: Partial<RetryPolicy>;
  connectTimeoutMs?: number;
  addressIdleTtlMs?: number;
  /** TLS for the TCP port (SSLRequest answered 'S'; without it, 'N') and for `httpsPort`. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** With `tls`: also serve HTTPS + WSS (same routes) on this port (0: any free port). */
  httpsPort?: number;
  /** TCP clients that name no endpoint (no options, no SNI) get this one. */
  tcpDefaultEndpoint?: string;
  /** Let TCP clients without TLS use the `endpoint=<id>;<password>` cleartext form (default false). */
  tcpAllowCleartext?: boolean;
  /**
   * Key of the deterministic mock SCRAM salts of unknown roles and endpoints. Unset: random per process, so an
   * unknown role's salt changes when the proxy restarts (a known role's never does): configure one.
   */
  mockAuthSecret?: Buffer;
  /** Failed-authentication limits (auth/limits.ts; default DEFAULT_AUTH_LIMITS). */
  authLimits?: Partial<AuthLimitOptions>;
  /**
   * The verifier cache (auth/role-cache.ts: default 10,000 roles, 60 s TTL, 1 h stale-if-error). The TTL defaults
   * to 0 for a directory without watchInvalidations.
   */
  roleCache?: Partial<RoleCacheOptions>;
  /** Serve GET /metrics on the HTTP port (default true). */
  exposeMetrics?: boolean;
  logger?: Logger;
}

export interface RunningProxy {
  httpPort: number;
  httpsPort: number | null;
  tcpPort: number | null;
  metrics: ProxyMetrics;
  /** Authentication state: the verifier cache and the failed-authentication limits. */
  auth: Authenticator;
  close(): Promise<void>;
}

function listen(server: net.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

export async function startProxy(config: ProxyConfig): Promise<RunningProxy> {
  const logger = config.logger ?? createLogger('proxy');
  const host = config.host ?? '127.0.0.1';
  const metrics = new ProxyMetrics();
  const deps = proxyDependencies(config, metrics, logger);
  const web = await startWebListeners(config, host, deps);
  const tcp = config.tcpPort === null ? null : await startTcpListener(config, host, deps.wire);
  const tcpPort = tcp?.port ?? null;
  logger.info({ httpPort: web.httpPort, httpsPort: web.httpsPort, tcpPort, host }, 'proxy listening');
  return {
    httpPort: web.httpPort,
    httpsPort: web.httpsPort,
    tcpPort,
    metrics,
    auth: deps.auth,
    close: () => closeProxy(deps, web, tcp),
  };
}

/** What the listeners share: the connector, authentication, the HTTP pool, cancel keys, and the wire sessions' view of them. */
interface ProxyDeps {
  auth: Authenticator;
  pool: BackendPool;
  metrics: ProxyMetrics;
  logger: Logger;
  wire: WireSessionDeps;
  noteActivity: ((endpointId: string) => void) | undefined;
  stopInvalidations: (() => void) | undefined;
}

function proxyDependencies(config: ProxyConfig, metrics: ProxyMetrics, logger: Logger): ProxyDeps {
  const directory = config.directory;
  const noteActivity = directory.noteActivity ? (id: string) => directory.noteActivity?.(id) : undefined;
  const connector = new ComputeConnector(directory, {
    wakeRetry: { retries: 8, baseDelayMs: 100, factor: 1.6, ...config.wakeRetry },
    connectRetry: { retries: 5, baseDelayMs: 200, factor: 2, ...config.connectRetry },
    connectTimeoutMs: config.connectTimeoutMs ?? 2000,
    addressIdleTtlMs: config.addressIdleTtlMs ?? 4 * 60_000,
    onWake: (_id, seconds, ok) => metrics.wake(seconds, ok),
    rateLimiter: new EndpointRateLimiter(config.rateLimits ?? NEON_RATE_WINDOWS),
    logger,
  });
  // Without push invalidations a cached verifier is used only while the directory fails (a TTL would let an
  // old password work on after a change).
  const roles = { ...(directory.watchInvalidations ? {} : { ttlMs: 0 }), ...config.roleCache };
  const auth = new Authenticator(directory, { mockSecret: config.mockAuthSecret, limits: config.authLimits, roles });
  const pool = new BackendPool(connector, { maxIdlePerKey: 50, idleTimeoutMs: 5 * 60_000, maxPerEndpoint: 50, ...config.pool });
  const stopInvalidations = directory.watchInvalidations?.({
    role: (endpointId, role) => auth.roles.invalidate(endpointId, role),
    all: () => auth.roles.invalidateAll(),
    compute: (endpointId) => {
      logger.warn({ endpointId }, "the endpoint's compute host was taken out: its next query wakes it elsewhere");
      connector.invalidate(endpointId);
      pool.dropEndpoint(endpointId);
    },
  });
  const wire: WireSessionDeps = {
    auth,
    connector,
    cancels: new CancelRegistry(),
    metrics,
    logger,
    handshakeTimeoutMs: config.handshakeTimeoutMs ?? 15_000,
    noteActivity,
  };
  return { auth, pool, metrics, logger, wire, noteActivity, stopInvalidations };
}

interface WebListeners {
  httpServer: http.Server;
  httpsServer: https.Server | null;
  wss: WebSocketServer;
  httpPort: number;
  httpsPort: number | null;
}

/** HTTP (/sql, /metrics) and WebSocket upgrades on one port, and the same on the HTTPS port with TLS. */
async function startWebListeners(config: ProxyConfig, host: string, deps: ProxyDeps): Promise<WebListeners> {
  const handler = createHttpHandler({
    auth: deps.auth,
    pool: deps.pool,
    metrics: deps.metrics,
    logger: deps.logger,
    maxRequestBytes: config.maxRequestBytes ?? 10 * 1024 * 1024,
    maxResponseBytes: config.maxResponseBytes ?? 10 * 1024 * 1024,
    noteActivity: deps.noteActivity,
    exposeMetrics: config.exposeMetrics ?? true,
  });
  const httpServer = http.createServer(handler);
  const httpsServer = config.tls && config.httpsPort !== undefined ? https.createServer({ cert: config.tls.cert, key: config.tls.key }, handler) : null;
  // No compression and no subprotocol, like Neon; the driver's permessage-deflate offer is declined.
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const onUpgrade = webSocketUpgrade(wss, config.baseDomains ?? [], deps.wire);
  for (const server of [httpServer, httpsServer]) {
    if (!server) continue;
    server.on('clientError', (_err, socket) => socket.destroy());
    server.on('upgrade', onUpgrade);
  }
  const httpPort = await listen(httpServer, config.httpPort ?? 0, host);
  const httpsPort = httpsServer ? await listen(httpsServer, config.httpsPort ?? 0, host) : null;
  return { httpServer, httpsServer, wss, httpPort, httpsPort };
}

/** An upgrade request becomes a wire session over WebSocket; the endpoint comes from Host or `?address=`. */
function webSocketUpgrade(wss: WebSocketServer, baseDomains: string[], wireDeps: WireSessionDeps): (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void {
  return (req: http.IncomingMessage, socket: net.Socket, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    if (req.headers.upgrade?.toLowerCase() !== 'websocket') {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      let address: string | null = null;
      try {
        address = new URL(req.url ?? '/', 'http://x').searchParams.get('address');
      } catch {
        address = null;
      }
      const endpointHint = endpointFromHost(req.headers.host, baseDomains) ?? endpointFromAddress(address);
      const clientAddress = req.socket.remoteAddress ?? '';
      void runWireSession(wsTransport(ws), wireDeps, { protocol: 'websocket', clientAddress, endpointHint, cleartextAllowed: true, scram: false });
    });
  };
}

interface TcpListener {
  server: net.Server;
  port: number;
  /** Open client sockets (TLS ones too), destroyed on close. */
  sockets: Set<net.Socket>;
}

/** The Postgres TCP port: SSLRequest answered with TLS when configured, the endpoint from options or SNI. */
async function startTcpListener(config: ProxyConfig, host: string, wireDeps: WireSessionDeps): Promise<TcpListener> {
  const baseDomains = config.baseDomains ?? [];
  const sockets = new Set<net.Socket>();
  const secureContext = config.tls ? tls.createSecureContext({ cert: config.tls.cert, key: config.tls.key }) : null;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const startTls = secureContext ? (buffered: Buffer) => upgradeToTls(socket, buffered, secureContext, baseDomains, sockets) : undefined;
    void runWireSession(tcpTransport(socket), wireDeps, {
      protocol: 'tcp',
      clientAddress: socket.remoteAddress ?? '',
      endpointHint: null,
      defaultEndpoint: config.tcpDefaultEndpoint ?? null,
      cleartextAllowed: config.tcpAllowCleartext ?? false,
      scram: true,
      startTls,
    });
  });
  const port = await listen(server, config.tcpPort ?? 0, host);
  return { server, port, sockets };
}

const closed = (server: net.Server | null): Promise<void> => (server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve());

/** Stops following invalidations, ends every client connection and listener, then the HTTP pool. */
async function closeProxy(deps: ProxyDeps, web: WebListeners, tcp: TcpListener | null): Promise<void> {
  deps.stopInvalidations?.();
  for (const ws of web.wss.clients) ws.terminate();
  web.wss.close();
  for (const s of tcp?.sockets ?? []) s.destroy();
  web.httpServer.closeAllConnections();
  web.httpsServer?.closeAllConnections();
  await Promise.all([closed(web.httpServer), closed(web.httpsServer), closed(tcp?.server ?? null)]);
  deps.pool.close();
}

/** Switches a TCP client to TLS after 'S'; bytes it already pipelined (its ClientHello) are replayed. */
function upgradeToTls(
  socket: net.Socket,
  buffered: Buffer,
  secureContext: tls.SecureContext,
  baseDomains: string[],
  tracked: Set<net.Socket>,
): Promise<{ transport: ClientTransport; endpointHint: string | null }> {
  socket.removeAllListeners('data');
  if (buffered.length) socket.unshift(buffered);
  const secure = new tls.TLSSocket(socket, { isServer: true, secureContext, minVersion: 'TLSv1.2' });
  tracked.add(secure);
  return new Promise((resolve, reject) => {
    secure.once('secure', () => {
      const servername = (secure as tls.TLSSocket & { servername?: string | false }).servername;
      resolve({
        transport: tcpTransport(secure),
        endpointHint: servername ? endpointFromHost(servername, baseDomains) : null,
      });
    });
    secure.once('error', reject);
    secure.once('close', () => reject(new Error('client closed during TLS handshake')));
  });
}
