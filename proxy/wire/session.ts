// One Postgres-wire client session (WebSocket tunnel or TCP): startup packet, endpoint resolution, client
// authentication (cleartext on WebSocket, as the driver's pipelined connect needs; SCRAM-SHA-256 on TCP), the
// compute connection, then a transparent byte relay. Reference §2.3-2.5.
// Nothing the client sends before it has authenticated is logged (its user name, options, password or SASL
// bytes): until then a failure is logged by its kind and SQLSTATE only (preAuthLog), never by its text.
import { RESERVED_PARAM_PREFIX } from '../../lib/compute-startup.ts';
import type { Logger } from '../../lib/logger.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import type { AuthTicket } from '../auth/limits.ts';
import type { BackendConnection } from '../compute/connection.ts';
import type { CancelRegistry } from './cancel-registry.ts';
import type { ClientTransport } from './client-transport.ts';
import type { ComputeConnector } from '../compute/connector.ts';
import {
  endpointFromOptions,
  isValidEndpointId,
  normalizeEndpointId,
  parsePasswordHack,
} from '../endpoint-id.ts';
import { ENDPOINT_NOT_SPECIFIED, PgServerError, ProxyError, authFailed } from '../errors.ts';
import type { ProxyMetrics } from '../metrics.ts';
import {
  AUTH_CLEARTEXT,
  AUTH_OK,
  BodyReader,
  CANCEL_REQUEST_CODE,
  GSSENC_REQUEST_CODE,
  MessageReader,
  PROTOCOL_V3,
  ProtocolError,
  SSL_REQUEST_CODE,
  authSasl,
  authSaslContinue,
  authSaslFinal,
  backendKeyData,
  errorResponse,
  message,
  negotiateProtocolVersion,
  parseStartupParams,
  readyForQuery,
  type PgMessage,
} from './pg-wire.ts';
import { relay } from './relay.ts';
import { ScramServer } from '../auth/scram.ts';

export const MAX_STARTUP_PACKET = 10_000;
export const MAX_PASSWORD_MESSAGE = 512;

export interface WireSessionDeps {
  auth: Authenticator;
  connector: ComputeConnector;
  cancels: CancelRegistry;
  metrics: ProxyMetrics;
  logger: Logger;
  handshakeTimeoutMs: number;
  noteActivity?: (endpointId: string) => void;
}

export interface WireSessionOptions {
  protocol: 'websocket' | 'tcp';
  /** The client's IP address, for the failed-authentication limits. */
  clientAddress: string;
  /** Endpoint named by the connection itself (Host label, `address=`, TLS SNI), if any. */
  endpointHint: string | null;
  /** TCP without an endpoint: used when the client names none. */
  defaultEndpoint?: string | null;
  /** May the client send its password in clear (WebSocket: always; TCP: only under TLS or if configured)? */
  cleartextAllowed: boolean;
  /** SCRAM instead of cleartext when the endpoint is known (TCP). */
  scram: boolean;
  /** TCP with TLS configured: answer an SSLRequest with 'S' and continue on the returned transport. */
  startTls?: (buffered: Buffer) => Promise<{ transport: ClientTransport; endpointHint: string | null }>;
}

/** Reads the client's bytes during the handshake, which may arrive in any chunking. */
class Inbox {
  readonly reader = new MessageReader();
  private wake: (() => void) | null = null;
  closed = false;

  push(chunk: Buffer): void {
    this.reader.push(chunk);
    this.notify();
  }

