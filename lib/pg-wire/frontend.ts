// Messages a client sends (encoders, for the proxy as a client of computes and for tests), and decoders of
// the few a server must look inside (SASLInitialResponse, Query, Parse). CopyData and CopyDone are the same
// messages in both directions; they live here.
import { concat, cstring, int16, int32, utf8 } from './bytes.ts';
import { BodyReader, message, messageOf } from './framing.ts';
import { CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, PROTOCOL_3_0, SSL_REQUEST_CODE } from './startup.ts';

const EMPTY = new Uint8Array(0);

/** An untagged startup-phase packet: length word, then the parts. */
function packet(parts: Uint8Array[]): Uint8Array {
  const body = concat(parts);
  return concat([int32(body.length + 4), body]);
}

// ---- startup phase ----

export function startupMessage(params: Record<string, string> | Iterable<[string, string]>, version = PROTOCOL_3_0): Uint8Array {
  const parts: Uint8Array[] = [int32(version)];
  const entries = Symbol.iterator in params ? params : Object.entries(params);
  for (const [k, v] of entries as Iterable<[string, string]>) parts.push(cstring(k), cstring(v));
  parts.push(new Uint8Array([0]));
  return packet(parts);
}

export function sslRequest(): Uint8Array {
  return packet([int32(SSL_REQUEST_CODE)]);
}

export function gssencRequest(): Uint8Array {
  return packet([int32(GSSENC_REQUEST_CODE)]);
}

export function cancelRequest(pid: number, secret: number): Uint8Array {
  return packet([int32(CANCEL_REQUEST_CODE), int32(pid), int32(secret)]);
}

// ---- authentication ----

export function passwordMessage(password: string): Uint8Array {
  return message('p', cstring(password));
}

export function saslInitialResponse(mechanism: string, data: Uint8Array): Uint8Array {
  return message('p', cstring(mechanism), int32(data.length), data);
}

export function saslResponse(data: Uint8Array): Uint8Array {
  return message('p', data);
}

/** SASLInitialResponse: the mechanism and the client's first message (a length of -1 means none). */
export function parseSaslInitialResponse(body: Uint8Array): { mechanism: string; data: Uint8Array | null } {
  const r = new BodyReader(body);
  const mechanism = r.cstring();
  const len = r.int32();
  return { mechanism, data: len === -1 ? null : r.bytes(len) };
}

// ---- simple and extended query ----

export function query(sql: string): Uint8Array {
  return message('Q', cstring(sql));
}

export function parseQuery(body: Uint8Array): string {
  return new BodyReader(body).cstring();
}

/** Parse of a statement; no parameter types by default (Postgres infers them all). */
export function parse(sql: string, name = '', paramTypes: readonly number[] = []): Uint8Array {
  return messageOf('P', [cstring(name), cstring(sql), int16(paramTypes.length), ...paramTypes.map(int32)]);
}

/** The statement name and text of a Parse (the parameter types are left unread). */
export function parseParse(body: Uint8Array): { name: string; sql: string } {
  const r = new BodyReader(body);
  const name = r.cstring();
  return { name, sql: r.cstring() };
}

/** Bind with every parameter and result column in text format; null is SQL NULL. */
export function bind(values: readonly (string | null)[], statement = '', portal = ''): Uint8Array {
  const parts: Uint8Array[] = [cstring(portal), cstring(statement), int16(0), int16(values.length)];
  for (const v of values) {
    if (v === null) parts.push(int32(-1));
    else {
      const b = utf8(v);
      parts.push(int32(b.length), b);
    }
  }
  parts.push(int16(0));
  return messageOf('B', parts);
}

/** Describe of a statement ('S') or a portal ('P'). */
export function describe(kind: 'S' | 'P', name = ''): Uint8Array {
  return message('D', new Uint8Array([kind.charCodeAt(0)]), cstring(name));
}

export function execute(portal = '', maxRows = 0): Uint8Array {
  return message('E', cstring(portal), int32(maxRows));
}

/** Close of a statement ('S') or a portal ('P'). */
export function close(kind: 'S' | 'P', name = ''): Uint8Array {
  return message('C', new Uint8Array([kind.charCodeAt(0)]), cstring(name));
}

export function sync(): Uint8Array {
  return message('S');
}

export function flush(): Uint8Array {
  return message('H');
}

export function terminate(): Uint8Array {
  return message('X');
}

// ---- COPY ----

/** One CopyData message holding `data` (a list of parts is joined once, straight into the message). */
export function copyData(data: Uint8Array | readonly Uint8Array[]): Uint8Array {
  return messageOf('d', data instanceof Uint8Array ? [data] : data);
}

export function copyDone(): Uint8Array {
  return message('c', EMPTY);
}

export function copyFail(reason: string): Uint8Array {
  return message('f', cstring(reason));
}
