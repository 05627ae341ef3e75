// The role verifiers the proxy fetched from the directory, so that a control-plane restart does not fail the
// queries of known roles. Bounded (LRU), with a short TTL for normal use and a long stale-if-error window while
// the directory is unreachable. Unknown roles are not cached (a role created a moment ago works at once).
// The control plane's invalidation feed (directory/http-directory.ts watchInvalidations) drops entries by
// (endpoint, role), by endpoint, or all of them.
//
// Lookups of one role are shared: while one is in flight, every caller that arrives waits for one next lookup,
// started when that one ends (so a password changed before the call counts). Under load that is one directory
// round trip for many requests.
import { DirectoryError, type EndpointDirectory, type RoleSecret } from '../directory/directory.ts';

export interface RoleCacheOptions {
  /** Entries kept (default 10,000). */
  maxEntries: number;
  /** A cached verifier serves without asking the directory this long (default 60 s). */
  ttlMs: number;
  /** While the directory fails, a cached verifier keeps serving this long after it was fetched (default 1 h). */
  staleIfErrorMs: number;
}

const DEFAULTS: RoleCacheOptions = { maxEntries: 10_000, ttlMs: 60_000, staleIfErrorMs: 3600_000 };

interface Entry {
  secret: RoleSecret;
  fetchedAt: number;
}

interface Flight {
  running: Promise<RoleSecret | null>;
  queued: Promise<RoleSecret | null> | null;
}

const noop = (): void => {};

const key = (endpointId: string, role: string): string => `${endpointId}\0${role}`;

/** Transport failures and 5xx: the directory could not answer, which is no news about the role. */
function isUnavailable(err: unknown): boolean {
  return !(err instanceof DirectoryError) || err.status >= 500 || err.retriable;
}

export class RoleCache {
  private readonly directory: EndpointDirectory;
  private readonly opts: RoleCacheOptions;
  private readonly entries = new Map<string, Entry>();
  private readonly flights = new Map<string, Flight>();
  /** Bumped by every invalidation: a lookup that began before one must not cache what it fetched. */
  private generation = 0;
  /** Answers served stale because the directory failed (for tests and metrics). */
  staleServed = 0;

  constructor(directory: EndpointDirectory, opts: Partial<RoleCacheOptions> = {}) {
    this.directory = directory;
    this.opts = { ...DEFAULTS, ...withoutUndefined(opts) };
  }

  get size(): number {
    return this.entries.size;
  }

  /** The role's secret (null: unknown endpoint or role). `fresh` skips the TTL and asks the directory. */
  async get(endpointId: string, role: string, fresh: boolean): Promise<{ secret: RoleSecret | null; cached: boolean }> {
    const k = key(endpointId, role);
    const entry = this.entries.get(k);
    if (entry && !fresh && Date.now() - entry.fetchedAt < this.opts.ttlMs) return { secret: entry.secret, cached: true };
    const generation = this.generation;
    let secret: RoleSecret | null;
    try {
      secret = await this.lookup(k, endpointId, role);
    } catch (err) {
      const stale = this.entries.get(k);
      if (stale && isUnavailable(err) && Date.now() - stale.fetchedAt < this.opts.staleIfErrorMs) {
        this.staleServed++;
        return { secret: stale.secret, cached: true };
      }
      throw err;
    }
    if (generation === this.generation) this.store(k, secret);
    return { secret, cached: false };
  }

  private store(k: string, secret: RoleSecret | null): void {
    this.entries.delete(k);
    if (!secret) return;
    this.entries.set(k, { secret, fetchedAt: Date.now() });
    if (this.entries.size > this.opts.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }

  /** Drops one role of an endpoint, or (role null) every role of it. */
  invalidate(endpointId: string, role: string | null): void {
    this.generation++;
    if (role !== null) {
      this.entries.delete(key(endpointId, role));
      return;
    }
    const prefix = `${endpointId}\0`;
    for (const k of this.entries.keys()) if (k.startsWith(prefix)) this.entries.delete(k);
  }

  invalidateAll(): void {
    this.generation++;
    this.entries.clear();
  }

  private lookup(k: string, endpointId: string, role: string): Promise<RoleSecret | null> {
    const flight = this.flights.get(k);
    if (!flight) return this.start(k, endpointId, role);
    flight.queued ??= flight.running.then(noop, noop).then(() => this.start(k, endpointId, role));
    return flight.queued;
  }

  private start(k: string, endpointId: string, role: string): Promise<RoleSecret | null> {
    const running = this.directory.lookupRole(endpointId, role);
    const flight: Flight = { running, queued: null };
    this.flights.set(k, flight);
    running.then(noop, noop).then(() => {
      if (this.flights.get(k) === flight) this.flights.delete(k);
    });
    return running;
  }
}

/** Options left unset (undefined) keep their defaults. */
function withoutUndefined<T extends object>(o: Partial<T>): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
