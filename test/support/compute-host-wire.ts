// A raw Postgres wire client for tests of what `pg` cannot send: SSLRequest, COPY FROM STDIN, a Neon-style
// pipelined P/B/D/E/H/S batch, CancelRequest, random bytes.
import * as net from 'node:net';
import * as pgWire from '../../lib/pg-wire/index.ts';

/** A view of the same bytes as a Buffer (no copy). */
const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

export function msg(type: string, body: number[] | Uint8Array): Buffer {
  return asBuffer(pgWire.message(type, body instanceof Uint8Array ? body : new Uint8Array(body)));
}

/** The codec's encoders (lib/pg-wire), as Buffers. */
export const wire = {
  startup: (params: Record<string, string>): Buffer => asBuffer(pgWire.startupMessage(params)),
  sslRequest: (): Buffer => asBuffer(pgWire.sslRequest()),
  cancelRequest: (pid: number, secret: number): Buffer => asBuffer(pgWire.cancelRequest(pid, secret)),
  password: (p: string) => asBuffer(pgWire.passwordMessage(p)),
  query: (sql: string) => asBuffer(pgWire.query(sql)),
  parse: (sql: string, name = '') => asBuffer(pgWire.parse(sql, name)),
  bind: (values: (string | null)[], stmt = '', portal = '') => asBuffer(pgWire.bind(values, stmt, portal)),
  describePortal: (portal = '') => asBuffer(pgWire.describe('P', portal)),
  execute: (portal = '') => asBuffer(pgWire.execute(portal)),
  flush: () => asBuffer(pgWire.flush()),
  sync: () => asBuffer(pgWire.sync()),
  copyData: (s: string) => asBuffer(pgWire.copyData(pgWire.utf8(s))),
  copyDone: () => asBuffer(pgWire.copyDone()),
  copyFail: (m: string) => asBuffer(pgWire.copyFail(m)),
  terminate: () => asBuffer(pgWire.terminate()),
};

export interface BackendMsg {
  type: string;
  body: Buffer;
}

/** An ErrorResponse's (or NoticeResponse's) fields by their one-letter code. */
export function errorFields(m: BackendMsg): Record<string, string> {
  return pgWire.parseErrorFields(m.body);
}

/** A socket with a message reader: `until(pred)` collects messages up to and including the first that matches. */
export class RawConn {
  readonly socket: net.Socket;
  private readonly reader = new pgWire.MessageReader();
  private readonly queue: BackendMsg[] = [];
  private waiter: (() => void) | null = null;
  closed = false;
  /** Set by login(): the BackendKeyData. */
  pid = 0;
  secret = 0;
  /** The one-byte answer to an SSLRequest. */
  private expectByte = false;
  private byteAnswer: string | null = null;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      if (this.expectByte && d.length >= 1) {
        this.byteAnswer = String.fromCharCode(d[0]);
        d = d.subarray(1);
        this.expectByte = false;
      }
      this.reader.push(d);
      for (let m = this.reader.next(); m; m = this.reader.next()) this.queue.push({ type: m.type, body: asBuffer(m.body) });
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => {});
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => resolve(new RawConn(s)));
      s.once('error', reject);
    });
  }

  send(...parts: Uint8Array[]): void {
    this.socket.write(Buffer.concat(parts));
  }

  async sslRequest(): Promise<string> {
    this.expectByte = true;
    this.send(wire.sslRequest());
    const end = Date.now() + 5000;
    while (this.byteAnswer === null && Date.now() < end) await this.wait(50);
    return this.byteAnswer ?? '';
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiter = null;
        resolve();
      }, ms);
      this.waiter = () => {
        clearTimeout(t);
        this.waiter = null;
        resolve();
      };
    });
  }

  /** Messages up to and including the first of type `type` (default ReadyForQuery). */
  async until(type = 'Z', timeoutMs = 10_000): Promise<BackendMsg[]> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const i = this.queue.findIndex((m) => m.type === type);
      if (i >= 0) return this.queue.splice(0, i + 1);
      if (this.closed) throw new Error(`connection closed before '${type}'; got ${this.queue.map((m) => m.type).join('')}`);
      if (Date.now() > end) throw new Error(`timed out waiting for '${type}'; got ${this.queue.map((m) => m.type).join('')}`);
      await this.wait(Math.max(1, end - Date.now()));
    }
  }

  /** Waits for the server to close the connection; returns what it sent before. */
  async closedBy(timeoutMs = 5000): Promise<BackendMsg[]> {
    const end = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < end) await this.wait(end - Date.now());
    return this.queue.splice(0);
  }

  async login(token: string, params: Record<string, string> = {}): Promise<BackendMsg[]> {
    this.send(wire.startup({ user: 'postgres', database: 'neondb', ...params }));
    const auth = await this.until('R');
    if (auth[auth.length - 1].body.readInt32BE(0) !== 3) throw new Error('expected a cleartext password request');
    this.send(wire.password(token));
    const msgs = await this.until('Z');
    const k = msgs.find((m) => m.type === 'K');
    if (k) {
      this.pid = k.body.readInt32BE(0);
      this.secret = k.body.readInt32BE(4);
    }
    return msgs;
  }

  end(): void {
    if (!this.closed) this.socket.end(wire.terminate());
  }
}

export function dataRows(msgs: BackendMsg[]): string[][] {
  return msgs.filter((m) => m.type === 'D').map((m) => pgWire.parseDataRow(m.body).map((v) => v ?? 'NULL'));
}

export function types(msgs: BackendMsg[]): string {
  return msgs.map((m) => m.type).join('');
}
