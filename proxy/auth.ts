// Client authentication against the directory's SCRAM verifiers. Wrong password, unknown role and unknown
// endpoint fail identically. Successful cleartext checks are remembered (keyed by SHA-256 under a secret
// per-process prefix, so the cache never holds a password or a fast hash of one usable elsewhere) to spare
// PBKDF2 on every HTTP request; a new verifier (password change) misses the cache at once. The verifier itself
// is looked up for every check (concurrent checks of one role share a lookup that began after they did).
import { createHash, randomBytes } from 'node:crypto';
import type { EndpointDirectory, RoleSecret } from './backend-directory.ts';
import { authFailed, fromDirectoryError } from './errors.ts';
import { mockVerifier, parseVerifier, verifyCleartext, type ScramVerifier } from './scram.ts';

const noop = (): void => {};

interface Flight {
  running: Promise<RoleSecret | null>;
  /** The lookup for callers that arrived while `running` was in flight; starts when it ends. */
  queued: Promise<RoleSecret | null> | null;
}

export class Authenticator {
  private readonly flights = new Map<string, Flight>();
  private readonly cacheKey = randomBytes(32);
  private readonly verified = new Map<string, number>();
  private readonly directory: EndpointDirectory;
  private readonly cacheSize: number;
  private readonly cacheTtlMs: number;

  constructor(directory: EndpointDirectory, opts: { cacheSize?: number; cacheTtlMs?: number } = {}) {
    this.directory = directory;
    this.cacheSize = opts.cacheSize ?? 10_000;
    this.cacheTtlMs = opts.cacheTtlMs ?? 5 * 60_000;
  }

  /**
   * The directory's answer for a role, asked after this call began (so a password changed before it counts at
   * once), but shared: while a lookup for the role is in flight, every caller that arrives waits for one next
   * lookup, started when that one ends. Under load that is one directory round trip for many requests.
   */
  private lookupRole(endpointId: string, user: string): Promise<RoleSecret | null> {
    const key = `${endpointId}\0${user}`;
    const flight = this.flights.get(key);
    if (!flight) return this.startLookup(key, endpointId, user);
    flight.queued ??= flight.running.then(noop, noop).then(() => this.startLookup(key, endpointId, user));
    return flight.queued;
  }

  private startLookup(key: string, endpointId: string, user: string): Promise<RoleSecret | null> {
    const running = this.directory.lookupRole(endpointId, user);
    const flight: Flight = { running, queued: null };
    this.flights.set(key, flight);
    running.then(noop, noop).then(() => {
      if (this.flights.get(key) === flight) this.flights.delete(key);
    });
    return running;
  }

  /** The role's verifier, or a mock one that nothing matches if the endpoint or role is unknown. */
  async verifier(endpointId: string, user: string): Promise<{ verifier: ScramVerifier; text: string | null }> {
    let secret;
    try {
      secret = await this.lookupRole(endpointId, user);
    } catch (err) {
      throw fromDirectoryError(err);
    }
    const parsed = secret ? parseVerifier(secret.verifier) : null;
    return parsed && secret ? { verifier: parsed, text: secret.verifier } : { verifier: mockVerifier(), text: null };
  }

  /** Throws `password authentication failed for user '<user>'` unless the password matches. */
  async checkCleartext(endpointId: string, user: string, password: string): Promise<void> {
    const { verifier, text } = await this.verifier(endpointId, user);
    if (text === null) {
      await verifyCleartext(verifier, password); // same cost as a real check: no timing oracle for role names
      throw authFailed(user);
    }
    // A secret-prefixed SHA-256 (not HMAC: an HMAC builds a KeyObject per call, a tenth of a millisecond); the
    // key is never revealed and the digest is only looked up, so length extension does not matter here.
    const key = createHash('sha256').update(this.cacheKey).update(text).update('\0').update(password).digest('base64');
    const seen = this.verified.get(key);
    if (seen !== undefined && Date.now() - seen < this.cacheTtlMs) return;
    if (!(await verifyCleartext(verifier, password))) throw authFailed(user);
    if (this.verified.size >= this.cacheSize) {
      const oldest = this.verified.keys().next();
      if (!oldest.done) this.verified.delete(oldest.value);
    }
    this.verified.set(key, Date.now());
  }
}
