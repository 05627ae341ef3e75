// Messages a server sends (encoders, for the proxy and the compute host answering clients, and for tests), and
// their decoders (for the proxy reading a compute, and for tests). Only the messages this project writes or
// looks inside are here; everything else is relayed as bytes.
import { cstring, int16, int32, utf8 } from './bytes.ts';
import { BodyReader, message, messageOf } from './framing.ts';

export type TxStatus = 'I' | 'T' | 'E';

// ---- authentication ----

export const AUTH_OK = 0;
export const AUTH_CLEARTEXT_PASSWORD = 3;
export const AUTH_MD5_PASSWORD = 5;
export const AUTH_SASL = 10;
export const AUTH_SASL_CONTINUE = 11;
export const AUTH_SASL_FINAL = 12;

const bytesOf = (data: string | Uint8Array): Uint8Array => (typeof data === 'string' ? utf8(data) : data);

export function authOk(): Uint8Array {
  return message('R', int32(AUTH_OK));
}

export function authCleartextPassword(): Uint8Array {
  return message('R', int32(AUTH_CLEARTEXT_PASSWORD));
}

export function authMd5Password(salt: Uint8Array): Uint8Array {
  return message('R', int32(AUTH_MD5_PASSWORD), salt);
}

export function authSasl(mechanisms: readonly string[]): Uint8Array {
  return messageOf('R', [int32(AUTH_SASL), ...mechanisms.map(cstring), new Uint8Array([0])]);
}

export function authSaslContinue(data: string | Uint8Array): Uint8Array {
  return message('R', int32(AUTH_SASL_CONTINUE), bytesOf(data));
}

export function authSaslFinal(data: string | Uint8Array): Uint8Array {
  return message('R', int32(AUTH_SASL_FINAL), bytesOf(data));
}

export type Authentication =
  | { kind: 'ok' }
  | { kind: 'cleartext' }
  | { kind: 'md5'; salt: Uint8Array }
  | { kind: 'sasl'; mechanisms: string[] }
  | { kind: 'saslContinue'; data: Uint8Array }
  | { kind: 'saslFinal'; data: Uint8Array }
  | { kind: 'other'; code: number };

/** An Authentication* request ('R'). */
export function parseAuthentication(body: Uint8Array): Authentication {
  const r = new BodyReader(body);
  const code = r.int32();
  switch (code) {
    case AUTH_OK:
      return { kind: 'ok' };
    case AUTH_CLEARTEXT_PASSWORD:
      return { kind: 'cleartext' };
    case AUTH_MD5_PASSWORD:
      return { kind: 'md5', salt: r.bytes(4) };
    case AUTH_SASL: {
      const mechanisms: string[] = [];
      for (let m = r.cstring(); m !== ''; m = r.cstring()) mechanisms.push(m);
      return { kind: 'sasl', mechanisms };
    }
    case AUTH_SASL_CONTINUE:
      return { kind: 'saslContinue', data: r.rest() };
    case AUTH_SASL_FINAL:
      return { kind: 'saslFinal', data: r.rest() };
    default:
      return { kind: 'other', code };
  }
}

// ---- session start and status ----

export function parameterStatus(name: string, value: string): Uint8Array {
  return message('S', cstring(name), cstring(value));
}

export function parseParameterStatus(body: Uint8Array): { name: string; value: string } {
  const r = new BodyReader(body);
  const name = r.cstring();
  return { name, value: r.cstring() };
}

export function backendKeyData(pid: number, secret: number): Uint8Array {
  return message('K', int32(pid), int32(secret));
}

export function parseBackendKeyData(body: Uint8Array): { pid: number; secret: number } {
  const r = new BodyReader(body);
  const pid = r.int32();
  return { pid, secret: r.int32() };
}

export function readyForQuery(status: TxStatus | string): Uint8Array {
  return message('Z', new Uint8Array([status.charCodeAt(0)]));
}

/** The transaction status byte of a ReadyForQuery, as a letter (I, T or E). */
export function parseReadyForQuery(body: Uint8Array): TxStatus {
  return String.fromCharCode(new BodyReader(body).byte()) as TxStatus;
}

/** NegotiateProtocolVersion: the newest 3.x minor version supported, and the `_pq_.` options not recognized. */
export function negotiateProtocolVersion(minor: number, unrecognized: readonly string[]): Uint8Array {
  return messageOf('v', [int32((3 << 16) | minor), int32(unrecognized.length), ...unrecognized.map(cstring)]);
}

