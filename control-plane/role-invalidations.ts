// The role-invalidation feed the proxies follow to drop cached verifiers (proxy/auth/role-cache.ts), and cached
// compute addresses when an endpoint's compute host is taken out (`kind: 'compute'`, published by endpoints.ts). Role events are
// derived from the durable state itself: each sync compares the verifier of every (endpoint, role) with the
// last snapshot, so every path that changes or removes a role (password reset, role deleted, endpoint, branch or
// project deleted, endpoint moved to another branch) is covered without each one having to remember to publish.
// role-admin.ts syncs right after its changes; otherwise a sync runs on each poll and every 100 ms while a proxy
// is waiting, so news reaches waiting proxies within about that.
//
// The list is in memory, numbered 1, 2, 3... within an epoch: a random id per feed, so a restarted control plane
// (a new epoch) tells proxies to drop everything. Only the last MAX_EVENTS are kept; a proxy further behind is
// told to reset. Stateless proxies, any number of them: each keeps only its own cursor.
import { randomUUID } from 'node:crypto';
import type { ControlPlaneState } from './model.ts';
import type { StateStore } from './state-store.ts';

export interface RoleInvalidation {
  seq: number;
  endpoint_id: string;
  /** null: every role of the endpoint (the endpoint is gone). */
  role: string | null;
  /** 'compute': the endpoint's compute is no longer where proxies reached it (role is null, verifiers stay valid). */
  kind?: 'compute';
}

export interface FeedAnswer {
  epoch: string;
  /** Drop everything: another epoch was asked for, or the events after `after` are no longer kept. */
  reset: boolean;
  /** The cursor to send as `after` next time. */
  last: number;
  events: RoleInvalidation[];
}

const MAX_EVENTS = 10_000;
const TICK_MS = 100;

type Snapshot = Map<string, Map<string, string>>;

/** endpoint id -> role name -> verifier, for roles that can log in. */
function snapshotOf(s: ControlPlaneState): Snapshot {
  const byBranch = new Map<string, Map<string, string>>();
  for (const r of s.roles) {
    if (r.no_login) continue;
    let roles = byBranch.get(r.branch_id);
    if (!roles) {
      roles = new Map();
      byBranch.set(r.branch_id, roles);
    }
    roles.set(r.name, r.verifier);
  }
  const out: Snapshot = new Map();
  for (const ep of Object.values(s.endpoints)) out.set(ep.id, byBranch.get(ep.branch_id) ?? new Map());
  return out;
}

interface Waiter {
  after: number;
  isOpen: () => boolean;
  resolve: () => void;
}

export class RoleInvalidations {
  readonly epoch = randomUUID();
  private readonly state: StateStore;
  private seq = 0;
  private events: RoleInvalidation[] = [];
  private seen: ControlPlaneState;
  private snapshot: Snapshot;
  private readonly waiters = new Set<Waiter>();
  private timer: NodeJS.Timeout | null = null;

  constructor(state: StateStore) {
    this.state = state;
    this.seen = state.current;
    this.snapshot = snapshotOf(this.seen);
  }

  /** Compares the state with the last snapshot and publishes what changed. Cheap when nothing did. */
  sync(): void {
    const current = this.state.current;
    if (current === this.seen) return;
    this.seen = current;
    const next = snapshotOf(current);
    const before = this.seq;
    for (const [endpointId, roles] of this.snapshot) {
      const now = next.get(endpointId);
      if (!now) {
        this.publish(endpointId, null);
        continue;
      }
      for (const [role, verifier] of roles) if (now.get(role) !== verifier) this.publish(endpointId, role);
    }
    this.snapshot = next;
    if (this.seq !== before) this.wake();
  }

  /** The endpoint's compute moved or is gone: proxies drop its address and their connections to it. */
  publishCompute(endpointId: string): void {
    this.push({ seq: ++this.seq, endpoint_id: endpointId, role: null, kind: 'compute' });
    this.wake();
  }

  private publish(endpointId: string, role: string | null): void {
    this.push({ seq: ++this.seq, endpoint_id: endpointId, role });
  }

  private push(event: RoleInvalidation): void {
    this.events.push(event);
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
  }

  /** The events after `after` in `epoch` (or a reset). */
  since(after: number, epoch: string | null): FeedAnswer {
    this.sync();
    const oldest = this.events.length ? this.events[0].seq : this.seq + 1;
    if (epoch !== this.epoch || after > this.seq || after < oldest - 1) {
      return { epoch: this.epoch, reset: true, last: this.seq, events: [] };
    }
    return { epoch: this.epoch, reset: false, last: this.seq, events: this.events.filter((e) => e.seq > after) };
  }

  /** Like since(), but holds an answer with no news up to `waitMs` (while `isOpen`). */
  async wait(after: number, epoch: string | null, waitMs: number, isOpen: () => boolean): Promise<FeedAnswer> {
    const first = this.since(after, epoch);
    if (first.reset || first.events.length > 0 || waitMs <= 0) return first;
    await new Promise<void>((resolve) => {
      const waiter: Waiter = {
        after,
        isOpen,
        resolve: () => {
          clearTimeout(t);
          this.waiters.delete(waiter);
          resolve();
        },
      };
      const t = setTimeout(waiter.resolve, waitMs).unref();
      this.waiters.add(waiter);
      this.timer ??= setInterval(() => this.tick(), TICK_MS).unref();
    });
    return this.since(after, epoch);
  }

  private tick(): void {
    this.sync();
    for (const w of this.waiters) if (!w.isOpen()) w.resolve();
    if (this.waiters.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private wake(): void {
    for (const w of this.waiters) if (w.after < this.seq) w.resolve();
  }
}

const feeds = new WeakMap<StateStore, RoleInvalidations>();

/** The feed of a control plane (one per state store, created on first use with a new epoch). */
export function invalidationsFor(state: StateStore): RoleInvalidations {
  let feed = feeds.get(state);
  if (!feed) {
    feed = new RoleInvalidations(state);
    feeds.set(state, feed);
  }
  return feed;
}