  close(): void {
    this.closed = true;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private async until<T>(take: () => T | null): Promise<T> {
    for (;;) {
      const v = take();
      if (v !== null) return v;
      if (this.closed) throw new ProtocolError('client closed the connection');
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  startup(): Promise<Buffer> {
    return this.until(() => this.reader.nextStartup(MAX_STARTUP_PACKET));
  }

  message(max: number): Promise<PgMessage> {
    return this.until(() => this.reader.next(max));
  }
}

class SessionError extends Error {
  override name = 'SessionError';
  readonly code: string;
  constructor(message: string, code = 'XX000') {
    super(message);
    this.code = code;
  }
}

export async function runWireSession(initial: ClientTransport, deps: WireSessionDeps, opts: WireSessionOptions): Promise<void> {
  let transport = initial;
  const inbox = new Inbox();
  const ended = deps.metrics.sessionStarted(opts.protocol);
  let log = deps.logger.child({ protocol: opts.protocol });
  transport.onData((c) => inbox.push(c));
  transport.onClose(() => inbox.close());
  const timer = setTimeout(() => {
    log.info('handshake timed out');
    transport.destroy();
  }, deps.handshakeTimeoutMs);
  let backend: BackendConnection | null = null;
  let cancelKey: number | null = null;
  let authenticated = false;
  try {
    // ---- startup packet (SSLRequest / GSSENCRequest / CancelRequest may come first) ----
    let packet: Buffer;
    let tlsHint: string | null = null;
    let tls = false;
    for (;;) {
      packet = await inbox.startup();
      const code = packet.readInt32BE(4);
      if (code === SSL_REQUEST_CODE && packet.length === 8) {
        if (opts.startTls) {
          transport.write(Buffer.from('S'));
          const upgraded = await opts.startTls(inbox.reader.takeRest());
          transport = upgraded.transport;
          tlsHint = upgraded.endpointHint;
          tls = true;
          transport.onData((c) => inbox.push(c));
          transport.onClose(() => inbox.close());
        } else transport.write(Buffer.from('N'));
        continue;
      }
      if (code === GSSENC_REQUEST_CODE && packet.length === 8) {
        transport.write(Buffer.from('N'));
        continue;
      }
      if (code === CANCEL_REQUEST_CODE && packet.length === 16) {
        await deps.cancels.cancel(packet.readInt32BE(8), packet.readInt32BE(12));
        transport.end();
        return;
      }
      if (code >> 16 !== 3) throw new ProtocolError(`unsupported frontend protocol ${code >> 16}.${code & 0xffff}`);
      break;
    }
    const params = parseStartupParams(packet);
    const minor = packet.readInt32BE(4) & 0xffff;
    if (minor > 0) {
      transport.write(negotiateProtocolVersion(0, Object.keys(params).filter((k) => k.startsWith('_pq_.'))));
    }
    const user = params.user;
    if (!user) throw new SessionError('no PostgreSQL user name specified in startup packet', '28000');
    const database = params.database || user;

    // ---- which endpoint ----
    const fromOptions = endpointFromOptions(params.options);
    let endpoint = resolveEndpoint(fromOptions.endpoint, opts.endpointHint ?? tlsHint);
    const cleartextAllowed = opts.cleartextAllowed || tls;
    if (endpoint === null && !cleartextAllowed && opts.defaultEndpoint) endpoint = checkId(opts.defaultEndpoint);

    // ---- client authentication ----
    if (endpoint !== null && opts.scram) {
      await scramExchange(transport, inbox, deps.auth, endpoint, user, opts.clientAddress);
    } else {
      if (!cleartextAllowed) throw new SessionError(endpoint === null ? ENDPOINT_NOT_SPECIFIED : 'cleartext password not allowed');
      transport.write(AUTH_CLEARTEXT);
      let password = await readPassword(inbox);
      if (endpoint === null) {
        const hack = parsePasswordHack(password);
        if (!hack) throw new SessionError(ENDPOINT_NOT_SPECIFIED);
        endpoint = checkId(hack.endpoint);
        password = hack.password;
      }
      await deps.auth.checkCleartext(endpoint, user, password, opts.clientAddress);
    }
    authenticated = true;
    log = log.child({ endpointId: endpoint, user, database });
    transport.write(AUTH_OK);
    deps.noteActivity?.(endpoint);

    // ---- compute connection, on the client's behalf ----
    const extra: Record<string, string> = {};
    for (const [k, v] of Object.entries(params)) {
      // the lakebase.* parameters are the proxy's own word to the compute, never a client's
      if (k !== 'user' && k !== 'database' && k !== 'options' && !k.startsWith('_pq_.') && !k.toLowerCase().startsWith(RESERVED_PARAM_PREFIX)) extra[k] = v;
    }
    if (fromOptions.forward) extra.options = fromOptions.forward;
    extra.client_encoding ??= 'UTF8';
    backend = await deps.connector.connect(endpoint, { user, database, extra });
    const key = deps.cancels.issue(backend.address.host, backend.address.port, backend.pid, backend.secret);
    cancelKey = key.pid;
    const greeting = [...backend.startupMessages, backendKeyData(key.pid, key.secret), readyForQuery(backend.txStatus)];
    transport.write(Buffer.concat(greeting));
    clearTimeout(timer);
    log.info('session started');

    // ---- relay; bytes the client pipelined after its password go first. A compute that goes away while the
    // session is idle (suspend, restart) is replaced on the client's next message (relay.ts). ----
    const first = backend.detach();
    const pipelined = inbox.reader.takeRest();
    const endpointId = endpoint;
    const proxyKey = key;
    let lastActivity = Date.now();
    await relay(transport, first, pipelined, inbox.closed, {
      reconnect: async () => {
        const next = await deps.connector.connect(endpointId, { user, database, extra });
        deps.cancels.retarget(proxyKey.pid, next.address.host, next.address.port, next.pid, next.secret);
        log.info('session moved to a new compute');
        return next.detach();
      },
      reconnectFailed: (err) => {
        const e = err instanceof PgServerError || err instanceof ProxyError ? err : new ProxyError(String(err), 500, 'compute_unreachable');
        return errorResponse('XX000', e.message, 'FATAL');
      },
      onActivity: () => {
        if (Date.now() - lastActivity > 10_000) {
          lastActivity = Date.now();
          deps.noteActivity?.(endpointId);
        }
      },
      log,
    });
  } catch (err) {
    reportError(transport, err, deps, opts.protocol, log, authenticated);
    backend?.destroy();
  } finally {
    clearTimeout(timer);
    if (cancelKey !== null) deps.cancels.release(cancelKey);
    ended();
  }
}

function checkId(id: string): string {
  if (!isValidEndpointId(id)) throw new SessionError(`Project name ('${id}') must contain only alphanumeric characters and hyphen.`);
  return normalizeEndpointId(id);
}

/** Options win, the connection's own hint (Host, address=, SNI) is second; they must agree. */
function resolveEndpoint(fromOptions: string | null, hint: string | null): string | null {
  if (fromOptions !== null && hint !== null && normalizeEndpointId(fromOptions) !== normalizeEndpointId(hint)) {
    throw new SessionError(`Inconsistent project name inferred from SNI ('${hint}') and project option ('${fromOptions}').`);
  }
  const id = fromOptions ?? hint;
  return id === null ? null : checkId(id);
}

async function readPassword(inbox: Inbox): Promise<string> {
  const m = await inbox.message(MAX_PASSWORD_MESSAGE + 4);
  if (m.type !== 'p') throw new SessionError(`incorrect message tag, expected 'p', got '${m.type}'`, '08P01');
  const end = m.body.indexOf(0);
  if (end < 0) throw new SessionError('Malformed password message: missing terminator', '08P01');
  return m.body.toString('utf8', 0, end);
}

async function scramExchange(transport: ClientTransport, inbox: Inbox, auth: Authenticator, endpoint: string, user: string, address: string): Promise<void> {
  const ticket = auth.admit(endpoint, user, address);
  try {
    await scramSteps(transport, inbox, auth, endpoint, user, ticket);
  } finally {
    ticket.release(); // a client gone mid-exchange, or a directory error: undecided, not a failure
  }
}

async function scramSteps(transport: ClientTransport, inbox: Inbox, auth: Authenticator, endpoint: string, user: string, ticket: AuthTicket): Promise<void> {
  const { verifier } = await auth.verifier(endpoint, user);
  const server = new ScramServer(verifier);
  transport.write(authSasl(['SCRAM-SHA-256']));
  const first = await inbox.message(MAX_STARTUP_PACKET);
  if (first.type !== 'p') throw new SessionError(`incorrect message tag, expected 'p', got '${first.type}'`, '08P01');
  const r = new BodyReader(first.body);
  const mechanism = r.cstring();
  // Postgres' own text: the bytes in place of a mechanism name may be a password sent in clear.
  if (mechanism !== 'SCRAM-SHA-256') throw new SessionError('client selected an invalid SASL authentication mechanism', '08P01');
  const len = r.int32();
  const clientFirst = r.bytes(len).toString('utf8');
  let serverFirst: string;
  try {
    serverFirst = server.clientFirst(clientFirst);
  } catch (err) {
    throw new SessionError((err as Error).message, '08P01');
  }
  transport.write(authSaslContinue(serverFirst));
  const final = await inbox.message(MAX_STARTUP_PACKET);
  if (final.type !== 'p') throw new SessionError(`incorrect message tag, expected 'p', got '${final.type}'`, '08P01');
  const serverFinal = server.clientFinal(final.body.toString('utf8'));
  if (serverFinal === null) {
    ticket.failed();
    throw authFailed(user);
  }
  ticket.succeeded();
  transport.write(authSaslFinal(serverFinal));
}

function reportError(
  transport: ClientTransport,
  err: unknown,
  deps: WireSessionDeps,
  protocol: 'websocket' | 'tcp',
  log: Logger,
  authenticated: boolean,
): void {
  let frame: Buffer | null;
  let code: string;
  if (err instanceof PgServerError) {
    // The compute refused the login: pass its error on with every field.
    code = err.code;
    const parts: Buffer[] = [];
    for (const [k, v] of Object.entries(err.fields)) parts.push(Buffer.from(k, 'latin1'), Buffer.from(v + '\0'));
    frame = message('E', ...parts, Buffer.from([0]));
  } else if (err instanceof ProxyError) {
    code = err.kind;
    frame = err.pgFields?.C ? errorResponse(err.pgFields.C, err.message, err.pgFields.S ?? 'ERROR') : errorResponse('XX000', err.message);
  } else if (err instanceof SessionError) {
    code = err.code;
    frame = errorResponse(err.code, err.message);
  } else if (err instanceof ProtocolError) {
    code = 'protocol';
    frame = null; // garbage or a vanished client: just drop the connection
  } else {
    code = 'internal';
    frame = errorResponse('XX000', err instanceof Error ? err.message : String(err));
  }
  deps.metrics.errors.inc({ protocol, code });
  if (authenticated) log.info({ err: err instanceof Error ? err.message : String(err), code }, 'session failed');
  else log.info({ kind: errorKind(err), code }, 'session failed before authentication');
  if (frame) {
    transport.write(frame);
    transport.end();
  } else transport.destroy();
}

/** What failed, without its text (which may quote bytes the client sent before authenticating). */
function errorKind(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
