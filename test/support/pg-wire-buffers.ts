// The bytes of each Postgres wire message the codec (lib/pg-wire) reads or writes, written out by hand, byte by
// byte, from the protocol documentation (after node-postgres' pg-protocol test buffers): the codec's encoders
// must produce exactly these, and its decoders must read them back. Nothing here uses the codec. A tagged
// fixture states its length word literally; `tagged` checks it against the body, so a miscount fails at load.

type Part = number | readonly number[];

/** The character codes of an ASCII string. */
export function ascii(s: string): number[] {
  return [...s].map((c) => {
    const n = c.charCodeAt(0);
    if (n > 127) throw new Error(`fixture text must be ASCII: ${s}`);
    return n;
  });
}

/** An ASCII string and its NUL terminator. */
export function z(s: string): number[] {
  return [...ascii(s), 0];
}

/** A tagged message: type byte, the four bytes of its length word as written, body. */
export function tagged(type: string, length: readonly [number, number, number, number], ...body: Part[]): Uint8Array {
  const flat = body.flat();
  const declared = (length[0] << 24) | (length[1] << 16) | (length[2] << 8) | length[3];
  if (declared !== flat.length + 4) throw new Error(`fixture '${type}': length word says ${declared}, body is ${flat.length} + 4`);
  return Uint8Array.from([type.charCodeAt(0), ...length, ...flat]);
}

/** An untagged startup-phase packet: the four bytes of its length word as written, payload. */
export function untagged(length: readonly [number, number, number, number], ...payload: Part[]): Uint8Array {
  const flat = payload.flat();
  const declared = (length[0] << 24) | (length[1] << 16) | (length[2] << 8) | length[3];
  if (declared !== flat.length + 4) throw new Error(`startup fixture: length word says ${declared}, payload is ${flat.length} + 4`);
  return Uint8Array.from([...length, ...flat]);
}

const NULL_LENGTH = [255, 255, 255, 255]; // int32 -1

// ---- what clients send ----

export const frontend = {
  /** StartupMessage 3.0, user=u database=d. */
  startup: untagged([0, 0, 0, 27], [0, 3, 0, 0], z('user'), z('u'), z('database'), z('d'), 0),
  /** StartupMessage 3.2 with a protocol extension parameter. */
  startup32: untagged([0, 0, 0, 25], [0, 3, 0, 2], z('user'), z('u'), z('_pq_.x'), z('1'), 0),
  /** 80877103 = 0x04d2162f */
  sslRequest: untagged([0, 0, 0, 8], [4, 210, 22, 47]),
  /** 80877104 = 0x04d21630 */
  gssencRequest: untagged([0, 0, 0, 8], [4, 210, 22, 48]),
  /** 80877102 = 0x04d2162e; pid 0x01020304, secret 0x0a0b0c0d */
  cancelRequest: untagged([0, 0, 0, 16], [4, 210, 22, 46], [1, 2, 3, 4], [10, 11, 12, 13]),
  password: tagged('p', [0, 0, 0, 7], z('pw')),
  saslInitialResponse: tagged('p', [0, 0, 0, 34], z('SCRAM-SHA-256'), [0, 0, 0, 12], ascii('n,,n=*,r=abc')),
  saslResponse: tagged('p', [0, 0, 0, 10], ascii('c=biws')),
  query: tagged('Q', [0, 0, 0, 13], z('SELECT 1')),
  /** Parse of statement s1 with one parameter of type int4 (23). */
  parse: tagged('P', [0, 0, 0, 23], z('s1'), z('SELECT $1'), [0, 1], [0, 0, 0, 23]),
  /** Bind of portal p1 to s1: text formats, values '1' and NULL. */
  bind: tagged('B', [0, 0, 0, 25], z('p1'), z('s1'), [0, 0], [0, 2], [0, 0, 0, 1], ascii('1'), NULL_LENGTH, [0, 0]),
  describePortal: tagged('D', [0, 0, 0, 8], ascii('P'), z('p1')),
  describeUnnamedStatement: tagged('D', [0, 0, 0, 6], ascii('S'), z('')),
  execute: tagged('E', [0, 0, 0, 11], z('p1'), [0, 0, 0, 10]),
  closeStatement: tagged('C', [0, 0, 0, 8], ascii('S'), z('s1')),
  sync: tagged('S', [0, 0, 0, 4]),
  flush: tagged('H', [0, 0, 0, 4]),
  terminate: tagged('X', [0, 0, 0, 4]),
  copyData: tagged('d', [0, 0, 0, 7], ascii('ab\n')),
  copyDone: tagged('c', [0, 0, 0, 4]),
  copyFail: tagged('f', [0, 0, 0, 8], z('bad')),
};

