// One Postgres connection from the proxy to a compute: TCP connect, startup, authentication, then message-level
// I/O for the HTTP executor, or a detached socket for byte relay (WebSocket, TCP). A `pglite` compute takes the
// internal password (trust, cleartext, MD5 or SCRAM, whatever it asks); a `postgres` compute is logged in to as
// the client's own role with the client's SCRAM keys, and nothing else (docs/design/postgres-engine.md).
import { createHash } from 'node:crypto';
import net from 'node:net';
import type { ComputeAddress } from '../directory/directory.ts';
import { RESERVED_PARAM_PREFIX } from '../../lib/compute-startup.ts';
import { PgServerError } from '../errors.ts';
import {
  BodyReader,
  MessageReader,
  ProtocolError,
  cancelRequest,
  decodeUtf8,
  parseAuthentication,
  parseBackendKeyData,
  parseErrorFields,
  parseReadyForQuery,
  passwordMessage,
  saslInitialResponse,
  saslResponse,
  startupMessage,
  terminate,
  utf8,
  type Authentication,
  type Message,
} from '../../lib/pg-wire/index.ts';
import { ScramClient, type ScramKeys } from '../auth/scram.ts';

/** TCP-level failure to reach the compute (worth a retry or a fresh wake). */
export class ConnectError extends Error {
  override name = 'ConnectError';
  readonly code: string | undefined;

  constructor(message: string, code?: string) {
    super(message);
    this.code = code;
  }
}

/** The compute's ErrorResponse during login, passed on to the client as it is. */
export class LoginError extends PgServerError {
  override name = 'LoginError';
  /** It came after the compute's AuthenticationOk (3D000, 53300, ...), not as a refusal of the credentials. */
  readonly afterAuthOk: boolean;

  constructor(fields: Record<string, string>, afterAuthOk: boolean) {
    super(fields);
    this.afterAuthOk = afterAuthOk;
  }
}

/**
 * A `postgres` compute whose verifier for the role is not the one the client's keys came from (the password changed
 * and the compute or the proxy has the old one): the client gets Postgres' FATAL 28P01, the proxy logs `reason`.
 * Nothing was sent to the compute that could answer its challenge.
 */
export class VerifierMismatch extends LoginError {
  override name = 'VerifierMismatch';
  readonly reason: string;

  constructor(user: string, reason: string) {
    super({ S: 'FATAL', V: 'FATAL', C: '28P01', M: `password authentication failed for user "${user}"` }, false);
    this.reason = reason;
  }
}

export interface StartupParams {
  user: string;
  database: string;
  /** Further startup parameters (application_name, options, client_encoding, ...). */
  extra?: Record<string, string>;
}

type Handler = (m: Message) => boolean;

/** One login's authentication state. */
interface LoginAuth {
  user: string;
  keys: ScramKeys | undefined;
  scram: ScramClient | null;
  /** The compute sent AuthenticationOk. */
  ok: boolean;
}

export class BackendConnection {
  readonly socket: net.Socket;
  readonly address: ComputeAddress;
  /** ParameterStatus and NoticeResponse messages of the startup, raw, for relay to a wire client. */
  readonly startupMessages: Uint8Array[] = [];
  pid = 0;
  secret = 0;
  /** Transaction status from the last ReadyForQuery: I, T or E. */
  txStatus = 'I';
  closed = false;
  private readonly reader = new MessageReader();
  private handler: Handler | null = null;
  private settle: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private readonly onData = (chunk: Buffer): void => {
    this.reader.push(chunk);
    this.pump();
  };

  private constructor(socket: net.Socket, address: ComputeAddress) {
    this.socket = socket;
    this.address = address;
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    const fail = (err: Error): void => {
      this.closed = true;
      this.failure ??= err;
      this.settle?.reject(this.failure);
      this.settle = null;
      this.handler = null;
    };
    socket.on('error', (e) => fail(e));
    socket.on('close', () => fail(new ConnectError('connection closed')));
  }

  /**
   * Connects and authenticates; resolves once the compute sent its first ReadyForQuery. `keys` (the client's,
   * see auth/scram.ts) are needed for a `postgres` compute and unused for `pglite`; they are not kept.
   */
  static async connect(address: ComputeAddress, startup: StartupParams, timeoutMs = 2000, keys?: ScramKeys): Promise<BackendConnection> {
    if (address.engine === 'postgres' && !keys) throw new Error('a postgres-engine compute needs the client role\'s SCRAM keys');
    const socket = await openSocket(address.host, address.port, timeoutMs);
    const conn = new BackendConnection(socket, address);
    const deadline = setTimeout(() => socket.destroy(new ConnectError('timed out waiting for the compute to accept the login', 'ETIMEDOUT')), timeoutMs * 5);
    try {
      await conn.login(startup, keys);
      return conn;
    } catch (err) {
      conn.destroy();
      throw err;
    } finally {
      clearTimeout(deadline);
    }
  }

  private async login(startup: StartupParams, keys: ScramKeys | undefined): Promise<void> {
    this.write(startupMessage(this.startupParams(startup)));
    const auth: LoginAuth = { user: startup.user, keys, scram: null, ok: false };
    for (;;) {
      const m = await this.next();
      switch (m.type) {
        case 'R':
          await this.answerAuthentication(m.body, auth);
          break;
        case 'S':
        case 'N':
          this.startupMessages.push(m.bytes);
          break;
        case 'K':
          ({ pid: this.pid, secret: this.secret } = parseBackendKeyData(m.body));
          break;
        case 'E':
          throw new LoginError(parseErrorFields(m.body), auth.ok);
        case 'Z':
          this.txStatus = parseReadyForQuery(m.body);
          return;
        case 'v':
          break; // NegotiateProtocolVersion: fine, we speak plain 3.0
        default:
          throw new ProtocolError(`unexpected message '${m.type}' during login`);
      }
    }
  }