export function parseNegotiateProtocolVersion(body: Uint8Array): { minor: number; unrecognized: string[] } {
  const r = new BodyReader(body);
  const minor = r.int32() & 0xffff;
  const n = r.int32();
  const unrecognized: string[] = [];
  for (let i = 0; i < n; i++) unrecognized.push(r.cstring());
  return { minor, unrecognized };
}

// ---- results ----

export interface FieldDescription {
  name: string;
  tableID: number;
  columnID: number;
  dataTypeID: number;
  dataTypeSize: number;
  dataTypeModifier: number;
  format: 'text' | 'binary';
}

export function rowDescription(fields: readonly FieldDescription[]): Uint8Array {
  const parts: Uint8Array[] = [int16(fields.length)];
  for (const f of fields) {
    parts.push(cstring(f.name), int32(f.tableID), int16(f.columnID), int32(f.dataTypeID), int16(f.dataTypeSize));
    parts.push(int32(f.dataTypeModifier), int16(f.format === 'text' ? 0 : 1));
  }
  return messageOf('T', parts);
}

export function parseRowDescription(body: Uint8Array): FieldDescription[] {
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

/** A DataRow of text values; null is SQL NULL. */
export function dataRow(values: readonly (string | null)[]): Uint8Array {
  const parts: Uint8Array[] = [int16(values.length)];
  for (const v of values) {
    if (v === null) parts.push(int32(-1));
    else {
      const b = utf8(v);
      parts.push(int32(b.length), b);
    }
  }
  return messageOf('D', parts);
}

const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** DataRow values as text; null for SQL NULL. */
export function parseDataRow(body: Uint8Array): (string | null)[] {
  const r = new BodyReader(body);
  const n = r.int16();
  const values: (string | null)[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const len = r.int32();
    values[i] = len < 0 ? null : decoder.decode(r.bytes(len));
  }
  return values;
}

export function commandComplete(tag: string): Uint8Array {
  return message('C', cstring(tag));
}

export function parseCommandComplete(body: Uint8Array): string {
  return new BodyReader(body).cstring();
}

// ---- errors and notices ----

export interface ErrorFields {
  severity: 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG' | (string & {});
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** ErrorResponse with the fields S, V, C, M (and D, H when given), in that order. */
export function errorResponse(f: ErrorFields): Uint8Array {
  return fieldsMessage('E', toFieldMap(f));
}

export function noticeResponse(f: ErrorFields): Uint8Array {
  return fieldsMessage('N', toFieldMap(f));
}

function toFieldMap(f: ErrorFields): Record<string, string> {
  const out: Record<string, string> = { S: f.severity, V: f.severity, C: f.code, M: f.message };
  if (f.detail !== undefined) out.D = f.detail;
  if (f.hint !== undefined) out.H = f.hint;
  return out;
}

/** An ErrorResponse ('E') or NoticeResponse ('N') of fields keyed by their one-letter code, in their order. */
export function fieldsMessage(type: 'E' | 'N', fields: Record<string, string>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [k, v] of Object.entries(fields)) parts.push(new Uint8Array([k.charCodeAt(0)]), cstring(v));
  parts.push(new Uint8Array([0]));
  return messageOf(type, parts);
}

/** ErrorResponse / NoticeResponse fields keyed by their one-letter code (the body's end also ends them). */
export function parseErrorFields(body: Uint8Array): Record<string, string> {
  const fields: Record<string, string> = {};
  const r = new BodyReader(body);
  while (!r.done) {
    const code = r.byte();
    if (code === 0) break;
    fields[String.fromCharCode(code)] = r.cstring();
  }
  return fields;
}

// ---- COPY (CopyData and CopyDone: frontend.ts) ----

export function copyInResponse(binary: boolean, columnFormats: readonly number[] = []): Uint8Array {
  return copyResponse('G', binary, columnFormats);
}

export function copyOutResponse(binary: boolean, columnFormats: readonly number[] = []): Uint8Array {
  return copyResponse('H', binary, columnFormats);
}

function copyResponse(type: 'G' | 'H', binary: boolean, columnFormats: readonly number[]): Uint8Array {
  return messageOf(type, [new Uint8Array([binary ? 1 : 0]), int16(columnFormats.length), ...columnFormats.map(int16)]);
}

/** CopyInResponse / CopyOutResponse: the overall format and each column's (0 text, 1 binary). */
export function parseCopyResponse(body: Uint8Array): { binary: boolean; columnFormats: number[] } {
  const r = new BodyReader(body);
  const binary = r.byte() !== 0;
  const n = r.int16();
  const columnFormats: number[] = [];
  for (let i = 0; i < n; i++) columnFormats.push(r.int16());
  return { binary, columnFormats };
}
