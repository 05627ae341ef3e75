// Pre-started compute workers: each has loaded PGlite's JavaScript, instantiated the compiled wasm module and set
// up the Emscripten runtime, and waits (in its filesystem's initialSyncFs) for a timeline. Taking one leaves a
// start with the Postgres start-up alone.
//
// Starts that find no ready worker wait for the next one, first come first served, and the pool makes workers
// for them several at a time (`maxSpawns`): under a wake storm the starts are served as fast as the machine makes
// workers, in order, instead of each start spawning its own and all of them crawling together. When no start
// waits, the pool is refilled one worker at a time and only `refillDelayMs` (2 s) after the last take: a worker's
// spawn is hundreds of ms of CPU, and begun 250 ms after a take it tripled the PGlite start it overlapped on 2
// cores (and slowed that compute's first queries).
import { spawnComputeWorker } from '../compute.ts';
import type { ComputeWorker, SpawnOptions } from '../compute.ts';
import type { Logger } from '../../lib/logger.ts';

export interface PoolOptions extends SpawnOptions {
  size: number;
  /** Workers made at once while starts wait for one (default 2). */
  maxSpawns?: number;
  /** Quiet refills begin this long after the last take (default 2 s). */
  refillDelayMs?: number;
  log: Logger;
  onChange?: (idle: number) => void;
}

export class WorkerPool {
  private readonly opts: PoolOptions;
  private readonly ready: ComputeWorker[] = [];
  /** Starts waiting for a worker, in arrival order. */
  private readonly waiters: ((w: ComputeWorker | undefined) => void)[] = [];
  /** Spawns in flight (spawned, not yet pre-started). */
  private spawning = 0;
  private readonly warming = new Set<ComputeWorker>();
  private lastTake = 0;
  /** A spawn failed: quiet refills stop until the next take (no loop of failing spawns). */
  private failed = false;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  private filled: (() => void) | null = null;

  constructor(opts: PoolOptions) {
    this.opts = opts;
  }

  get size(): number {
    return this.opts.size;
  }

  /** Workers waiting for a timeline. */
  get idle(): number {
    return this.ready.length;
  }

  /** Starts waiting for a worker. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Fills the pool; resolves when every worker is pre-started (or one failed to). */
  async fill(): Promise<void> {
    if (this.opts.size === 0) return;
    const done = new Promise<void>((r) => (this.filled = r));
    this.pump();
    await done;
  }

  /**
   * A pre-started worker for a start: a ready one, else the next one the pool makes (the start waits in line).
   * Undefined with no pool (size 0), once the pool is closed, or when a spawn failed: the start then spawns its own.
   */
  acquire(): Promise<ComputeWorker | undefined> {
    if (this.closed || this.opts.size === 0) return Promise.resolve(undefined);
    const w = this.take();
    if (w) return Promise.resolve(w);
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.pump();
    });
  }

  /** A ready worker, or undefined (no wait). */
  take(): ComputeWorker | undefined {
    const w = this.ready.shift();
    if (w) {
      this.lastTake = performance.now();
      this.failed = false;
      this.opts.onChange?.(this.ready.length);
      this.pump();
    }
    return w;
  }

  /**
   * Starts spawns: for waiting starts at once, up to maxSpawns in flight; for the pool's own refill one at a time,
   * once refillDelayMs have passed since the last take.
   */
  private pump(): void {
    if (this.closed) return;
    const wanted = this.waiters.length + this.opts.size - this.ready.length;
    if (this.waiters.length > 0) {
      const limit = Math.max(1, this.opts.maxSpawns ?? 2);
      while (this.spawning < Math.min(limit, wanted)) this.spawnOne();
      return;
    }
    if (this.spawning > 0 || wanted <= 0 || this.failed) return;
    const wait = this.lastTake === 0 ? 0 : this.lastTake + (this.opts.refillDelayMs ?? 2000) - performance.now();
    if (wait <= 0) {
      this.spawnOne();
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pump();
    }, wait);
    this.timer.unref();
  }

  private spawnOne(): void {
    this.spawning++;
    void this.spawn().then((w) => {
      this.spawning--;
      if (w) this.deliver(w);
      else this.failWaiters();
      if (!w) this.failed = true;
      this.pump();
      if (this.spawning === 0 && (this.ready.length >= this.opts.size || !w)) this.filled?.();
    });
  }

  /** A pre-started worker, or null when it failed to pre-start or the pool closed meanwhile. */
  private async spawn(): Promise<ComputeWorker | null> {
    let w: ComputeWorker;
    try {
      w = await spawnComputeWorker(this.opts);
    } catch (e) {
      this.opts.log.warn({ err: (e as Error).message }, 'a pooled compute worker failed to spawn');
      return null;
    }
    // closed while it spawned: close() could not see it, and its pre-start (seconds of wasm compilation) would
    // hold the process's exit
    if (this.closed) {
      await w.terminate();
      return null;
    }
    this.warming.add(w);
    try {
      await w.prestarted;
    } catch (e) {
      this.warming.delete(w);
      if (!this.closed) this.opts.log.warn({ err: (e as Error).message }, 'a pooled compute worker failed to pre-start');
      await w.terminate();
      return null;
    }
    this.warming.delete(w);
    if (this.closed) {
      await w.terminate();
      return null;
    }
    return w;
  }

  /** A new worker goes to the first waiting start, else into the pool. */
  private deliver(w: ComputeWorker): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter(w);
      return;
    }
    this.ready.push(w);
    // a pooled worker that dies is replaced
    void w.exited.then(() => {
      const i = this.ready.indexOf(w);
      if (i >= 0) {
        this.ready.splice(i, 1);
        this.opts.onChange?.(this.ready.length);
        this.pump();
      }
    });
    this.opts.onChange?.(this.ready.length);
  }

  /** A spawn failed: the first waiting start spawns its own (and meets the error itself, if it persists). */
  private failWaiters(): void {
    this.waiters.shift()?.(undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
    this.filled?.();
    const all = [...this.ready, ...this.warming];
    this.ready.length = 0;
    this.warming.clear();
    await Promise.all(all.map((w) => w.terminate()));
  }
}