// ---- what servers send ----

export const backend = {
  authOk: tagged('R', [0, 0, 0, 8], [0, 0, 0, 0]),
  authCleartextPassword: tagged('R', [0, 0, 0, 8], [0, 0, 0, 3]),
  authMd5Password: tagged('R', [0, 0, 0, 12], [0, 0, 0, 5], [1, 2, 3, 4]),
  authSasl: tagged('R', [0, 0, 0, 23], [0, 0, 0, 10], z('SCRAM-SHA-256'), 0),
  authSaslContinue: tagged('R', [0, 0, 0, 24], [0, 0, 0, 11], ascii('r=abc,s=x,i=4096')),
  authSaslFinal: tagged('R', [0, 0, 0, 13], [0, 0, 0, 12], ascii('v=xyz')),
  parameterStatus: tagged('S', [0, 0, 0, 25], z('client_encoding'), z('UTF8')),
  /** pid 0x01020304 = 16909060, secret -1 */
  backendKeyData: tagged('K', [0, 0, 0, 12], [1, 2, 3, 4], [255, 255, 255, 255]),
  readyIdle: tagged('Z', [0, 0, 0, 5], ascii('I')),
  readyInTransaction: tagged('Z', [0, 0, 0, 5], ascii('T')),
  readyFailed: tagged('Z', [0, 0, 0, 5], ascii('E')),
  /** Two columns: n int4 (text), and bin bytea of table 16384 column 2 (binary). */
  rowDescription: tagged('T', [0, 0, 0, 48],
    [0, 2],
    z('n'), [0, 0, 0, 0], [0, 0], [0, 0, 0, 23], [0, 4], NULL_LENGTH, [0, 0],
    z('bin'), [0, 0, 64, 0], [0, 2], [0, 0, 0, 17], [255, 255], NULL_LENGTH, [0, 1]),
  /** '1', NULL, 'é' (UTF-8 c3 a9) */
  dataRow: tagged('D', [0, 0, 0, 21], [0, 3], [0, 0, 0, 1], ascii('1'), NULL_LENGTH, [0, 0, 0, 2], [0xc3, 0xa9]),
  commandComplete: tagged('C', [0, 0, 0, 13], z('SELECT 1')),
  errorResponse: tagged('E', [0, 0, 0, 38],
    ascii('S'), z('ERROR'), ascii('V'), z('ERROR'), ascii('C'), z('42P01'), ascii('M'), z('no t'), ascii('D'), z('d'), ascii('H'), z('h'), 0),
  noticeResponse: tagged('N', [0, 0, 0, 32], ascii('S'), z('NOTICE'), ascii('V'), z('NOTICE'), ascii('C'), z('00000'), ascii('M'), z('hi'), 0),
  negotiateProtocolVersion: tagged('v', [0, 0, 0, 19], [0, 3, 0, 0], [0, 0, 0, 1], z('_pq_.x')),
  copyInResponseText: tagged('G', [0, 0, 0, 7], [0], [0, 0]),
  copyInResponseBinary: tagged('G', [0, 0, 0, 11], [1], [0, 2], [0, 1], [0, 1]),
  copyOutResponse: tagged('H', [0, 0, 0, 9], [0], [0, 1], [0, 0]),
};
