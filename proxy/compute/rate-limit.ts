// Per-endpoint limit on new compute connection attempts, as average rates over several windows (Neon's
// defaults: 500/s over 1 s, 300/s over 1 min, 200/s over 10 min). Sliding-window counters: two buckets per
// window, so memory is constant per endpoint.

export interface RateWindow {
  /** Average attempts per second allowed over the window. */
  rps: number;
  windowMs: number;
}

export const NEON_RATE_WINDOWS: RateWindow[] = [
  { rps: 500, windowMs: 1000 },
  { rps: 300, windowMs: 60_000 },
  { rps: 200, windowMs: 600_000 },
];

interface Counter {
  start: number;
  current: number;
  previous: number;
}

export class EndpointRateLimiter {
  private readonly counters = new Map<string, Counter[]>();
  private readonly windows: RateWindow[];

  constructor(windows: RateWindow[] = NEON_RATE_WINDOWS) {
    this.windows = windows;
  }

  /** Counts one attempt; false if it would exceed any window (the attempt is then not counted). */
  tryAcquire(endpointId: string, now = Date.now()): boolean {
    let counters = this.counters.get(endpointId);
    if (!counters) {
      counters = this.windows.map(() => ({ start: now, current: 0, previous: 0 }));
      this.counters.set(endpointId, counters);
      if (this.counters.size > 100_000) this.prune(now);
    }
    const estimates = this.windows.map((w, i) => {
      const c = counters[i];
      const elapsed = now - c.start;
      if (elapsed >= 2 * w.windowMs) {
        c.previous = 0;
        c.current = 0;
        c.start = now;
      } else if (elapsed >= w.windowMs) {
        c.previous = c.current;
        c.current = 0;
        c.start += w.windowMs;
      }
      const weight = 1 - (now - c.start) / w.windowMs;
      return c.previous * weight + c.current;
    });
    if (this.windows.some((w, i) => estimates[i] + 1 > (w.rps * w.windowMs) / 1000)) return false;
    for (const c of counters) c.current++;
    return true;
  }

  private prune(now: number): void {
    const longest = Math.max(...this.windows.map((w) => w.windowMs));
    for (const [id, counters] of this.counters) {
      if (counters.every((c) => now - c.start >= 2 * longest)) this.counters.delete(id);
    }
  }
}
