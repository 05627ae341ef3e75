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
// Successful cleartext checks are remembered (keyed by SHA-256 under a secret per-process prefix, so the cache
// never holds a password or a fast hash of one usable elsewhere) to spare PBKDF2 on every HTTP request.
import { createHash, randomBytes } from 'node:crypto';
import { AuthLimiter, type AuthLimitOptions, type AuthTicket } from './limits.ts';
import type { EndpointDirectory } from '../directory/directory.ts';
import { authFailed, fromDirectoryError } from '../errors.ts';
import { RoleCache, type RoleCacheOptions } from './role-cache.ts';
import { mockVerifier, parseVerifier, verifyCleartext, type ScramVerifier } from './scram.ts';

export interface AuthenticatorOptions {
  /** Successful cleartext checks remembered (default 10,000, for 5 minutes). */
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
  private readonly verified = new Map<string, number>();
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
   * Throws `password authentication failed for user '<user>'` unless the password matches, or the
   * too-many-attempts error (before checking anything) while `address` is locked out of the role.
   */
  async checkCleartext(endpointId: string, user: string, password: string, address: string): Promise<void> {
    const ticket = this.admit(endpointId, user, address);
    try {
      await this.decide(ticket, endpointId, user, password);
    } finally {
      ticket.release(); // a directory error: undecided, not a failure
    }
  }

  private async decide(ticket: AuthTicket, endpointId: string, user: string, password: string): Promise<void> {
    let role = await this.verifier(endpointId, user, false);
    let ok = await this.matches(role, password);
    if (!ok && role.cached) {
      // The password may have changed since the verifier was cached: ask once more.
      const again = await this.verifier(endpointId, user, true);
      if (again.text !== role.text) ok = await this.matches(again, password);
      role = again;
    }
    if (!ok) {
      ticket.failed();
      throw authFailed(user);
    }
    ticket.succeeded();
  }

  private async matches(role: RoleVerifier, password: string): Promise<boolean> {
    if (role.text === null) {
      await verifyCleartext(role.verifier, password); // same cost as a real check: no timing oracle for role names
      return false;
    }
    // A secret-prefixed SHA-256 (not HMAC: an HMAC builds a KeyObject per call, a tenth of a millisecond); the
    // key is never revealed and the digest is only looked up, so length extension does not matter here.
    const key = createHash('sha256').update(this.cacheKey).update(role.text).update('\0').update(password).digest('base64');
    const seen = this.verified.get(key);
    if (seen !== undefined && Date.now() - seen < this.cacheTtlMs) return true;
    if (!(await verifyCleartext(role.verifier, password))) return false;
    if (this.verified.size >= this.cacheSize) {
      const oldest = this.verified.keys().next();
      if (!oldest.done) this.verified.delete(oldest.value);
    }
    this.verified.set(key, Date.now());
    return true;
  }
}
