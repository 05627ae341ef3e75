// The startup phase's untagged packets, as a server reads them: a StartupMessage (protocol version and
// parameters), or an SSLRequest, GSSENCRequest or CancelRequest in its place. The payload is what
// MessageReader.nextStartup returns (the packet after its length word).
import { FEATURE_NOT_SUPPORTED, ProtocolError } from './errors.ts';
import { BodyReader } from './framing.ts';

export const PROTOCOL_3_0 = 196608;
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;

export type Startup =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; pid: number; secret: number }
  | { kind: 'startup'; major: 3; minor: number; params: Map<string, string> };

/** Payload sizes of the fixed-size requests (their packets are 8, 8 and 16 bytes long). */
export const REQUEST_PAYLOAD: Record<'ssl' | 'gssenc' | 'cancel', number> = { ssl: 4, gssenc: 4, cancel: 12 };

/** The startup packet's meaning; protocol 3.x only (another major version: 0A000). */
export function parseStartup(payload: Uint8Array): Startup {
  const r = new BodyReader(payload);
  const code = r.int32();
  if (code === SSL_REQUEST_CODE) return { kind: 'ssl' };
  if (code === GSSENC_REQUEST_CODE) return { kind: 'gssenc' };
  if (code === CANCEL_REQUEST_CODE) return { kind: 'cancel', pid: r.int32(), secret: r.int32() };
  const major = code >>> 16;
  if (major !== 3) throw new ProtocolError(`unsupported frontend protocol ${major}.${code & 0xffff}: server supports 3.0`, FEATURE_NOT_SUPPORTED);
  return { kind: 'startup', major: 3, minor: code & 0xffff, params: startupParams(r) };
}

/** Name/value pairs up to the empty name that ends them. */
function startupParams(r: BodyReader): Map<string, string> {
  const params = new Map<string, string>();
  for (;;) {
    const name = r.cstring();
    if (name === '') return params;
    params.set(name, r.cstring());
  }
}

/** Whether a fixed-size request has exactly its size (the proxy refuses one that has not). */
export function hasRequestSize(st: Startup, payload: Uint8Array): boolean {
  return st.kind === 'startup' || payload.length === REQUEST_PAYLOAD[st.kind];
}
