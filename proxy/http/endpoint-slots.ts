// The cap on the backends the HTTP pool holds open to one `postgres`-engine endpoint (busy, being reset and idle
// alike). Each is a real PostgreSQL backend process, so a burst of queries queues here instead of running the
// compute out of max_connections. A request over the cap waits in line, first come first served: a backend that
// comes free goes straight to the first in line if it is of that request's (endpoint, database, role); otherwise it
// is closed, and a backend that closes gives its slot to the first in line, which opens its own.
import type { BackendConnection } from '../compute/connection.ts';

interface Waiter {
  key: string;
  /** null: a slot is the waiter's, it opens its own backend; else a backend handed over (with its slot). */
  resolve: (handed: BackendConnection | null) => void;
}

export class EndpointSlots {
  private readonly used = new Map<string, number>();
  private readonly queues = new Map<string, Waiter[]>();
  private readonly max: number;

  constructor(maxPerEndpoint: number) {
    this.max = Math.max(1, maxPerEndpoint);
  }

  /**
   * A slot of the endpoint for a request of pool key `key` (null: open a backend, and `free` when it closes), or a
   * backend of that key handed over. At the cap, `evictIdle` may close an idle backend of another key to make room.
   */
  take(endpointId: string, key: string, evictIdle: () => void): Promise<BackendConnection | null> {
    const n = this.used.get(endpointId) ?? 0;
    if (n < this.max) {
      this.used.set(endpointId, n + 1);
      return Promise.resolve(null);
    }
    return new Promise((resolve) => {
      const queue = this.queues.get(endpointId) ?? [];
      queue.push({ key, resolve });
      this.queues.set(endpointId, queue);
      evictIdle();
    });
  }

  /** A backend of the endpoint closed (or was never opened): its slot goes to the first in line. */
  free(endpointId: string): void {
    const first = this.shift(endpointId);
    if (first) {
      first.resolve(null);
      return;
    }
    const n = (this.used.get(endpointId) ?? 1) - 1;
    if (n > 0) this.used.set(endpointId, n);
    else this.used.delete(endpointId);
  }

  /** Hands a free backend of `key` to the first in line if it waits for that key; false otherwise. */
  handOver(endpointId: string, key: string, conn: BackendConnection): boolean {
    if (this.queues.get(endpointId)?.[0]?.key !== key) return false;
    (this.shift(endpointId) as Waiter).resolve(conn);
    return true;
  }

  /** Requests of the endpoint wait for a slot. */
  waiting(endpointId: string): boolean {
    return (this.queues.get(endpointId)?.length ?? 0) > 0;
  }

  /** Backends counted against the endpoint's cap (for tests and metrics). */
  inUse(endpointId: string): number {
    return this.used.get(endpointId) ?? 0;
  }

  /** Lets every waiting request go (the pool is closing: what they open, it closes on release). */
  close(): void {
    for (const queue of this.queues.values()) for (const w of queue) w.resolve(null);
    this.queues.clear();
  }

  private shift(endpointId: string): Waiter | undefined {
    const queue = this.queues.get(endpointId);
    const waiter = queue?.shift();
    if (queue?.length === 0) this.queues.delete(endpointId);
    return waiter;
  }
}
