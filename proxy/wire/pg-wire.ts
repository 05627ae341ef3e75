// Postgres wire protocol v3: message framing, encoders for the messages the proxy sends (as a server to
// clients and as a client to computes) and decoders for the ones it must understand. Everything else is
// relayed as opaque bytes.

export const PROTOCOL_V3 = 196608;
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;

export interface PgMessage {
  /** One-character tag, e.g. 'R', 'Z', 'D'. */
  type: string;
  /** Payload after the tag and the length word. */
  body: Buffer;
}

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/** Accumulates a byte stream and cuts it into messages; never assumes one chunk is one message. */
export class MessageReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  get buffered(): number {
    return this.buf.length;
  }

  /** Next tagged message, or null if it has not fully arrived. `maxLength` guards memory on hostile input. */
  next(maxLength = 1 << 30): PgMessage | null {
    if (this.buf.length < 5) return null;
    const len = this.buf.readInt32BE(1);
    if (len < 4 || len > maxLength) throw new ProtocolError(`invalid message length ${len}`);
    if (this.buf.length < len + 1) return null;
    const type = String.fromCharCode(this.buf[0]);
    const body = this.buf.subarray(5, len + 1);
    this.buf = this.buf.subarray(len + 1);
    return { type, body };
  }

  /** Next untagged startup-phase packet (StartupMessage, SSLRequest, CancelRequest), whole, with its length. */
  nextStartup(maxLength: number): Buffer | null {
    if (this.buf.length < 4) return null;
    const len = this.buf.readInt32BE(0);
    if (len < 8 || len > maxLength) throw new ProtocolError(`invalid startup packet length ${len}`);
    if (this.buf.length < len) return null;
    const packet = this.buf.subarray(0, len);
    this.buf = this.buf.subarray(len);
    return packet;
  }

  /** Hands over whatever has not been consumed (used when switching to plain relay). */
  takeRest(): Buffer {
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }
}

// ---- encoding helpers ----

function cstr(s: string): Buffer {
  return Buffer.from(s + '\0', 'utf8');
}

/** A tagged message from its payload parts. */
export function message(type: string, ...parts: Buffer[]): Buffer {
  return messageOf(type, parts);
}

/** message() for many parts (a spread of 100,000 arguments overflows the stack). */
function messageOf(type: string, parts: Buffer[]): Buffer {
  let bodyLen = 0;
  for (const p of parts) bodyLen += p.length;
  const out = Buffer.allocUnsafe(bodyLen + 5);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(bodyLen + 4, 1);
  let at = 5;
  for (const p of parts) at += p.copy(out, at);
  return out;
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n | 0, 0);
  return b;
}

function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n, 0);
  return b;
}

/** A count Postgres reads as unsigned 16 bits (Bind's parameter count: up to 65535). */
function uint16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n, 0);
  return b;
}

// ---- frontend messages (proxy as a client of the compute) ----

export function startupMessage(params: Record<string, string>): Buffer {
  const parts: Buffer[] = [int32(PROTOCOL_V3)];
  for (const [k, v] of Object.entries(params)) parts.push(cstr(k), cstr(v));
  parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  return Buffer.concat([int32(body.length + 4), body]);
}

export function passwordMessage(password: string): Buffer {
  return message('p', cstr(password));
}

export function saslInitialResponse(mechanism: string, data: Buffer): Buffer {
  return message('p', cstr(mechanism), int32(data.length), data);
}

export function saslResponse(data: Buffer): Buffer {
  return message('p', data);
}

export function queryMessage(sql: string): Buffer {
  return message('Q', cstr(sql));
}

/** Parse of the unnamed statement with no parameter types: Postgres infers them all. */
export function parseMessage(sql: string): Buffer {
  return message('P', cstr(''), cstr(sql), int16(0));
}

/** Bind of the unnamed portal, every parameter and result column in text format. */
export function bindMessage(params: readonly (string | null)[]): Buffer {
  const parts: Buffer[] = [cstr(''), cstr(''), int16(0), uint16(params.length)];
  for (const p of params) {
    if (p === null) parts.push(int32(-1));
    else {
      const v = Buffer.from(p, 'utf8');
      parts.push(int32(v.length), v);
    }
  }
  parts.push(int16(0));
  return messageOf('B', parts);
}

export function describePortalMessage(): Buffer {
  return message('D', Buffer.from('P\0', 'latin1'));
}

export function executeMessage(): Buffer {
  return message('E', cstr(''), int32(0));
}

export const SYNC = message('S');
export const TERMINATE = message('X');

