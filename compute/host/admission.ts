// Memory admission of compute starts. A start reserves its bytes against the host's budget; when they do not fit
// it waits in one line (first come, first served, bounded, with a deadline) rather than failing, while memory
// comes free: a start that fails, a compute that stops, or idle computes the host suspends for the line (the
// `reclaim` callback, host.ts). A later start never overtakes an earlier one, so no start starves behind others.
import { HostError } from './host-error.ts';

const MiB = 1024 * 1024;
/** How often a waiting line asks again for memory (computes become idle enough to suspend over time). */
const RECLAIM_EVERY_MS = 250;

export interface AdmissionOptions {
  budgetBytes: number;
  /** Bytes held outside admissions: the pool's pre-started workers. */
  fixedBytes: number;
  /** Starts that may wait at once; one more is refused (`start_queue_full`). */
  maxWaiting: number;
  /** How long a start waits before it is refused (`start_queue_timeout`). */
  timeoutMs: number;
  /** Called while starts wait, with the bytes the line lacks: free memory (suspend idle computes). */
  reclaim(missingBytes: number): void;
  /** What holds the memory, for refusals: e.g. "19 computes (2 starting, 17 idle under 10 s)". */
  describeUse(): string;
  /** The line's length changed. */
  onWaiting?(n: number): void;
}

interface Waiter {
  computeId: string;
  need: number;
  since: number;
  grant(): void;
  refuse(e: HostError): void;
  timer: NodeJS.Timeout;
}

const mib = (bytes: number): number => Math.round(bytes / MiB);

export class MemoryAdmission {
  private readonly opts: AdmissionOptions;
  /** Bytes reserved by admitted starts (their computes hold them until they stop). */
  private used = 0;
  private readonly line: Waiter[] = [];
  private ticker: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(opts: AdmissionOptions) {
    this.opts = opts;
  }

  /** Everything held against the budget: the pool's workers and the admitted computes. */
  get reservedBytes(): number {
    return this.opts.fixedBytes + this.used;
  }

  get waiting(): number {
    return this.line.length;
  }

  has(computeId: string): boolean {
    return this.line.some((w) => w.computeId === computeId);
  }

  /**
   * Reserves `need` bytes for the start of `computeId`: at once when they fit and no one waits, else in line.
   * Resolves with the milliseconds it waited; refuses what can never fit, a full line, and the deadline.
   */
  reserve(computeId: string, need: number): Promise<number> {
    if (this.closed) return Promise.reject(new HostError(503, 'host_stopping', 'the compute host is shutting down'));
    const capacity = this.opts.budgetBytes - this.opts.fixedBytes;
    if (need > capacity) {
      return Promise.reject(new HostError(503, 'memory_budget_exceeded',
        `compute ${computeId} needs ${mib(need)} MiB, more than the host's memory budget of ${mib(this.opts.budgetBytes)} MiB leaves ` +
        `beside its pooled workers (${mib(this.opts.fixedBytes)} MiB): raise --memory-budget-mb or start it on another host`));
    }
    if (this.line.length === 0 && this.used + need <= capacity) {
      this.used += need;
      return Promise.resolve(0);
    }
    if (this.line.length >= this.opts.maxWaiting) {
      return Promise.reject(new HostError(503, 'start_queue_full',
        `compute ${computeId} cannot start: ${this.line.length} starts already wait for memory (the most this host queues); ${this.usage()}`));
    }
    return new Promise<number>((resolve, reject) => {
      const since = performance.now();
      const w: Waiter = {
        computeId, need, since,
        grant: () => resolve(performance.now() - since),
        refuse: reject,
        timer: setTimeout(() => this.expire(w), this.opts.timeoutMs),
      };
      this.line.push(w);
      this.opts.onWaiting?.(this.line.length);
      this.askForMemory();
    });
  }

  /** Memory a start or a compute held is free again: the line moves. */
  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
    this.pump();
  }

  /** Refuses every waiting start (the host stops). */
  close(): void {
    this.closed = true;
    for (const w of this.line.splice(0)) {
      clearTimeout(w.timer);
      w.refuse(new HostError(503, 'host_stopping', 'the compute host is shutting down'));
    }
    this.stopTicker();
  }

  /** "memory budget N MiB, M MiB in use by ...": the host's state, named in every refusal. */
  usage(): string {
    return `memory budget ${mib(this.opts.budgetBytes)} MiB, ${mib(this.reservedBytes)} MiB in use by ${this.opts.describeUse()}`;
  }

  private expire(w: Waiter): void {
    const i = this.line.indexOf(w);
    if (i < 0) return;
    this.line.splice(i, 1);
    this.opts.onWaiting?.(this.line.length);
    const s = Math.round((performance.now() - w.since) / 100) / 10;
    w.refuse(new HostError(503, 'start_queue_timeout',
      `compute ${w.computeId} waited ${s} s for memory and was not started: ${this.usage()}; no compute became free (idle ones are suspended for waiting starts)`));
    // the head may have been the one that did not fit
    this.pump();
  }

  private pump(): void {
    const capacity = this.opts.budgetBytes - this.opts.fixedBytes;
    while (this.line.length > 0 && this.used + this.line[0].need <= capacity) {
      const w = this.line.shift()!;
      clearTimeout(w.timer);
      this.used += w.need;
      w.grant();
    }
    this.opts.onWaiting?.(this.line.length);
    this.askForMemory();
  }

  /** Asks the host for what the whole line lacks; again every 250 ms while it waits. */
  private askForMemory(): void {
    if (this.line.length === 0) {
      this.stopTicker();
      return;
    }
    const wanted = this.line.reduce((n, w) => n + w.need, 0);
    const free = this.opts.budgetBytes - this.opts.fixedBytes - this.used;
    if (wanted > free) this.opts.reclaim(wanted - free);
    this.ticker ??= setInterval(() => this.askForMemory(), RECLAIM_EVERY_MS);
    this.ticker.unref();
  }

  private stopTicker(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
  }
}
