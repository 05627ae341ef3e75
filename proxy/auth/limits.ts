// Failed-authentication limits (brute force). Three counters, each in a bounded LRU map so memory stays flat
// whatever an attacker sends:
//  - per (endpoint, role, client address): tight. After `clientFailures` failures in a row the address is
//    locked out of that role for `baseLockMs`, doubling with each further failure up to `maxLockMs`.
//  - per client address (all endpoints and roles): looser, same backoff; stops one address spraying roles.
//  - per (endpoint, role) from every address: a rate (`roleFailuresPerMinute`). Over it, only addresses that
//    logged in to the role before (remembered for a day) are let through, so a distributed attack cannot lock
//    the owner out.
// Only failures count. Attempts in flight are bounded (MAX_PENDING per address and role, 4x per address), and once
// a key has failed, its failures plus its attempts in flight must stay under the threshold: so a burst of correct
// logins (a pool warming up, pgbench -c 32) is never refused, and a burst of guesses is bounded and then locked out.
// A success clears the address's failures at the role. A refused attempt is not counted and checks no password;
// an attempt abandoned before it was decided (a client gone mid-exchange) is released without a count.
import { ProxyError } from '../errors.ts';

export interface AuthLimitOptions {
  clientFailures: number;
  addressFailures: number;
  roleFailuresPerMinute: number;
  baseLockMs: number;
  maxLockMs: number;
  /** A failure record is forgotten this long after its last failure. */
  forgetAfterMs: number;
  /** Entries per map (LRU). */
  maxEntries: number;
}

export const DEFAULT_AUTH_LIMITS: AuthLimitOptions = {
  clientFailures: 5,
  addressFailures: 30,
  roleFailuresPerMinute: 120,
  baseLockMs: 1000,
  maxLockMs: 5 * 60_000,
  forgetAfterMs: 15 * 60_000,
  maxEntries: 100_000,
};

const TRUSTED_FOR_MS = 24 * 3600_000;
/** Attempts in flight per (endpoint, role, address); per address it is four times this. */
const MAX_PENDING = 64;

/** Neon-style refusal: SQLSTATE 28000 with severity FATAL; HTTP 429. */
export function tooManyAttempts(retryMs: number): ProxyError {
  const seconds = Math.max(1, Math.ceil(retryMs / 1000));
  const message = `Too many authentication attempts. Please try again in ${seconds} second${seconds === 1 ? '' : 's'}.`;
  return new ProxyError(message, 429, 'auth_rate_limited', { C: '28000', S: 'FATAL', M: message });
}

/** A Map that forgets its least recently used entries beyond `max`. */
class Lru<V> {
  private readonly map = new Map<string, V>();
  private readonly max: number;
  constructor(max: number) {
    this.max = max;
  }
  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: string, v: V): void {
    this.map.delete(key);
    this.map.set(key, v);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  get size(): number {
    return this.map.size;
  }
}

interface Record {
  failures: number;
  /** Admitted attempts not yet decided. */
  pending: number;
  lockedUntil: number;
  last: number;
}

interface Window {
  start: number;
  previous: number;
  current: number;
}

/** One admitted attempt: `succeeded()`, `failed()`, or `release()` when it ended undecided (the first call counts). */
export interface AuthTicket {
  succeeded(): void;
  failed(): void;
  release(): void;
}

export class AuthLimiter {
  private readonly opts: AuthLimitOptions;
  private readonly clients: Lru<Record>;
  private readonly addresses: Lru<Record>;
  private readonly roles: Lru<Window>;
  private readonly trusted: Lru<number>;

  constructor(opts: Partial<AuthLimitOptions> = {}) {
    this.opts = { ...DEFAULT_AUTH_LIMITS, ...withoutUndefined(opts) };
    this.clients = new Lru(this.opts.maxEntries);
    this.addresses = new Lru(this.opts.maxEntries);
    this.roles = new Lru(this.opts.maxEntries);
    this.trusted = new Lru(this.opts.maxEntries);
  }

