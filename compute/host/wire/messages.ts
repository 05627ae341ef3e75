// Postgres wire protocol (v3) pieces the compute's server needs: a frame reader for what clients send, the
// startup packet, and encoders for the backend messages the server writes itself (everything else comes out of
// PGlite as bytes and is relayed untouched).

export const PROTOCOL_3_0 = 196608;
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;

export class ProtocolViolation extends Error {
  readonly code: string;
  constructor(message: string, code = '08P01') {
    super(message);
    this.name = 'ProtocolViolation';
    this.code = code;
  }
}

export interface Frame {
  type: string;
  /** The whole message: type byte, length, body. */
  bytes: Uint8Array;
  body: Uint8Array;
}

/**
 * Accumulates socket chunks and cuts them into messages. The chunks are kept as a list and joined only as far as
 * the next message needs: a paused socket with megabytes buffered (COPY data behind a running chunk) costs no
 * copy per arriving chunk.
 */
export class FrameReader {
  /** The first bytes, contiguous; `rest` follows it. */
  private head: Uint8Array = new Uint8Array(0);
  private rest: Uint8Array[] = [];
  private total = 0;
  private readonly maxMessageBytes: number;

  constructor(maxMessageBytes: number) {
    this.maxMessageBytes = maxMessageBytes;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.head.length === 0) this.head = chunk;
    else this.rest.push(chunk);
    this.total += chunk.length;
  }

  get buffered(): number {
    return this.total;
  }

  /** Makes the first `n` bytes contiguous in `head`; false when fewer are buffered. */
  private ensure(n: number): boolean {
    if (this.total < n) return false;
    if (this.head.length >= n) return true;
    const parts = [this.head];
    let len = this.head.length;
    let k = 0;
    while (len < n) {
      len += this.rest[k].length;
      parts.push(this.rest[k++]);
    }
    this.rest = this.rest.slice(k);
    this.head = concat(parts);
    return true;
  }

  private take(n: number): Uint8Array {
    const out = this.head.subarray(0, n);
    this.head = this.head.subarray(n);
    this.total -= n;
    if (this.head.length === 0 && this.rest.length > 0) this.head = this.rest.shift()!;
    return out;
  }

  /** The startup-phase packet (no type byte): length, then payload. Null until complete. */
  nextStartup(): Uint8Array | null {
    if (!this.ensure(4)) return null;
    const len = readInt32(this.head, 0);
    if (len < 8 || len > 10_000) throw new ProtocolViolation(`invalid startup packet length ${len}`);
    if (!this.ensure(len)) return null;
    return this.take(len).subarray(4);
  }

  /** The next complete message, or null. */
  next(): Frame | null {
    if (!this.ensure(5)) return null;
    const len = readInt32(this.head, 1);
    if (len < 4) throw new ProtocolViolation(`invalid message length ${len}`);
    if (len + 1 > this.maxMessageBytes) throw new ProtocolViolation(`message of ${len + 1} bytes is over the ${this.maxMessageBytes}-byte limit`, '54000');
    if (!this.ensure(len + 1)) return null;
    const bytes = this.take(len + 1);
    return { type: String.fromCharCode(bytes[0]), bytes, body: bytes.subarray(5) };
  }

  /** Whether a complete message is already buffered. */
  hasFrame(): boolean {
    return this.ensure(5) && this.total >= readInt32(this.head, 1) + 1;
  }
}

export function readInt32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) | 0;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Reads NUL-terminated strings and integers from a message body. */
export class BodyReader {
  private off = 0;
  private readonly b: Uint8Array;
  constructor(b: Uint8Array) {
    this.b = b;
  }
  cstring(): string {
    const end = this.b.indexOf(0, this.off);
    if (end < 0) throw new ProtocolViolation('unterminated string in message');
    const s = decoder.decode(this.b.subarray(this.off, end));
    this.off = end + 1;
    return s;
  }
  int32(): number {
    if (this.off + 4 > this.b.length) throw new ProtocolViolation('message too short');
    const v = readInt32(this.b, this.off);
    this.off += 4;
    return v;
  }
  byte(): number {
    if (this.off >= this.b.length) throw new ProtocolViolation('message too short');
    return this.b[this.off++];
  }
  rest(): Uint8Array {
    const r = this.b.subarray(this.off);
    this.off = this.b.length;
    return r;
  }
  get done(): boolean {
    return this.off >= this.b.length;
  }
}

export type Startup =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; pid: number; secret: number }
  | { kind: 'startup'; minor: number; params: Map<string, string> };

export function parseStartup(packet: Uint8Array): Startup {
  const r = new BodyReader(packet);
  const code = r.int32();
  if (code === SSL_REQUEST) return { kind: 'ssl' };
  if (code === GSSENC_REQUEST) return { kind: 'gssenc' };
  if (code === CANCEL_REQUEST) return { kind: 'cancel', pid: r.int32(), secret: r.int32() };
  const major = code >>> 16;
  if (major !== 3) throw new ProtocolViolation(`unsupported frontend protocol ${major}.${code & 0xffff}: server supports 3.0`, '0A000');
  const params = new Map<string, string>();
  for (;;) {
    const k = r.cstring();
    if (k === '') break;
    params.set(k, r.cstring());
  }
  return { kind: 'startup', minor: code & 0xffff, params };
}

// ---- backend messages ----------------------------------------------------------------------------------------

