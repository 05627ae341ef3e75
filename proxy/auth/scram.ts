// SCRAM-SHA-256 (RFC 5802 / 7677) in the Postgres flavour: verifiers in Postgres' own format
// `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`, cleartext checks against them, the server side of
// the exchange (TCP clients) and the client side (computes that ask the proxy for SCRAM). The client side can
// also log in with keys instead of a password: the ClientKey recovered from a client's own proof (or derived from
// its cleartext password) with the verifier's ServerKey, so a compute that holds the same verifier accepts the
// proxy as that role without the proxy ever knowing the password (SCRAM pass-through, as Neon's proxy does;
// docs/design/postgres-engine.md).
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { TLS_SERVER_END_POINT } from './channel-binding.ts';

const pbkdf2Async = promisify(pbkdf2);

export interface ScramVerifier {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

export function parseVerifier(text: string): ScramVerifier | null {
  const m = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(text);
  if (!m) return null;
  const storedKey = Buffer.from(m[3], 'base64');
  const serverKey = Buffer.from(m[4], 'base64');
  if (storedKey.length !== 32 || serverKey.length !== 32) return null;
  return { iterations: Number(m[1]), salt: Buffer.from(m[2], 'base64'), storedKey, serverKey };
}

/**
 * Approximate SASLprep (RFC 4013) as Postgres applies it: non-ASCII spaces become spaces, "mapped to
 * nothing" characters vanish, then NFKC. Postgres falls back to the raw bytes when prep fails; ASCII is
 * unchanged either way.
 */
export function saslprep(password: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(password)) return password;
  return password
    .replace(/[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/g, ' ')
    .replace(/\u00ad|\u034f|\u1806|[\u180b-\u180d]|\u200c|\u200d|\u2060|[\ufe00-\ufe0f]|\ufeff/g, '')
    .normalize('NFKC');
}

function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

async function saltedPassword(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  return pbkdf2Async(saslprep(password), salt, iterations, 32, 'sha256');
}

/** The iteration count of every verifier the control plane makes (makeVerifier's default). */
export const VERIFIER_ITERATIONS = 4096;

/** A new verifier for `password`; what a control plane stores instead of the password. */
export async function makeVerifier(password: string, iterations = VERIFIER_ITERATIONS, salt = randomBytes(16)): Promise<string> {
  const sp = await saltedPassword(password, salt, iterations);
  const storedKey = sha256(hmac(sp, 'Client Key'));
  const serverKey = hmac(sp, 'Server Key');
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** What logs in to a compute that holds `verifier`, as its role, without the password. Keep it in memory only. */
export interface ScramKeys {
  clientKey: Buffer;
  serverKey: Buffer;
  salt: Buffer;
  iterations: number;
}

function keysOf(verifier: ScramVerifier, clientKey: Buffer): ScramKeys {
  return { clientKey, serverKey: verifier.serverKey, salt: verifier.salt, iterations: verifier.iterations };
}

/** A copy its holder owns and wipes (wipeKeys) when done, so that wiping never breaks another holder. */
export function copyKeys(keys: ScramKeys): ScramKeys {
  return { ...keys, clientKey: Buffer.from(keys.clientKey) };
}

/** Zeroes the ClientKey (the part that logs in as the role) once its holder is done with it. */
export function wipeKeys(keys: ScramKeys): void {
  keys.clientKey.fill(0);
}

/** The login keys for a cleartext password, or null (in constant time) when it does not match the verifier. */
export async function keysFromCleartext(verifier: ScramVerifier, password: string): Promise<ScramKeys | null> {
  const sp = await saltedPassword(password, verifier.salt, verifier.iterations);
  const clientKey = hmac(sp, 'Client Key');
  return timingSafeEqual(sha256(clientKey), verifier.storedKey) ? keysOf(verifier, clientKey) : null;
}

/** Checks a cleartext password against a verifier in constant time. */
export async function verifyCleartext(verifier: ScramVerifier, password: string): Promise<boolean> {
  return (await keysFromCleartext(verifier, password)) !== null;
}

/**
 * A verifier that no password matches, so an unknown role fails exactly like a wrong password. Like Postgres'
 * mock authentication nonce, its salt is HMAC(secret, endpoint, role): the same unknown role gets the same
 * salt on every attempt (a fresh random salt would tell it apart from a known role, whose salt never changes),
 * with the iteration count of real verifiers. The keys are random: nothing can match them.
 */
export function mockVerifier(secret: Buffer, endpointId: string, role: string): ScramVerifier {
  const salt = createHmac('sha256', secret).update('lakebase mock SCRAM salt\0').update(endpointId).update('\0').update(role).digest().subarray(0, 16);
  return { iterations: VERIFIER_ITERATIONS, salt, storedKey: randomBytes(32), serverKey: randomBytes(32) };
}

function parseAttributes(msg: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const part of msg.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) attrs.set(part[0], part.slice(2));
  }
  return attrs;
}

export const SCRAM = 'SCRAM-SHA-256';
export const SCRAM_PLUS = 'SCRAM-SHA-256-PLUS';

/**
 * Server side of one SCRAM-SHA-256 exchange. Given the connection's tls-server-end-point data (a TLS connection,
 * channel-binding.ts), it also offers SCRAM-SHA-256-PLUS and checks the binding in the client's final message.
 */
export class ScramServer {
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';
  /** What the client's `c=` must be: its gs2 header, then the binding data when it bound the channel. */
  private expectedBinding = Buffer.alloc(0);
  private proven: Buffer | null = null;
  private readonly verifier: ScramVerifier;
  private readonly channelBinding: Buffer | null;

