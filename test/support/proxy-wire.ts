// A raw Postgres-wire client for tests, over a WebSocket or a TCP socket: send exact bytes in exact frames and
// look at every backend message, for the checklist items no driver exposes. Also the codec (lib/pg-wire) with
// Buffers in and out, for tests that read message bodies with Buffer's methods.
import net from 'node:net';
import WebSocket from 'ws';
import * as pgWire from '../../lib/pg-wire/index.ts';
import { parseErrorFields } from '../../lib/pg-wire/index.ts';

export { parseErrorFields } from '../../lib/pg-wire/index.ts';

/** A view of the same bytes as a Buffer (no copy). */
export function asBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

export interface PgMessage {
  type: string;
  /** Payload after the tag and the length word. */
  body: Buffer;
}

/** The codec's message reader, handing out bodies as Buffers. */
export class MessageReader {
  private readonly reader = new pgWire.MessageReader();

  push(chunk: Uint8Array): void {
    this.reader.push(chunk);
  }

  next(maxLength?: number): PgMessage | null {
    const m = this.reader.next(maxLength);
    return m && { type: m.type, body: asBuffer(m.body) };
  }
}

export const startupMessage = (params: Record<string, string>): Buffer => asBuffer(pgWire.startupMessage(params));
export const passwordMessage = (password: string): Buffer => asBuffer(pgWire.passwordMessage(password));
export const saslInitialResponse = (mechanism: string, data: Uint8Array): Buffer => asBuffer(pgWire.saslInitialResponse(mechanism, data));
export const saslResponse = (data: Uint8Array): Buffer => asBuffer(pgWire.saslResponse(data));

export class WireClient {
  readonly messages: PgMessage[] = [];
  /** Raw bytes received (for single-byte answers such as 'N' to an SSLRequest). */
  raw = Buffer.alloc(0);
  closed = false;
  closeCode: number | null = null;
  private readonly reader = new MessageReader();
  private parse = true;
  private waiters: (() => void)[] = [];
  private readonly sendFn: (b: Buffer) => void;
  private readonly closeFn: () => void;

  private constructor(sendFn: (b: Buffer) => void, closeFn: () => void) {
    this.sendFn = sendFn;
    this.closeFn = closeFn;
  }

  static ws(url: string, headers: Record<string, string> = {}): Promise<WireClient & { socket: WebSocket }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      const c = new WireClient((b) => ws.send(b, { binary: true }), () => ws.close()) as WireClient & { socket: WebSocket };
      c.socket = ws;
      ws.on('message', (d: Buffer) => c.onData(d));
      ws.on('close', (code) => {
        c.closeCode = code;
        c.onClose();
      });
      ws.on('error', () => c.onClose());
      ws.once('open', () => resolve(c));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  static tcp(port: number): Promise<WireClient & { socket: net.Socket }> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port });
      const c = new WireClient((b) => s.write(b), () => s.end()) as WireClient & { socket: net.Socket };
      c.socket = s;
      s.on('data', (d) => c.onData(d));
      s.on('close', () => c.onClose());
      s.on('error', () => c.onClose());
      s.once('connect', () => resolve(c));
      s.once('error', reject);
    });
  }

  /** Stop parsing messages (e.g. when single-byte replies are expected); bytes still land in `raw`. */
  rawMode(on: boolean): void {
    this.parse = !on;
  }

  send(...parts: Uint8Array[]): void {
    this.sendFn(Buffer.concat(parts));
  }

  close(): void {
    this.closeFn();
  }

  private onData(d: Buffer): void {
    this.raw = Buffer.concat([this.raw, d]);
    if (this.parse) {
      this.reader.push(d);
      for (let m = this.reader.next(); m; m = this.reader.next()) this.messages.push(m);
    }
    this.notify();
  }

  private onClose(): void {
    this.closed = true;
    this.notify();
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits until `cond` holds (checked on every arrival), or fails after `ms`. */
  async until(cond: () => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error('timed out waiting on the wire');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  types(): string {
    return this.messages.map((m) => m.type).join('');
  }

  /** Waits for the n-th ReadyForQuery (1-based). */
  readyCount(): number {
    return this.messages.filter((m) => m.type === 'Z').length;
  }

  error(): Record<string, string> | null {
    const e = this.messages.find((m) => m.type === 'E');
    return e ? parseErrorFields(e.body) : null;
  }
}
