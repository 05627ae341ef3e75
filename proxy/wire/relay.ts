// The byte relay between a wire client and its compute, which survives the compute going away while the session
// is idle (beyond Neon): when the endpoint is suspended, or its compute restarts, between transactions, the client
// keeps its connection; its next message wakes a compute and the session goes on there. Anything else (a compute
// lost in the middle of a query or a transaction) ends the session, as Postgres would.
//
// Both directions are cut into messages (never assuming a chunk is a message) to know where the session is:
// a client Sync or Query asks for a ReadyForQuery, and the status byte of the last one says whether a transaction
// is open. Messages are relayed as the bytes they arrived in (a view, not a copy, when a message sits in one
// chunk). Session state that lived on the old compute (SET, temp tables, prepared statements) is not carried over.
import type net from 'node:net';
import { COMPUTE_STOPPING_DETAIL } from '../../lib/compute-notices.ts';
import type { Logger } from '../../lib/logger.ts';
import { MessageReader, parseErrorFields } from '../../lib/pg-wire/index.ts';
import type { ClientTransport } from './client-transport.ts';

export interface Attached {
  socket: net.Socket;
  /** Backend bytes that arrived after its startup (relayed first). */
  rest: Uint8Array;
}

const Z = 0x5a; // ReadyForQuery
const E = 0x45; // ErrorResponse
const SYNC = 0x53;
const QUERY = 0x51;
const TERMINATE = 0x58;

/** The FATAL 57P01 a compute sends to its sessions when it is being stopped under them (not a crash). */
function isShutdownNotice(body: Uint8Array): boolean {
  let f: Record<string, string>;
  try {
    f = parseErrorFields(body);
  } catch {
    return false;
  }
  return (f.V === 'FATAL' || f.S === 'FATAL') && f.C === '57P01' && f.D === COMPUTE_STOPPING_DETAIL;
}

function joined(out: Uint8Array[]): Uint8Array {
  return out.length === 1 ? out[0] : Buffer.concat(out);
}

export interface RelayHooks {
  /** A new compute connection after startup (wakes the endpoint); the client already has its greeting. */
  reconnect(): Promise<Attached>;
  /** Bytes to send the client when a reconnect fails, before the connection closes. */
  reconnectFailed(err: unknown): Uint8Array;
  onActivity(): void;
  log: Logger;
}

export function relay(transport: ClientTransport, first: Attached, pipelined: Uint8Array, clientClosed: boolean, hooks: RelayHooks): Promise<void> {
  return new Promise<void>((resolve) => {
    const r = new Relay(transport, hooks, resolve);
    r.attach(first);
    transport.onData((chunk) => {
      try {
        r.onClientData(chunk);
      } catch {
        transport.end(); // a malformed message from the client ends its session
        r.finish();
      }
    });
    transport.onClose(() => r.finish());
    if (pipelined.length > 0) r.onClientData(pipelined);
    if (clientClosed) r.finish();
  });
}

/** One relay's state: the attached compute (if any), and where the session stands between the two. */
class Relay {
  private socket: net.Socket | null = null;
  private done = false;
  private asked = 0; // Syncs and Queries the client sent
  private answered = 0; // ReadyForQuery messages the client got
  private status = 'I';
  private heldNotice = false;
  private reconnecting = false;
  private terminated = false; // the client sent Terminate: the backend closing is the end
  private readonly waiting: Uint8Array[] = []; // client messages while no compute is attached
  private readonly fromClient = new MessageReader();
  private fromBackend = new MessageReader();
  private readonly transport: ClientTransport;
  private readonly hooks: RelayHooks;
  private readonly resolve: () => void;

  constructor(transport: ClientTransport, hooks: RelayHooks, resolve: () => void) {
    this.transport = transport;
    this.hooks = hooks;
    this.resolve = resolve;
  }

  private idle(): boolean {
    return this.asked === this.answered && this.status === 'I';
  }

  finish(): void {
    if (this.done) return;
    this.done = true;
    this.socket?.end();
    this.resolve();
  }

  // ---- compute side ----

  attach(a: Attached): void {
    const s = a.socket;
    this.socket = s;
    this.fromBackend = new MessageReader();
    s.on('data', (chunk: Buffer) => this.onBackendData(s, chunk));
    s.on('error', () => s.destroy());
    s.on('close', () => this.onBackendClose(s));
    if (a.rest.length > 0) this.onBackendData(s, a.rest);
  }

  private onBackendData(s: net.Socket, chunk: Uint8Array): void {
    if (s !== this.socket) return;
    this.fromBackend.push(chunk);
    const out: Uint8Array[] = [];
    for (let m = this.fromBackend.next(); m; m = this.fromBackend.next()) {
      const type = m.bytes[0];
      if (type === Z) {
        this.answered++;
        this.status = String.fromCharCode(m.body[0]);
      }
      if (type === E && this.idle() && isShutdownNotice(m.body)) {
        this.heldNotice = true; // the compute is being suspended under an idle session: the client need not know
        continue;
      }
      out.push(m.bytes);
    }
    if (out.length > 0) this.toClient(joined(out), s);
  }

  private toClient(data: Uint8Array, from: net.Socket): void {
    if (!this.transport.write(data)) {
      from.pause();
      this.transport.onceDrain(() => from.resume());
    }
  }

  private onBackendClose(s: net.Socket): void {
    if (s !== this.socket || this.done) return;
    this.socket = null;
    if (this.heldNotice && this.idle() && !this.terminated) {
      this.hooks.log.info('compute stopped while the session was idle; the session stays open');
      this.heldNotice = false;
      if (this.waiting.length > 0) this.startReconnect();
      return;
    }
    this.transport.end();
    this.finish();
  }

  private startReconnect(): void {
    if (this.reconnecting || this.done) return;
    this.reconnecting = true;
    this.hooks.reconnect().then(
      (a) => {
        this.reconnecting = false;
        if (this.done) {
          a.socket.destroy();
          return;
        }
        this.attach(a);
        const data = Buffer.concat(this.waiting.splice(0));
        if (data.length > 0) a.socket.write(data);
      },
      (err: unknown) => {
        this.reconnecting = false;
        this.transport.write(this.hooks.reconnectFailed(err));
        this.transport.end();
        this.finish();
      },
    );
  }

  // ---- client side ----

  onClientData(chunk: Uint8Array): void {
    this.hooks.onActivity();
    this.fromClient.push(chunk);
    const out: Uint8Array[] = [];
    for (let m = this.fromClient.next(); m; m = this.fromClient.next()) {
      const type = m.bytes[0];
      if (type === SYNC || type === QUERY) this.asked++;
      if (type === TERMINATE) {
        this.terminated = true;
        if (this.socket === null) {
          this.transport.end();
          this.finish();
          return;
        }
      }
      out.push(m.bytes);
    }
    if (out.length > 0) this.toCompute(joined(out));
  }

  private toCompute(data: Uint8Array): void {
    const socket = this.socket;
    if (socket) {
      if (!socket.write(data)) {
        this.transport.pause();
        socket.once('drain', () => this.transport.resume());
      }
    } else {
      this.waiting.push(data);
      this.startReconnect();
    }
  }
}
