// The byte relay between a wire client and its compute, which survives the compute going away while the session
// is idle (beyond Neon): when the endpoint is suspended, or its compute restarts, between transactions, the client
// keeps its connection; its next message wakes a compute and the session goes on there. Anything else (a compute
// lost in the middle of a query or a transaction) ends the session, as Postgres would.
//
// Both directions are cut into messages (never assuming a chunk is a message) to know where the session is:
// a client Sync or Query asks for a ReadyForQuery, and the status byte of the last one says whether a transaction
// is open. Session state that lived on the old compute (SET, temp tables, prepared statements) is not carried over.
import type net from 'node:net';
import { COMPUTE_STOPPING_DETAIL } from '../../lib/compute-notices.ts';
import type { Logger } from '../../lib/logger.ts';
import type { ClientTransport } from './client-transport.ts';
import { MessageReader } from './pg-wire.ts';

export interface Attached {
  socket: net.Socket;
  /** Backend bytes that arrived after its startup (relayed first). */
  rest: Buffer;
}

const Z = 0x5a; // ReadyForQuery
const E = 0x45; // ErrorResponse
const SYNC = 0x53;
const QUERY = 0x51;
const TERMINATE = 0x58;

function frame(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function isShutdownNotice(body: Buffer): boolean {
  let fatal = false;
  let code = '';
  let detail = '';
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const field = String.fromCharCode(body[i]);
    const end = body.indexOf(0, i + 1);
    if (end < 0) break;
    const value = body.toString('utf8', i + 1, end);
    if (field === 'V' || field === 'S') fatal ||= value === 'FATAL';
    if (field === 'C') code = value;
    if (field === 'D') detail = value;
    i = end + 1;
  }
  return fatal && code === '57P01' && detail === COMPUTE_STOPPING_DETAIL;
}

export interface RelayHooks {
  /** A new compute connection after startup (wakes the endpoint); the client already has its greeting. */
  reconnect(): Promise<Attached>;
  /** Bytes to send the client when a reconnect fails, before the connection closes. */
  reconnectFailed(err: unknown): Buffer;
  onActivity(): void;
  log: Logger;
}

export function relay(transport: ClientTransport, first: Attached, pipelined: Buffer, clientClosed: boolean, hooks: RelayHooks): Promise<void> {
  return new Promise<void>((resolve) => {
    let socket: net.Socket | null = null;
    let done = false;
    let asked = 0; // Syncs and Queries the client sent
    let answered = 0; // ReadyForQuery messages the client got
    let status = 'I';
    let heldNotice = false;
    let reconnecting = false;
    const waiting: Buffer[] = []; // client messages while no compute is attached
    const fromClient = new MessageReader();
    let fromBackend = new MessageReader();

    let terminated = false; // the client sent Terminate: the backend closing is the end
    const idle = () => asked === answered && status === 'I';
    const finish = () => {
      if (done) return;
      done = true;
      socket?.end();
      resolve();
    };

    const toClient = (data: Buffer, from: net.Socket) => {
      if (!transport.write(data)) {
        from.pause();
        transport.onceDrain(() => from.resume());
      }
    };

    const onBackendData = (s: net.Socket, chunk: Buffer) => {
      if (s !== socket) return;
      fromBackend.push(chunk);
      const out: Buffer[] = [];
      for (let m = fromBackend.next(); m; m = fromBackend.next()) {
        const type = m.type.charCodeAt(0);
        if (type === Z) {
          answered++;
          status = String.fromCharCode(m.body[0]);
        }
        if (type === E && idle() && isShutdownNotice(m.body)) {
          heldNotice = true; // the compute is being suspended under an idle session: the client need not know
          continue;
        }
        out.push(frame(m.type, m.body));
      }
      if (out.length > 0) toClient(out.length === 1 ? out[0] : Buffer.concat(out), s);
    };

    const attach = (a: Attached) => {
      const s = a.socket;
      socket = s;
      fromBackend = new MessageReader();
      s.on('data', (chunk: Buffer) => onBackendData(s, chunk));
      s.on('error', () => s.destroy());
      s.on('close', () => onBackendClose(s));
      if (a.rest.length > 0) onBackendData(s, a.rest);
    };

    const onBackendClose = (s: net.Socket) => {
      if (s !== socket || done) return;
      socket = null;
      if (heldNotice && idle() && !terminated) {
        hooks.log.info('compute stopped while the session was idle; the session stays open');
        heldNotice = false;
        if (waiting.length > 0) startReconnect();
        return;
      }
      transport.end();
      finish();
    };

    const startReconnect = () => {
      if (reconnecting || done) return;
      reconnecting = true;
      hooks.reconnect().then(
        (a) => {
          reconnecting = false;
          if (done) {
            a.socket.destroy();
            return;
          }
          attach(a);
          const data = Buffer.concat(waiting.splice(0));
          if (data.length > 0) a.socket.write(data);
        },
        (err: unknown) => {
          reconnecting = false;
          transport.write(hooks.reconnectFailed(err));
          transport.end();
          finish();
        },
      );
    };

    const onClientData = (chunk: Buffer) => {
      hooks.onActivity();
      fromClient.push(chunk);
      const out: Buffer[] = [];
      for (let m = fromClient.next(); m; m = fromClient.next()) {
        const type = m.type.charCodeAt(0);
        if (type === SYNC || type === QUERY) asked++;
        if (type === TERMINATE) {
          terminated = true;
          if (socket === null) {
            transport.end();
            finish();
            return;
          }
        }
        out.push(frame(m.type, m.body));
      }
      if (out.length === 0) return;
      const data = out.length === 1 ? out[0] : Buffer.concat(out);
      if (socket) {
        if (!socket.write(data)) {
          transport.pause();
          socket.once('drain', () => transport.resume());
        }
      } else {
        waiting.push(data);
        startReconnect();
      }
    };

    attach(first);
    transport.onData((chunk) => {
      try {
        onClientData(chunk);
      } catch {
        transport.end(); // a malformed message from the client ends its session
        finish();
      }
    });
    transport.onClose(() => finish());
    if (pipelined.length > 0) onClientData(pipelined);
    if (clientClosed) finish();
  });
}
