// Client authentication against the directory's SCRAM verifiers. Wrong password, unknown role and unknown
// endpoint fail identically. Successful cleartext checks are remembered (keyed by an HMAC under a per-process
// key, so the cache never holds a password or a fast hash of one usable elsewhere) to spare PBKDF2 on every
// HTTP request; a new verifier (password change) misses the cache at once.
import { createHmac, randomBytes } from 'node:crypto';
import type { EndpointDirectory } from './backend-directory.ts';
import { authFailed, fromDirectoryError } from './errors.ts';
import { mockVerifier, parseVerifier, verifyCleartext, type ScramVerifier } from './scram.ts';

export class Authenticator {
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

  /** The role's verifier, or a mock one that nothing matches if the endpoint or role is unknown. */
  async verifier(endpointId: string, user: string): Promise<{ verifier: ScramVerifier; text: string | null }> {
    let secret;
    try {
      secret = await this.directory.lookupRole(endpointId, user);
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
    const key = createHmac('sha256', this.cacheKey).update(text).update('\0').update(password).digest('base64');
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
