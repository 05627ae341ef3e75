// The network half of BlockingConnection (blocking-connection.ts): a worker thread that owns the TCP socket,
// because the thread running pg_dump's WebAssembly is blocked inside it for the whole dump and cannot run an
// event loop. It writes what the port brings, posts what the socket receives, and after each post bumps the
// shared counter the blocked thread waits on (Atomics.wait).
import net from 'node:net';
import { workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';

export interface TcpWorkerData {
  host: string;
  port: number;
  /** Int32Array over it: [0] counts posts, for Atomics.wait/notify. */
  signal: SharedArrayBuffer;
  channel: MessagePort;
}

/** What the worker posts: bytes received, the socket connected, or the socket gone (with why). */
export type TcpEvent = { data: Uint8Array } | { connected: true } | { closed: string | null };
/** What the worker is sent: bytes to write, or the end of the conversation. */
export type TcpCommand = { write: Uint8Array } | { end: true };

const { host, port, signal, channel } = workerData as TcpWorkerData;
const counter = new Int32Array(signal);

function post(event: TcpEvent): void {
  channel.postMessage(event);
  Atomics.add(counter, 0, 1);
  Atomics.notify(counter, 0);
}

const socket = net.connect({ host, port });
socket.setNoDelay(true);
let failure: string | null = null;
socket.on('connect', () => post({ connected: true }));
socket.on('data', (d: Buffer) => post({ data: new Uint8Array(d) }));
socket.on('error', (e) => (failure = e.message));
socket.on('close', () => {
  post({ closed: failure });
  channel.close();
});
channel.on('message', (m: TcpCommand) => {
  if ('write' in m) socket.write(m.write);
  else socket.end();
});