  /** Admits one attempt or throws tooManyAttempts. */
  admit(endpointId: string, role: string, address: string, now = Date.now()): AuthTicket {
    // no role name is longer than Postgres' 63 bytes: longer ones (unknown anyway) share a key, bounding memory
    const roleKey = `${endpointId.slice(0, 64)}\0${role.slice(0, 64)}`;
    const clientKey = `${roleKey}\0${address}`;
    const client = this.fresh(this.clients, clientKey, now);
    const byAddress = this.fresh(this.addresses, address, now);
    const wait = Math.max(client.lockedUntil, byAddress.lockedUntil) - now;
    if (wait > 0) throw tooManyAttempts(wait);
    if (this.roleRate(roleKey, now) >= this.opts.roleFailuresPerMinute && !this.isTrusted(clientKey, now)) {
      throw tooManyAttempts(60_000);
    }
    if (overBudget(client, this.opts.clientFailures, MAX_PENDING) || overBudget(byAddress, this.opts.addressFailures, 4 * MAX_PENDING)) {
      throw tooManyAttempts(this.opts.baseLockMs);
    }
    for (const [map, key, r] of [[this.clients, clientKey, client], [this.addresses, address, byAddress]] as const) {
      r.pending++;
      r.last = now;
      map.set(key, r);
    }
    let done = false;
    const settle = (then: () => void) => (): void => {
      if (done) return;
      done = true;
      for (const r of [this.clients.get(clientKey), this.addresses.get(address)]) if (r && r.pending > 0) r.pending--;
      then();
    };
    return {
      succeeded: settle(() => {
        const c = this.clients.get(clientKey);
        if (c) c.failures = c.lockedUntil = 0;
        this.trusted.set(clientKey, Date.now());
      }),
      failed: settle(() => {
        const at = Date.now();
        this.countFailure(this.clients, clientKey, this.opts.clientFailures, at);
        this.countFailure(this.addresses, address, this.opts.addressFailures, at);
        this.noteRoleFailure(roleKey, at);
      }),
      release: settle(() => {}),
    };
  }

  private fresh(map: Lru<Record>, key: string, now: number): Record {
    const r = map.get(key);
    if (r && now - r.last < this.opts.forgetAfterMs) return r;
    return { failures: 0, pending: 0, lockedUntil: 0, last: now };
  }

  private countFailure(map: Lru<Record>, key: string, threshold: number, now: number): void {
    const r = this.fresh(map, key, now);
    r.failures++;
    r.last = now;
    if (r.failures >= threshold) {
      const lock = this.opts.baseLockMs * 2 ** Math.min(30, r.failures - threshold);
      r.lockedUntil = now + Math.min(this.opts.maxLockMs, lock);
    }
    map.set(key, r);
  }

  private isTrusted(clientKey: string, now: number): boolean {
    const at = this.trusted.get(clientKey);
    return at !== undefined && now - at < TRUSTED_FOR_MS;
  }

  /** Failures of the role over the last minute (sliding estimate from two one-minute buckets). */
  private roleRate(roleKey: string, now: number): number {
    const w = this.roles.get(roleKey);
    if (!w) return 0;
    this.roll(w, now);
    return w.previous * (1 - (now - w.start) / 60_000) + w.current;
  }

  private noteRoleFailure(roleKey: string, now: number): void {
    const w = this.roles.get(roleKey) ?? { start: now, previous: 0, current: 0 };
    this.roll(w, now);
    w.current++;
    this.roles.set(roleKey, w);
  }

  private roll(w: Window, now: number): void {
    const elapsed = now - w.start;
    if (elapsed >= 120_000) {
      w.previous = 0;
      w.current = 0;
      w.start = now;
    } else if (elapsed >= 60_000) {
      w.previous = w.current;
      w.current = 0;
      w.start += 60_000;
    }
  }

  /** Entries held (for tests and metrics). */
  get entries(): number {
    return this.clients.size + this.addresses.size + this.roles.size + this.trusted.size;
  }
}

/** Too many in flight, or a key that has failed would pass its threshold with the attempts in flight. */
function overBudget(r: Record, threshold: number, maxPending: number): boolean {
  return r.pending >= maxPending || (r.failures > 0 && r.failures + r.pending >= threshold);
}

/** Options left unset (undefined) keep their defaults. */
function withoutUndefined<T extends object>(o: Partial<T>): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