  constructor(verifier: ScramVerifier, channelBinding: Buffer | null = null) {
    this.verifier = verifier;
    this.channelBinding = channelBinding;
  }

  /** The mechanisms to offer, as Postgres lists them (PLUS first, only over TLS). */
  get mechanisms(): string[] {
    return this.channelBinding ? [SCRAM_PLUS, SCRAM] : [SCRAM];
  }

  /** Takes client-first-message (for the mechanism the client chose), returns server-first-message. Throws on malformed input. */
  clientFirst(msg: string, mechanism: string = SCRAM): string {
    const m = /^(n|y|p=([^,]*)),(a=[^,]*)?,(.*)$/.exec(msg);
    if (!m) throw new Error('malformed SCRAM client-first-message');
    const gs2Header = `${m[1]},${m[3] ?? ''},`;
    this.expectedBinding = Buffer.concat([Buffer.from(gs2Header), this.bindingFor(m[1], m[2], mechanism)]);
    this.clientFirstBare = m[4];
    const clientNonce = parseAttributes(this.clientFirstBare).get('r');
    if (!clientNonce || /[^\x21-\x2b\x2d-\x7e]/.test(clientNonce)) throw new Error('malformed SCRAM client nonce');
    this.nonce = clientNonce + randomBytes(18).toString('base64');
    this.serverFirst = `r=${this.nonce},s=${this.verifier.salt.toString('base64')},i=${this.verifier.iterations}`;
    return this.serverFirst;
  }

  /** The channel-binding data the gs2 flag commits the client to, with Postgres' refusals (auth-scram.c). */
  private bindingFor(flag: string, cbName: string | undefined, mechanism: string): Buffer {
    if (flag.startsWith('p=')) {
      if (mechanism !== SCRAM_PLUS || !this.channelBinding) {
        throw new Error('The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data.');
      }
      if (cbName !== TLS_SERVER_END_POINT) throw new Error(`unsupported SCRAM channel-binding type "${cbName}"`);
      return this.channelBinding;
    }
    if (mechanism === SCRAM_PLUS) throw new Error('The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel binding data.');
    // 'y': the client could bind but thinks the server cannot; this one can, so a downgrade is under way
    if (flag === 'y' && this.channelBinding) {
      throw new Error('SCRAM channel binding negotiation error: the client supports SCRAM channel binding but thinks the server does not. However, this server does support channel binding.');
    }
    return Buffer.alloc(0);
  }

  /** Takes client-final-message; returns server-final-message if the proof is right, else null. */
  clientFinal(msg: string): string | null {
    const pIdx = msg.lastIndexOf(',p=');
    if (pIdx < 0) return null;
    const withoutProof = msg.slice(0, pIdx);
    const attrs = parseAttributes(withoutProof);
    if (attrs.get('c') !== this.expectedBinding.toString('base64')) return null;
    if (attrs.get('r') !== this.nonce) return null;
    const proof = Buffer.from(msg.slice(pIdx + 3), 'base64');
    if (proof.length !== 32) return null;
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientKey = xor(proof, hmac(this.verifier.storedKey, authMessage));
    if (!timingSafeEqual(sha256(clientKey), this.verifier.storedKey)) return null;
    this.proven = clientKey;
    return `v=${hmac(this.verifier.serverKey, authMessage).toString('base64')}`;
  }

  /** After a successful exchange: the keys the client proved it has (ClientKey = proof XOR ClientSignature). */
  get keys(): ScramKeys | null {
    return this.proven ? keysOf(this.verifier, this.proven) : null;
  }
}

/**
 * Client side of SCRAM-SHA-256, for computes that ask the proxy to authenticate with SCRAM (R/10): with a
 * password, or with keys (pass-through), which answer only a server whose salt and iterations are the verifier's.
 */
export class ScramClient {
  private readonly clientNonce = randomBytes(18).toString('base64');
  private clientFirstBare = '';
  private expectedServerSignature: Buffer | null = null;
  private readonly secret: string | ScramKeys;

  constructor(secret: string | ScramKeys) {
    this.secret = secret;
  }

  first(): string {
    this.clientFirstBare = `n=*,r=${this.clientNonce}`;
    return `n,,${this.clientFirstBare}`;
  }

  async final(serverFirst: string): Promise<string> {
    const attrs = parseAttributes(serverFirst);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (!nonce?.startsWith(this.clientNonce) || !salt || !(iterations > 0)) {
      throw new Error('malformed SCRAM server-first-message');
    }
    const { clientKey, serverKey } = await this.keysFor(Buffer.from(salt, 'base64'), iterations);
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const proof = xor(clientKey, hmac(sha256(clientKey), authMessage));
    this.expectedServerSignature = hmac(serverKey, authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  private async keysFor(salt: Buffer, iterations: number): Promise<{ clientKey: Buffer; serverKey: Buffer }> {
    if (typeof this.secret === 'string') {
      const sp = await saltedPassword(this.secret, salt, iterations);
      return { clientKey: hmac(sp, 'Client Key'), serverKey: hmac(sp, 'Server Key') };
    }
    // keys answer only the verifier they came from: another salt means the server's verifier differs
    if (!salt.equals(this.secret.salt) || iterations !== this.secret.iterations) {
      throw new Error("the server's SCRAM verifier is not the one these keys came from (was the password changed?)");
    }
    return this.secret;
  }

  verifyServerFinal(serverFinal: string): boolean {
    const v = parseAttributes(serverFinal).get('v');
    if (!v || !this.expectedServerSignature) return false;
    const got = Buffer.from(v, 'base64');
    return got.length === 32 && timingSafeEqual(got, this.expectedServerSignature);
  }
}
