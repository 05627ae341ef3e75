// Client authentication against the directory's SCRAM verifiers. Wrong password, unknown role and unknown
// endpoint fail identically (the mock verifier's salt is deterministic, see scram.ts). Every attempt passes the
// failed-authentication limits first (limits.ts).
//
// Verifiers are cached (role-cache.ts): HTTP queries check a cached verifier and only when the password does
// not match it ask the directory again (a password changed a moment ago works at once); SCRAM exchanges, which
// cannot retry once the salt is sent, ask the directory every time. Either way, while the directory is
// unreachable a cached verifier keeps serving (stale-if-error). The control plane pushes invalidations
// (password reset, role or endpoint deleted) which drop entries at once; the TTL bounds what a lost push costs.
//
// A successful cleartext check derives the role's SCRAM login keys (scram.ts keysFromCleartext), which log the
// proxy in to a `postgres` compute as that role. They are remembered in memory, bounded and for the cache TTL, to
// spare PBKDF2 on every HTTP request: keyed by SHA-256 under a secret per-process prefix (so the cache never holds a
// password or a fast hash of one usable elsewhere), never logged, and zeroed when dropped. Callers get copies.
import { createHash, randomBytes } from 'node:crypto';
import { AuthLimiter, type AuthLimitOptions, type AuthTicket } from './limits.ts';
import type { EndpointDirectory } from '../directory/directory.ts';
import { authFailed, fromDirectoryError } from '../errors.ts';
import { RoleCache, type RoleCacheOptions } from './role-cache.ts';
import { copyKeys, keysFromCleartext, mockVerifier, parseVerifier, wipeKeys, type ScramKeys, type ScramVerifier } from './scram.ts';

export interface AuthenticatorOptions {
  /** Login keys of successful cleartext checks remembered (default 10,000, for 5 minutes). */
  cacheSize?: number;
  cacheTtlMs?: number;
  /** Key of the mock SCRAM salts; random per process if not given (salts then change on restart). */
  mockSecret?: Buffer;
  limits?: Partial<AuthLimitOptions>;
  roles?: Partial<RoleCacheOptions>;
}

export interface RoleVerifier {
  verifier: ScramVerifier;
  /** The verifier as the directory sent it; null for the mock verifier of an unknown endpoint or role. */
  text: string | null;
  /** Served from the cache without asking the directory. */
  cached: boolean;
}

export class Authenticator {
  private readonly cacheKey = randomBytes(32);
  private readonly verified = new Map<string, { keys: ScramKeys; at: number }>();
  private readonly cacheSize: number;
  private readonly cacheTtlMs: number;
  private readonly mockSecret: Buffer;
  readonly limiter: AuthLimiter;
  readonly roles: RoleCache;

  constructor(directory: EndpointDirectory, opts: AuthenticatorOptions = {}) {
    this.cacheSize = opts.cacheSize ?? 10_000;
    this.cacheTtlMs = opts.cacheTtlMs ?? 5 * 60_000;
    this.mockSecret = opts.mockSecret ?? randomBytes(32);
    this.limiter = new AuthLimiter(opts.limits);
    this.roles = new RoleCache(directory, opts.roles);
  }

  /** Admits one attempt of `address` at (endpoint, role), or throws the too-many-attempts error. */
  admit(endpointId: string, user: string, address: string): AuthTicket {
    return this.limiter.admit(endpointId, user, address);
  }

  /**
   * The role's verifier, or a mock one that nothing matches if the endpoint or role is unknown. `fresh` asks
   * the directory (a cached one only if the directory fails); otherwise a cached verifier within its TTL serves.
   */
  async verifier(endpointId: string, user: string, fresh = true): Promise<RoleVerifier> {
    const found = await this.roles.get(endpointId, user, fresh).catch((err: unknown) => {
      throw fromDirectoryError(err);
    });
    const parsed = found.secret ? parseVerifier(found.secret.verifier) : null;
    if (parsed && found.secret) return { verifier: parsed, text: found.secret.verifier, cached: found.cached };
    return { verifier: mockVerifier(this.mockSecret, endpointId, user), text: null, cached: false };
  }

  /**
   * The role's login keys (a copy the caller owns: wipeKeys it when done) if the password matches. Throws
   * `password authentication failed for user '<user>'` otherwise, or the too-many-attempts error (before checking
   * anything) while `address` is locked out of the role.
   */
  async checkCleartext(endpointId: string, user: string, password: string, address: string): Promise<ScramKeys> {
    const ticket = this.admit(endpointId, user, address);
    try {
      return await this.decide(ticket, endpointId, user, password);
    } finally {
      ticket.release(); // a directory error: undecided, not a failure
    }
  }

  private async decide(ticket: AuthTicket, endpointId: string, user: string, password: string): Promise<ScramKeys> {
    const role = await this.verifier(endpointId, user, false);
    let keys = await this.keysFor(endpointId, user, role, password);
    if (!keys && role.cached) {
      // The password may have changed since the verifier was cached: ask once more.
      const again = await this.verifier(endpointId, user, true);
      if (again.text !== role.text) keys = await this.keysFor(endpointId, user, again, password);
    }
    if (!keys) {
      ticket.failed();
      throw authFailed(user);
    }
    ticket.succeeded();
    return keys;
  }

  private async keysFor(endpointId: string, user: string, role: RoleVerifier, password: string): Promise<ScramKeys | null> {
    if (role.text === null) {
      await keysFromCleartext(role.verifier, password); // same cost as a real check: no timing oracle for role names
      return null;
    }
    // A secret-prefixed SHA-256 (not HMAC: an HMAC builds a KeyObject per call, a tenth of a millisecond); the
    // key is never revealed and the digest is only looked up, so length extension does not matter here.
    const key = createHash('sha256')
      .update(this.cacheKey)
      .update(`${endpointId}\0${user}\0${role.text}\0`)
      .update(password)
      .digest('base64');
    const seen = this.verified.get(key);
    if (seen !== undefined && Date.now() - seen.at < this.cacheTtlMs) return copyKeys(seen.keys);
    if (seen !== undefined) this.forget(key, seen.keys);
    const keys = await keysFromCleartext(role.verifier, password);
    if (!keys) return null;
    const raced = this.verified.get(key); // a concurrent check of the same password got there first
    if (raced !== undefined) this.forget(key, raced.keys);
    if (this.verified.size >= this.cacheSize) {
      const oldest = this.verified.entries().next();
      if (!oldest.done) this.forget(oldest.value[0], oldest.value[1].keys);
    }
    this.verified.set(key, { keys, at: Date.now() });
    return copyKeys(keys);
  }

  private forget(key: string, keys: ScramKeys): void {
    this.verified.delete(key);
    wipeKeys(keys);
  }
}
