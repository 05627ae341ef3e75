// A TCP connection to a Postgres server that answers synchronously: exchange() sends bytes and, when they end a
// message the server answers, blocks this thread until the whole answer is in. PGlite's pg_dump (WebAssembly)
// writes and reads its wire protocol through synchronous callbacks, as it does against an in-process PGlite; this
// lets the same build talk to a real server. The socket lives in a worker thread (tcp-worker.ts), since this thread
// runs no event loop while pg_dump runs.
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { concat } from '../../lib/pg-wire/index.ts';
import type { TcpCommand, TcpEvent, TcpWorkerData } from './tcp-worker.ts';
import { Turns } from './turns.ts';

export class BlockingConnection {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly counter: Int32Array;
  private readonly turns = new Turns();
  private closedWith: string | null | undefined;

  private constructor(worker: Worker, port: MessagePort, counter: Int32Array) {
    this.worker = worker;
    this.port = port;
    this.counter = counter;
  }

  /** Connects to host:port; rejects with the socket's error if it cannot. */
  static async open(host: string, port: number): Promise<BlockingConnection> {
    const signal = new SharedArrayBuffer(4);
    const { port1, port2 } = new MessageChannel();
    const data: TcpWorkerData = { host, port, signal, channel: port2 };
    const worker = new Worker(new URL('./tcp-worker.ts', import.meta.url), { workerData: data, transferList: [port2] });
    const conn = new BlockingConnection(worker, port1, new Int32Array(signal));
    const first = await conn.firstEvent();
    if (!('connected' in first)) {
      await worker.terminate();
      throw new Error(`cannot connect to ${host}:${port}: ${'closed' in first ? first.closed : 'no answer'}`);
    }
    return conn;
  }

  /** Why the server closed the connection ('' for a plain close), or undefined while it is open. */
  get closed(): string | undefined {
    return this.closedWith === undefined ? undefined : (this.closedWith ?? '');
  }

  /**
   * Sends `bytes`; returns what the server answered, once it has answered everything the client is owed (nothing
   * when the bytes end no question, as a Parse before its Sync). A closed connection answers what it had.
   */
  exchange(bytes: Uint8Array): Uint8Array {
    if (this.closedWith !== undefined) return new Uint8Array(0);
    this.send({ write: bytes.slice() });
    this.turns.sent(bytes);
    const answer: Uint8Array[] = [];
    while (this.turns.serverOwes && this.closedWith === undefined) {
      const event = this.next();
      if ('data' in event) {
        answer.push(event.data);
        this.turns.received(event.data);
      } else if ('closed' in event) this.closedWith = event.closed;
    }
    return concat(answer);
  }

  /** Ends the conversation and the worker. */
  async close(): Promise<void> {
    if (this.closedWith === undefined) this.send({ end: true });
    await this.worker.terminate();
    this.port.close();
  }

  /** The worker's first event (connected or not), waited for without blocking the thread. */
  private async firstEvent(): Promise<TcpEvent> {
    for (;;) {
      const got = receiveMessageOnPort(this.port);
      if (got) return got.message as TcpEvent;
      const waited = Atomics.waitAsync(this.counter, 0, 0, 1000);
      if (waited.async) await waited.value;
    }
  }

  private send(command: TcpCommand): void {
    this.port.postMessage(command);
  }

  /** The worker's next event, blocking until there is one. */
  private next(): TcpEvent {
    for (;;) {
      // The counter is read before looking, so a post that comes in between makes the wait return at once.
      const seen = Atomics.load(this.counter, 0);
      const got = receiveMessageOnPort(this.port);
      if (got) return got.message as TcpEvent;
      Atomics.wait(this.counter, 0, seen, 1000);
    }
  }
}