  /** The startup packet: the client's parameters; the proxy's own (lakebase.*) are for PGlite's compute host only. */
  private startupParams(startup: StartupParams): Record<string, string> {
    const params: Record<string, string> = { user: startup.user, database: startup.database };
    for (const [k, v] of Object.entries(startup.extra ?? {})) {
      if (this.address.engine !== 'postgres' || !k.toLowerCase().startsWith(RESERVED_PARAM_PREFIX)) params[k] = v;
    }
    return params;
  }

  /** Answers one Authentication* request of the compute. */
  private async answerAuthentication(body: Uint8Array, auth: LoginAuth): Promise<void> {
    const req = parseAuthentication(body);
    if (req.kind === 'ok') {
      auth.ok = true;
      return;
    }
    if (this.address.engine === 'postgres') return this.answerWithKeys(req, auth);
    const password = this.address.password ?? '';
    switch (req.kind) {
      case 'cleartext':
        return this.write(passwordMessage(password));
      case 'md5': {
        const inner = createHash('md5').update(password + auth.user).digest('hex');
        const outer = createHash('md5').update(inner).update(req.salt).digest('hex');
        return this.write(passwordMessage('md5' + outer));
      }
      case 'sasl':
        auth.scram = new ScramClient(password);
        return this.write(saslInitialResponse('SCRAM-SHA-256', utf8(auth.scram.first())));
      case 'saslContinue':
        if (!auth.scram) break;
        return this.write(saslResponse(utf8(await auth.scram.final(decodeUtf8(req.data)))));
      case 'saslFinal':
        return this.checkServerFinal(auth.scram, req.data);
    }
    throw new ProtocolError(`unsupported authentication request ${new BodyReader(body).int32()} from compute`);
  }

  /** SCRAM with the client's keys: the only way into a `postgres` compute (its pg_hba says scram-sha-256). */
  private async answerWithKeys(req: Authentication, auth: LoginAuth): Promise<void> {
    if (req.kind === 'sasl' && req.mechanisms.includes('SCRAM-SHA-256') && auth.keys) {
      auth.scram = new ScramClient(auth.keys);
      return this.write(saslInitialResponse('SCRAM-SHA-256', utf8(auth.scram.first())));
    }
    if (req.kind === 'saslContinue' && auth.scram) {
      let final: string;
      try {
        final = await auth.scram.final(decodeUtf8(req.data));
      } catch (err) {
        throw new VerifierMismatch(auth.user, err instanceof Error ? err.message : String(err));
      }
      return this.write(saslResponse(utf8(final)));
    }
    if (req.kind === 'saslFinal') return this.checkServerFinal(auth.scram, req.data);
    // Never a password, an MD5 hash, or a SCRAM-SHA-256-PLUS the proxy cannot bind: the keys answer SCRAM alone.
    throw new ProtocolError(`a postgres-engine compute asked for ${req.kind} authentication, not SCRAM-SHA-256`);
  }

  /** The compute's server signature: it proves the compute holds the role's verifier (it is the real compute). */
  private checkServerFinal(scram: ScramClient | null, data: Uint8Array): void {
    if (!scram) throw new ProtocolError('compute sent a SCRAM final message without an exchange');
    if (!scram.verifyServerFinal(decodeUtf8(data))) throw new ProtocolError('compute sent a wrong SCRAM server signature');
  }

  write(data: Uint8Array): void {
    if (!this.closed) this.socket.write(data);
  }

  /**
   * Feeds incoming messages to `handler` until it returns true. Messages after that one stay buffered.
   * Rejects if the connection fails first.
   */
  read(handler: Handler): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      this.handler = handler;
      this.settle = { resolve, reject };
      this.pump();
    });
  }

  async next(): Promise<Message> {
    const box: { m?: Message } = {};
    await this.read((m) => {
      box.m = m;
      return true;
    });
    if (!box.m) throw new ProtocolError('no message');
    return box.m;
  }

  private pump(): void {
    while (this.handler) {
      let m: Message | null;
      try {
        m = this.reader.next();
      } catch (err) {
        this.socket.destroy(err as Error);
        return;
      }
      if (!m) return;
      let done: boolean;
      try {
        done = this.handler(m);
      } catch (err) {
        const settle = this.settle;
        this.handler = null;
        this.settle = null;
        settle?.reject(err as Error);
        return;
      }
      if (done) {
        const settle = this.settle;
        this.handler = null;
        this.settle = null;
        settle?.resolve();
      }
    }
  }

  /** Stops message parsing and hands the socket and unread bytes to a byte relay. */
  detach(): { socket: net.Socket; rest: Uint8Array } {
    this.socket.off('data', this.onData);
    this.socket.removeAllListeners('error');
    this.socket.removeAllListeners('close');
    return { socket: this.socket, rest: this.reader.takeRest() };
  }

  /** Asks the compute to cancel whatever this connection is running (fire and forget, errors ignored). */
  cancel(): Promise<void> {
    return sendCancel(this.address.host, this.address.port, this.pid, this.secret);
  }

  close(): void {
    if (this.closed) return;
    this.socket.end(terminate());
    this.closed = true;
  }

  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

function openSocket(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ConnectError(`timed out connecting to ${host}:${port}`, 'ETIMEDOUT'));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new ConnectError(err.message, err.code));
    });
  });
}

/** A CancelRequest on a fresh connection; resolves when the compute closed it (or after 1 s). */
export function sendCancel(host: string, port: number, pid: number, secret: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port }, () => socket.end(cancelRequest(pid, secret)));
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, 1000);
    socket.on('error', done);
    socket.on('close', done);
  });
}
