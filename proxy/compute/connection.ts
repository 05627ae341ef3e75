// One Postgres connection from the proxy to a compute: TCP connect, startup, authentication with the
// internal password (trust, cleartext, MD5 or SCRAM, whatever the compute asks), then message-level I/O for
// the HTTP executor, or a detached socket for byte relay (WebSocket, TCP).
import { createHash } from 'node:crypto';
import net from 'node:net';
import type { ComputeAddress } from '../directory/directory.ts';
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
  type Message,
} from '../../lib/pg-wire/index.ts';
import { ScramClient } from '../auth/scram.ts';

/** TCP-level failure to reach the compute (worth a retry or a fresh wake). */
export class ConnectError extends Error {
  override name = 'ConnectError';
  readonly code: string | undefined;

  constructor(message: string, code?: string) {
    super(message);
    this.code = code;
  }
}

export interface StartupParams {
  user: string;
  database: string;
  /** Further startup parameters (application_name, options, client_encoding, ...). */
  extra?: Record<string, string>;
}

type Handler = (m: Message) => boolean;

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

  /** Connects and authenticates; resolves once the compute sent its first ReadyForQuery. */
  static async connect(address: ComputeAddress, startup: StartupParams, timeoutMs = 2000): Promise<BackendConnection> {
    const socket = await openSocket(address.host, address.port, timeoutMs);
    const conn = new BackendConnection(socket, address);
    const deadline = setTimeout(() => socket.destroy(new ConnectError('timed out waiting for the compute to accept the login', 'ETIMEDOUT')), timeoutMs * 5);
    try {
      await conn.login(startup);
      return conn;
    } catch (err) {
      conn.destroy();
      throw err;
    } finally {
      clearTimeout(deadline);
    }
  }

  private async login(startup: StartupParams): Promise<void> {
    this.write(startupMessage({ user: startup.user, database: startup.database, ...startup.extra }));
    const scram: { client: ScramClient | null } = { client: null };
    for (;;) {
      const m = await this.next();
      switch (m.type) {
        case 'R':
          await this.answerAuthentication(m.body, startup.user, scram);
          break;
        case 'S':
        case 'N':
          this.startupMessages.push(m.bytes);
          break;
        case 'K':
          ({ pid: this.pid, secret: this.secret } = parseBackendKeyData(m.body));
          break;
        case 'E':
          throw new PgServerError(parseErrorFields(m.body));
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

  /** Answers one Authentication* request of the compute with the internal password. */
  private async answerAuthentication(body: Uint8Array, user: string, scram: { client: ScramClient | null }): Promise<void> {
    const auth = parseAuthentication(body);
    switch (auth.kind) {
      case 'ok':
        return;
      case 'cleartext':
        return this.write(passwordMessage(this.address.password));
      case 'md5': {
        const inner = createHash('md5').update(this.address.password + user).digest('hex');
        const outer = createHash('md5').update(inner).update(auth.salt).digest('hex');
        return this.write(passwordMessage('md5' + outer));
      }
      case 'sasl':
        scram.client = new ScramClient(this.address.password);
        return this.write(saslInitialResponse('SCRAM-SHA-256', utf8(scram.client.first())));
      case 'saslContinue':
        if (!scram.client) break;
        return this.write(saslResponse(utf8(await scram.client.final(decodeUtf8(auth.data)))));
      case 'saslFinal':
        if (!scram.client) break;
        if (!scram.client.verifyServerFinal(decodeUtf8(auth.data))) throw new ProtocolError('compute sent a wrong SCRAM server signature');
        return;
    }
    throw new ProtocolError(`unsupported authentication request ${new BodyReader(body).int32()} from compute`);
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