export function cancelRequest(pid: number, secret: number): Buffer {
  return Buffer.concat([int32(16), int32(CANCEL_REQUEST_CODE), int32(pid), int32(secret)]);
}

// ---- backend messages (proxy as a server to clients) ----

export const AUTH_OK = message('R', int32(0));
export const AUTH_CLEARTEXT = message('R', int32(3));

export function authSasl(mechanisms: string[]): Buffer {
  return message('R', int32(10), ...mechanisms.map(cstr), Buffer.from([0]));
}

export function authSaslContinue(data: string): Buffer {
  return message('R', int32(11), Buffer.from(data, 'utf8'));
}

export function authSaslFinal(data: string): Buffer {
  return message('R', int32(12), Buffer.from(data, 'utf8'));
}

export function backendKeyData(pid: number, secret: number): Buffer {
  return message('K', int32(pid), int32(secret));
}

export function readyForQuery(status: string): Buffer {
  return message('Z', Buffer.from(status, 'latin1'));
}

export function negotiateProtocolVersion(minor: number, unsupported: string[]): Buffer {
  return message('v', int32((3 << 16) | minor), int32(unsupported.length), ...unsupported.map(cstr));
}

/** ErrorResponse with the usual S/V/C/M fields (plus any extra single-letter fields). */
export function errorResponse(code: string, msg: string, severity = 'ERROR', extra: Record<string, string> = {}): Buffer {
  const parts: Buffer[] = [];
  const fields: Record<string, string> = { S: severity, V: severity, C: code, M: msg, ...extra };
  for (const [k, v] of Object.entries(fields)) parts.push(Buffer.from(k, 'latin1'), cstr(v));
  parts.push(Buffer.from([0]));
  return message('E', ...parts);
}

// ---- decoders ----

/** Reads NUL-terminated strings out of a payload. */
export class BodyReader {
  offset = 0;
  private readonly buf: Buffer;

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  int32(): number {
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  uint32(): number {
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  int16(): number {
    const v = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  cstring(): string {
    const end = this.buf.indexOf(0, this.offset);
    if (end < 0) throw new ProtocolError('missing string terminator');
    const s = this.buf.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return s;
  }

  bytes(n: number): Buffer {
    if (this.offset + n > this.buf.length) throw new ProtocolError('message too short');
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }

  rest(): Buffer {
    const b = this.buf.subarray(this.offset);
    this.offset = this.buf.length;
    return b;
  }
}

/** ErrorResponse / NoticeResponse fields keyed by their one-letter code. */
export function parseErrorFields(body: Buffer): Record<string, string> {
  const fields: Record<string, string> = {};
  const r = new BodyReader(body);
  while (r.offset < body.length) {
    const code = body[r.offset];
    r.offset += 1;
    if (code === 0) break;
    fields[String.fromCharCode(code)] = r.cstring();
  }
  return fields;
}

export interface FieldDescription {
  name: string;
  tableID: number;
  columnID: number;
  dataTypeID: number;
  dataTypeSize: number;
  dataTypeModifier: number;
  format: 'text' | 'binary';
}

export function parseRowDescription(body: Buffer): FieldDescription[] {
  const r = new BodyReader(body);
  const n = r.int16();
  const fields: FieldDescription[] = [];
  for (let i = 0; i < n; i++) {
    const name = r.cstring();
    const tableID = r.uint32();
    const columnID = r.int16();
    const dataTypeID = r.uint32();
    const dataTypeSize = r.int16();
    const dataTypeModifier = r.int32();
    const format = r.int16() === 0 ? 'text' : 'binary';
    fields.push({ name, tableID, columnID, dataTypeID, dataTypeSize, dataTypeModifier, format });
  }
  return fields;
}

/** DataRow values as text (the proxy always asks for text format); null for SQL NULL. */
export function parseDataRow(body: Buffer): (string | null)[] {
  const n = body.readInt16BE(0);
  const values: (string | null)[] = new Array(n);
  let off = 2;
  for (let i = 0; i < n; i++) {
    const len = body.readInt32BE(off);
    off += 4;
    if (len < 0) values[i] = null;
    else {
      values[i] = body.toString('utf8', off, off + len);
      off += len;
    }
  }
  return values;
}

/** StartupMessage key/value pairs (after the version word). */
export function parseStartupParams(packet: Buffer): Record<string, string> {
  const r = new BodyReader(packet.subarray(8));
  const params: Record<string, string> = {};
  for (;;) {
    if (r.offset >= packet.length - 8) throw new ProtocolError('startup packet not terminated');
    const key = r.cstring();
    if (key === '') break;
    params[key] = r.cstring();
  }
  return params;
}
