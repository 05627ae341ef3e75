// A raw Postgres wire client for tests of what `pg` cannot send: SSLRequest, COPY FROM STDIN, a Neon-style
// pipelined P/B/D/E/H/S batch, CancelRequest, random bytes.
import * as net from 'node:net';

const enc = new TextEncoder();
const dec = new TextDecoder();

function int32(v: number): number[] {
  return [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
}
function int16(v: number): number[] {
  return [(v >>> 8) & 255, v & 255];
}
function cstr(s: string): number[] {
  return [...enc.encode(s), 0];
}

export function msg(type: string, body: number[] | Uint8Array): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(body.length + 4, 1);
  Buffer.from(body).copy(out, 5);
  return out;
}

export const wire = {
  startup(params: Record<string, string>): Buffer {
    const body = [...int32(196608), ...Object.entries(params).flatMap(([k, v]) => [...cstr(k), ...cstr(v)]), 0];
    const out = Buffer.alloc(4 + body.length);
    out.writeInt32BE(4 + body.length, 0);
    Buffer.from(body).copy(out, 4);
    return out;
  },
  sslRequest(): Buffer {
    return Buffer.from([0, 0, 0, 8, ...int32(80877103)]);
  },
  cancelRequest(pid: number, secret: number): Buffer {
    return Buffer.from([0, 0, 0, 16, ...int32(80877102), ...int32(pid), ...int32(secret)]);
  },
  password: (p: string) => msg('p', cstr(p)),
  query: (sql: string) => msg('Q', cstr(sql)),
  parse: (sql: string, name = '') => msg('P', [...cstr(name), ...cstr(sql), ...int16(0)]),
  bind: (values: (string | null)[], stmt = '', portal = '') =>
    msg('B', [...cstr(portal), ...cstr(stmt), ...int16(0), ...int16(values.length),
      ...values.flatMap((v) => (v === null ? int32(-1) : [...int32(enc.encode(v).length), ...enc.encode(v)])), ...int16(0)]),
  describePortal: (portal = '') => msg('D', ['P'.charCodeAt(0), ...cstr(portal)]),
  execute: (portal = '') => msg('E', [...cstr(portal), ...int32(0)]),
  flush: () => msg('H', []),
  sync: () => msg('S', []),
  copyData: (s: string) => msg('d', enc.encode(s)),
  copyDone: () => msg('c', []),
  copyFail: (m: string) => msg('f', cstr(m)),
  terminate: () => msg('X', []),
};

export interface BackendMsg {
  type: string;
  body: Buffer;
}

export function errorFields(m: BackendMsg): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < m.body.length && m.body[off] !== 0) {
    const z = m.body.indexOf(0, off + 1);
    out[String.fromCharCode(m.body[off])] = dec.decode(m.body.subarray(off + 1, z));
    off = z + 1;
  }
  return out;
}

/** A socket with a message reader: `until(pred)` collects messages up to and including the first that matches. */
export class RawConn {
  readonly socket: net.Socket;
  private buf = Buffer.alloc(0);
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
      this.buf = Buffer.concat([this.buf, d]);
      if (this.expectByte && this.buf.length >= 1) {
        this.byteAnswer = String.fromCharCode(this.buf[0]);
        this.buf = this.buf.subarray(1);
        this.expectByte = false;
      }
      while (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (this.buf.length < len + 1) break;
        this.queue.push({ type: String.fromCharCode(this.buf[0]), body: this.buf.subarray(5, len + 1) });
        this.buf = this.buf.subarray(len + 1);
      }
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

  send(...parts: Buffer[]): void {
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
  return msgs.filter((m) => m.type === 'D').map((m) => {
    const n = m.body.readInt16BE(0);
    const out: string[] = [];
    let off = 2;
    for (let i = 0; i < n; i++) {
      const len = m.body.readInt32BE(off);
      off += 4;
      out.push(len < 0 ? 'NULL' : dec.decode(m.body.subarray(off, off + len)));
      off += Math.max(0, len);
    }
    return out;
  });
}

export function types(msgs: BackendMsg[]): string {
  return msgs.map((m) => m.type).join('');
}