export function message(type: string, body: Uint8Array | number[]): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  writeInt32(out, 1, body.length + 4);
  out.set(body, 5);
  return out;
}

function writeInt32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 255;
  b[off + 1] = (v >>> 16) & 255;
  b[off + 2] = (v >>> 8) & 255;
  b[off + 3] = v & 255;
}

function int32(v: number): number[] {
  return [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
}

function cstr(s: string): number[] {
  return [...encoder.encode(s), 0];
}

export function authRequest(code: number): Uint8Array {
  return message('R', int32(code));
}

export function parameterStatus(name: string, value: string): Uint8Array {
  return message('S', [...cstr(name), ...cstr(value)]);
}

export function backendKeyData(pid: number, secret: number): Uint8Array {
  return message('K', [...int32(pid), ...int32(secret)]);
}

export function readyForQuery(status: TxStatus): Uint8Array {
  return message('Z', [status.charCodeAt(0)]);
}

export function negotiateProtocolVersion(minor: number, unrecognized: string[]): Uint8Array {
  return message('v', [...int32((3 << 16) | minor), ...int32(unrecognized.length), ...unrecognized.flatMap(cstr)]);
}

export function commandComplete(tag: string): Uint8Array {
  return message('C', cstr(tag));
}

/** One CopyData message holding `parts` (joined once, straight into the message). */
export function copyData(parts: Uint8Array[]): Uint8Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(5 + n);
  out[0] = 0x64; // d
  writeInt32(out, 1, n + 4);
  let off = 5;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function copyDone(): Uint8Array {
  return message('c', []);
}

/** Each message of a run of backend messages: its type byte and the whole message. */
export function* messagesIn(out: Uint8Array): Generator<{ type: string; bytes: Uint8Array; body: Uint8Array }> {
  let off = 0;
  while (off + 5 <= out.length) {
    const end = off + 1 + readInt32(out, off + 1);
    const bytes = out.subarray(off, end);
    yield { type: String.fromCharCode(out[off]), bytes, body: bytes.subarray(5) };
    off = end;
  }
}

/** CopyInResponse (overall format, no per-column formats: clients read the format only). */
export function copyInResponse(binary: boolean): Uint8Array {
  return message('G', [binary ? 1 : 0, 0, 0]);
}

export interface ErrorFields {
  severity: 'ERROR' | 'FATAL';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

export function errorResponse(f: ErrorFields): Uint8Array {
  const body: number[] = [];
  const field = (t: string, v: string | undefined): void => {
    if (v !== undefined) body.push(t.charCodeAt(0), ...cstr(v));
  };
  field('S', f.severity);
  field('V', f.severity);
  field('C', f.code);
  field('M', f.message);
  field('D', f.detail);
  field('H', f.hint);
  body.push(0);
  return message('E', body);
}

export type TxStatus = 'I' | 'T' | 'E';

/** The status byte of the last ReadyForQuery in a run of backend messages, or null if there is none. */
export function lastReadyStatus(out: Uint8Array): TxStatus | null {
  let status: TxStatus | null = null;
  let off = 0;
  while (off + 5 <= out.length) {
    const len = readInt32(out, off + 1);
    if (out[off] === 0x5a /* Z */ && len === 5) status = String.fromCharCode(out[off + 5]) as TxStatus;
    off += 1 + len;
  }
  return status;
}

/** Drops the messages of a type (e.g. the CopyInResponse a session already sent), copying only if needed. */
export function dropMessages(out: Uint8Array, type: string, max = Infinity): Uint8Array {
  const t = type.charCodeAt(0);
  const keep: Uint8Array[] = [];
  let off = 0;
  let dropped = 0;
  let start = 0;
  while (off + 5 <= out.length) {
    const len = readInt32(out, off + 1);
    if (out[off] === t && dropped < max) {
      keep.push(out.subarray(start, off));
      start = off + 1 + len;
      dropped++;
    }
    off += 1 + len;
  }
  if (dropped === 0) return out;
  keep.push(out.subarray(start));
  return concat(keep);
}

/** The ErrorResponse messages in a run of backend messages: their SQLSTATE codes and texts. */
export function errorsIn(out: Uint8Array): { code: string; message: string; severity: string }[] {
  const errs: { code: string; message: string; severity: string }[] = [];
  let off = 0;
  while (off + 5 <= out.length) {
    const len = readInt32(out, off + 1);
    if (out[off] === 0x45 /* E */) {
      const fields = new Map<string, string>();
      let p = off + 5;
      const end = off + 1 + len;
      while (p < end && out[p] !== 0) {
        const k = String.fromCharCode(out[p]);
        const z = out.indexOf(0, p + 1);
        fields.set(k, decoder.decode(out.subarray(p + 1, z)));
        p = z + 1;
      }
      errs.push({ code: fields.get('C') ?? '', message: fields.get('M') ?? '', severity: fields.get('V') ?? fields.get('S') ?? '' });
    }
    off += 1 + len;
  }
  return errs;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

// ---- frontend messages the server builds itself (cleanup, role switches) -----------------------------------------

export function query(sql: string): Uint8Array {
  return message('Q', cstr(sql));
}

export function sync(): Uint8Array {
  return message('S', []);
}

export function closeStatement(name: string): Uint8Array {
  return message('C', ['S'.charCodeAt(0), ...cstr(name)]);
}

export function encodeCString(s: string): number[] {
  return cstr(s);
}
