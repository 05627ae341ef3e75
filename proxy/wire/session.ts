// One Postgres-wire client session (WebSocket tunnel or TCP), in named phases: startup packet, endpoint
// resolution, client authentication (cleartext on WebSocket, as the driver's pipelined connect needs;
// SCRAM-SHA-256 on TCP: client-auth.ts), the compute connection, then a transparent byte relay (relay.ts).
// Reference §2.3-2.5.
// A `postgres` compute is logged in to as the client's own role with the SCRAM keys the client proved (or its
// cleartext password gave): the session holds them in memory for its life (a resume after a suspend logs in again)
// and wipes them at its end. The client gets AuthenticationOk once the compute accepted the keys, so the compute's
// refusal (28P01) reads as Postgres' own; a `pglite` compute is greeted as before, right after client auth.
// Nothing the client sends before it has authenticated is logged (its user name, options, password or SASL
// bytes): until then a failure is logged by its kind and SQLSTATE only (preAuthLog), never by its text.
import { RESERVED_PARAM_PREFIX } from '../../lib/compute-startup.ts';
import type { Logger } from '../../lib/logger.ts';
import {
  ProtocolError,
  authCleartextPassword,
  authOk,
  backendKeyData,
  errorResponse,
  fieldsMessage,
  hasRequestSize,
  negotiateProtocolVersion,
  parseStartup,
  readyForQuery,
} from '../../lib/pg-wire/index.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import { wipeKeys, type ScramKeys } from '../auth/scram.ts';
import { LoginError, type BackendConnection, type StartupParams } from '../compute/connection.ts';
import type { ComputeConnector } from '../compute/connector.ts';
import { endpointFromOptions, isValidEndpointId, normalizeEndpointId, unwrapPassword } from '../endpoint-id.ts';
import { ENDPOINT_NOT_SPECIFIED, PgServerError, ProxyError } from '../errors.ts';
import type { ProxyMetrics } from '../metrics.ts';
import type { CancelRegistry } from './cancel-registry.ts';
import { SessionError, readPassword, scramExchange } from './client-auth.ts';
import type { ClientTransport } from './client-transport.ts';
import { Inbox } from './inbox.ts';
import { relay } from './relay.ts';

export { MAX_STARTUP_PACKET } from './inbox.ts';
export { MAX_PASSWORD_MESSAGE } from './client-auth.ts';

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

/** What the phases of one session share. */
interface SessionState {
  /** Replaced when the client switches to TLS. */
  transport: ClientTransport;
  readonly inbox: Inbox;
  log: Logger;
  backend: BackendConnection | null;
  cancelKey: number | null;
  authenticated: boolean;
  /** The client's login keys (a postgres compute takes them): never logged, wiped when the session ends. */
  keys: ScramKeys | null;
  /** The client got its AuthenticationOk (it must get exactly one). */
  greeted: boolean;
}

/** The client's StartupMessage, after any SSLRequest / GSSENCRequest. */
interface ClientStartup {
  params: Map<string, string>;
  user: string;
  database: string;
  /** The connection switched to TLS (which also allows a cleartext password). */
  tls: boolean;
  tlsHint: string | null;
}

/** Who the client proved to be, and which endpoint it reaches. */
interface Login {
  endpoint: string;
  user: string;
  database: string;
  /** Startup parameters forwarded to the compute. */
  extra: Record<string, string>;
}

export async function runWireSession(initial: ClientTransport, deps: WireSessionDeps, opts: WireSessionOptions): Promise<void> {
  const s: SessionState = {
    transport: initial,
    inbox: new Inbox(),
    log: deps.logger.child({ protocol: opts.protocol }),
    backend: null,
    cancelKey: null,
    authenticated: false,
    keys: null,
    greeted: false,
  };
  const ended = deps.metrics.sessionStarted(opts.protocol);
  listen(s);
  const timer = setTimeout(() => {
    s.log.info('handshake timed out');
    s.transport.destroy();
  }, deps.handshakeTimeoutMs);
  try {
    const startup = await startupPhase(s, deps, opts);
    if (startup === null) return; // a CancelRequest, handled
    const login = await authenticatePhase(s, deps, opts, startup);
    // the handshake is over: a wake may wait in the compute host's start queue longer than a handshake may take
    clearTimeout(timer);
    const key = await connectComputePhase(s, deps, login);
    s.log.info('session started');
    await relayPhase(s, deps, login, key);
  } catch (err) {
    reportError(s.transport, err, deps, opts.protocol, s.log, s.authenticated);
    s.backend?.destroy();
  } finally {
    clearTimeout(timer);
    if (s.cancelKey !== null) deps.cancels.release(s.cancelKey);
    if (s.keys) wipeKeys(s.keys);
    ended();
  }
}

