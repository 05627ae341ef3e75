// Postgres wire framing: a reader that cuts a byte stream (in any chunking) into tagged messages and untagged
// startup packets, refusing lengths out of range; a bounds-checked reader of one message body; the encoder of a
// tagged message; and an iterator over a contiguous run of messages. Every malformed input is a ProtocolError.
import { concat, decodeUtf8, readInt16, readInt32, writeInt32 } from './bytes.ts';
import { PROGRAM_LIMIT_EXCEEDED, ProtocolError } from './errors.ts';

export interface Message {
  /** One-character tag, e.g. 'R', 'Z', 'D'. */
  type: string;
  /** The whole message: tag, length word, body (relay it as is). */
  bytes: Uint8Array;
  /** The payload after the tag and the length word. */
  body: Uint8Array;
}

export interface ReaderLimits {
  /** Largest length word of a tagged message accepted (the message's size without its tag); default 1 GiB. */
  maxLength?: number;
  /** Largest startup packet accepted (its length word); default 10,000 bytes, as Postgres' own limit. */
  maxStartupLength?: number;
}

export const DEFAULT_MAX_LENGTH = 1 << 30;
export const DEFAULT_MAX_STARTUP_LENGTH = 10_000;
const EMPTY = new Uint8Array(0);

/**
 * Accumulates a byte stream and cuts it into messages; never assumes one chunk is one message. The chunks are
 * kept as a list and joined only as far as the next message needs: a message inside one chunk is a view of it
 * (no copy), and megabytes buffered behind a paused reader cost no copy per arriving chunk.
 */
export class MessageReader {
  /** The first bytes, contiguous; `rest` follows it. */
  private head: Uint8Array = EMPTY;
  private rest: Uint8Array[] = [];
  private total = 0;
  private readonly maxLength: number;
  private readonly maxStartupLength: number;

  constructor(limits: ReaderLimits = {}) {
    this.maxLength = limits.maxLength ?? DEFAULT_MAX_LENGTH;
    this.maxStartupLength = limits.maxStartupLength ?? DEFAULT_MAX_STARTUP_LENGTH;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.head.length === 0) this.head = chunk;
    else this.rest.push(chunk);
    this.total += chunk.length;
  }

  /** Bytes pushed and not yet taken. */
  get buffered(): number {
    return this.total;
  }

  /** The next tagged message, or null until it has fully arrived. */
  next(maxLength = this.maxLength): Message | null {
    if (!this.ensure(5)) return null;
    const len = readInt32(this.head, 1);
    if (len < 4) throw new ProtocolError(`invalid message length ${len}`);
    if (len > maxLength) throw new ProtocolError(`message of ${len + 1} bytes is over the ${maxLength + 1}-byte limit`, PROGRAM_LIMIT_EXCEEDED);
    if (!this.ensure(len + 1)) return null;
    const bytes = this.take(len + 1);
    return { type: String.fromCharCode(bytes[0]), bytes, body: bytes.subarray(5) };
  }

  /**
   * The next untagged startup-phase packet (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest): its
   * payload after the length word, or null until it has fully arrived.
   */
  nextStartup(maxLength = this.maxStartupLength): Uint8Array | null {
    if (!this.ensure(4)) return null;
    const len = readInt32(this.head, 0);
    if (len < 8 || len > maxLength) throw new ProtocolError(`invalid startup packet length ${len}`);
    if (!this.ensure(len)) return null;
    return this.take(len).subarray(4);
  }

  /** Whether a complete tagged message is already buffered. */
  hasMessage(): boolean {
    return this.ensure(5) && this.total >= readInt32(this.head, 1) + 1;
  }

  /** Hands over whatever has not been taken (when switching to a plain byte relay, or to TLS). */
  takeRest(): Uint8Array {
    const out = concat([this.head, ...this.rest]);
    this.head = EMPTY;
    this.rest = [];
    this.total = 0;
    return out;
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
}

/** Reads integers, bytes and NUL-terminated strings out of a message body; running past its end is a ProtocolError. */
export class BodyReader {
  private off = 0;
  private readonly b: Uint8Array;

  constructor(body: Uint8Array) {
    this.b = body;
  }

  get offset(): number {
    return this.off;
  }

  get remaining(): number {
    return this.b.length - this.off;
  }

  get done(): boolean {
    return this.off >= this.b.length;
  }

  private need(n: number): void {
    if (this.off + n > this.b.length) throw new ProtocolError('message too short');
  }

  byte(): number {
    this.need(1);
    return this.b[this.off++];
  }

  int16(): number {
    this.need(2);
    const v = readInt16(this.b, this.off);
    this.off += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = readInt32(this.b, this.off);
    this.off += 4;
    return v;
  }

  uint32(): number {
    return this.int32() >>> 0;
  }

  cstring(): string {
    const end = this.b.indexOf(0, this.off);
    if (end < 0) throw new ProtocolError('missing string terminator');
    const s = decodeUtf8(this.b.subarray(this.off, end));
    this.off = end + 1;
    return s;
  }

  bytes(n: number): Uint8Array {
    if (n < 0) throw new ProtocolError(`invalid length ${n}`);
    this.need(n);
    const out = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }

  rest(): Uint8Array {
    const out = this.b.subarray(this.off);
    this.off = this.b.length;
    return out;
  }
}

/** A tagged message from its payload parts, in one allocation. */
export function message(type: string, ...parts: Uint8Array[]): Uint8Array {
  return messageOf(type, parts);
}

/** message() for a list of parts (a spread of 100,000 arguments overflows the stack). */
export function messageOf(type: string, parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(5 + n);
  out[0] = type.charCodeAt(0);
  writeInt32(out, 1, n + 4);
  let off = 5;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Each message of a contiguous run of whole messages (e.g. a backend's output for one batch). */
export function* messagesIn(run: Uint8Array): Generator<Message> {
  let off = 0;
  while (off < run.length) {
    if (off + 5 > run.length) throw new ProtocolError('truncated message header');
    const len = readInt32(run, off + 1);
    if (len < 4) throw new ProtocolError(`invalid message length ${len}`);
    const end = off + 1 + len;
    if (end > run.length) throw new ProtocolError('truncated message');
    const bytes = run.subarray(off, end);
    yield { type: String.fromCharCode(run[off]), bytes, body: bytes.subarray(5) };
    off = end;
  }
}