function listen(s: SessionState): void {
  s.transport.onData((c) => s.inbox.push(c));
  s.transport.onClose(() => s.inbox.close());
}

// ---- phase 1: startup packet (SSLRequest / GSSENCRequest / CancelRequest may come first) ----

async function startupPhase(s: SessionState, deps: WireSessionDeps, opts: WireSessionOptions): Promise<ClientStartup | null> {
  let tlsHint: string | null = null;
  let tls = false;
  for (;;) {
    const payload = await s.inbox.startup();
    const st = parseStartup(payload);
    if (!hasRequestSize(st, payload)) throw new ProtocolError(`invalid length of ${st.kind} request`);
    if (st.kind === 'ssl' && opts.startTls) {
      s.transport.write(Buffer.from('S'));
      const rest = s.inbox.reader.takeRest();
      const upgraded = await opts.startTls(Buffer.from(rest.buffer, rest.byteOffset, rest.byteLength));
      s.transport = upgraded.transport;
      tlsHint = upgraded.endpointHint;
      tls = true;
      listen(s);
    } else if (st.kind === 'ssl' || st.kind === 'gssenc') {
      s.transport.write(Buffer.from('N'));
    } else if (st.kind === 'cancel') {
      await deps.cancels.cancel(st.pid, st.secret);
      s.transport.end();
      return null;
    } else {
      if (st.minor > 0) s.transport.write(negotiateProtocolVersion(0, [...st.params.keys()].filter((k) => k.startsWith('_pq_.'))));
      const user = st.params.get('user');
      if (!user) throw new SessionError('no PostgreSQL user name specified in startup packet', '28000');
      return { params: st.params, user, database: st.params.get('database') || user, tls, tlsHint };
    }
  }
}

// ---- phase 2: which endpoint; phase 3: client authentication ----

async function authenticatePhase(s: SessionState, deps: WireSessionDeps, opts: WireSessionOptions, startup: ClientStartup): Promise<Login> {
  const { user, database } = startup;
  const fromOptions = endpointFromOptions(startup.params.get('options'));
  let endpoint = resolveEndpoint(fromOptions.endpoint, opts.endpointHint ?? startup.tlsHint);
  const cleartextAllowed = opts.cleartextAllowed || startup.tls;
  if (endpoint === null && !cleartextAllowed && opts.defaultEndpoint) endpoint = checkId(opts.defaultEndpoint);

  if (endpoint !== null && opts.scram) {
    const channelBinding = startup.tls ? (s.transport.channelBinding?.() ?? null) : null;
    s.keys = await scramExchange(s.transport, s.inbox, deps.auth, { endpoint, user, address: opts.clientAddress, channelBinding });
  } else {
    if (!cleartextAllowed) throw new SessionError(endpoint === null ? ENDPOINT_NOT_SPECIFIED : 'cleartext password not allowed');
    s.transport.write(authCleartextPassword());
    const given = unwrapPassword(await readPassword(s.inbox), endpoint);
    if (given.endpoint === null) throw new SessionError(ENDPOINT_NOT_SPECIFIED);
    endpoint = endpoint ?? checkId(given.endpoint);
    s.keys = await deps.auth.checkCleartext(endpoint, user, given.password, opts.clientAddress);
  }
  s.authenticated = true;
  s.log = s.log.child({ endpointId: endpoint, user, database });
  deps.noteActivity?.(endpoint);
  return { endpoint, user, database, extra: forwardedParams(startup.params, fromOptions.forward) };
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

/** The client's startup parameters the compute gets (the lakebase.* ones are the proxy's own word, never a client's). */
function forwardedParams(params: Map<string, string>, forwardOptions: string): Record<string, string> {
  const extra: Record<string, string> = {};
  for (const [k, v] of params) {
    if (k !== 'user' && k !== 'database' && k !== 'options' && !k.startsWith('_pq_.') && !k.toLowerCase().startsWith(RESERVED_PARAM_PREFIX)) extra[k] = v;
  }
  if (forwardOptions) extra.options = forwardOptions;
  extra.client_encoding ??= 'UTF8';
  return extra;
}

// ---- phase 4: the compute connection, on the client's behalf ----

function greet(s: SessionState): void {
  if (s.greeted) return;
  s.greeted = true;
  s.transport.write(authOk());
}

const startupOf = (login: Login): StartupParams => ({ user: login.user, database: login.database, extra: login.extra });

async function connectComputePhase(s: SessionState, deps: WireSessionDeps, login: Login): Promise<{ pid: number; secret: number }> {
  const backend = await loginToCompute(s, deps, login);
  s.backend = backend;
  const key = deps.cancels.issue(backend.address.host, backend.address.port, backend.pid, backend.secret);
  s.cancelKey = key.pid;
  const greeting = [...backend.startupMessages, backendKeyData(key.pid, key.secret), readyForQuery(backend.txStatus)];
  s.transport.write(Buffer.concat(greeting));
  return key;
}

/**
 * The compute login, and the client's one AuthenticationOk: before anything else for `pglite` (as ever), after the
 * compute's for `postgres`, so that only a refusal of the client's credentials by the compute comes without one.
 */
async function loginToCompute(s: SessionState, deps: WireSessionDeps, login: Login): Promise<BackendConnection> {
  try {
    const address = await deps.connector.wake(login.endpoint);
    if (address.engine !== 'postgres') greet(s);
    const backend = await deps.connector.connect(login.endpoint, startupOf(login), s.keys ?? undefined);
    greet(s);
    return backend;
  } catch (err) {
    if (!(err instanceof LoginError) || err.afterAuthOk) greet(s);
    throw err;
  }
}

// ---- phase 5: relay; bytes the client pipelined after its password go first. A compute that goes away while
// the session is idle (suspend, restart) is replaced on the client's next message (relay.ts). ----

async function relayPhase(s: SessionState, deps: WireSessionDeps, login: Login, key: { pid: number; secret: number }): Promise<void> {
  const first = s.backend!.detach();
  const pipelined = s.inbox.reader.takeRest();
  const startup = startupOf(login);
  let lastActivity = Date.now();
  await relay(s.transport, first, pipelined, s.inbox.closed, {
    reconnect: async () => {
      const next = await deps.connector.connect(login.endpoint, startup, s.keys ?? undefined);
      deps.cancels.retarget(key.pid, next.address.host, next.address.port, next.pid, next.secret);
      s.log.info('session moved to a new compute');
      return next.detach();
    },
    reconnectFailed: (err) => {
      // A postgres compute's own refusal (28P01 after a password change) as Postgres would send it
      if (err instanceof LoginError && s.backend?.address.engine === 'postgres') return fieldsMessage('E', err.fields);
      const e = err instanceof PgServerError || err instanceof ProxyError ? err : new ProxyError(String(err), 500, 'compute_unreachable');
      return errorResponse({ severity: 'FATAL', code: 'XX000', message: e.message });
    },
    onActivity: () => {
      if (Date.now() - lastActivity > 10_000) {
        lastActivity = Date.now();
        deps.noteActivity?.(login.endpoint);
      }
    },
    log: s.log,
  });
}

// ---- failure ----

function reportError(
  transport: ClientTransport,
  err: unknown,
  deps: WireSessionDeps,
  protocol: 'websocket' | 'tcp',
  log: Logger,
  authenticated: boolean,
): void {
  const { code, frame } = errorAnswer(err);
  deps.metrics.errors.inc({ protocol, code });
  if (authenticated) log.info({ err: err instanceof Error ? err.message : String(err), code }, 'session failed');
  else log.info({ kind: errorKind(err), code }, 'session failed before authentication');
  if (frame) {
    transport.write(frame);
    transport.end();
  } else transport.destroy();
}

/** The metric label of a failure, and the ErrorResponse the client gets (null: just drop the connection). */
function errorAnswer(err: unknown): { code: string; frame: Uint8Array | null } {
  // The compute refused the login: pass its error on with every field.
  if (err instanceof PgServerError) return { code: err.code, frame: fieldsMessage('E', err.fields) };
  if (err instanceof ProxyError) {
    const f = err.pgFields;
    return { code: err.code, frame: errorResponse({ severity: f?.C ? (f.S ?? 'ERROR') : 'ERROR', code: f?.C || 'XX000', message: err.message }) };
  }
  if (err instanceof SessionError) return { code: err.code, frame: errorResponse({ severity: 'ERROR', code: err.code, message: err.message }) };
  // garbage or a vanished client: just drop the connection
  if (err instanceof ProtocolError) return { code: 'protocol', frame: null };
  return { code: 'internal', frame: errorResponse({ severity: 'ERROR', code: 'XX000', message: err instanceof Error ? err.message : String(err) }) };
}

/** What failed, without its text (which may quote bytes the client sent before authenticating). */
function errorKind(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
