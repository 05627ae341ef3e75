// Pre-started compute workers: each has loaded PGlite's JavaScript, instantiated the compiled wasm module and set
// up the Emscripten runtime, and waits (in its filesystem's initialSyncFs) for a timeline. Taking one leaves a
// start with the Postgres start-up alone. Refills run one worker at a time, well after a take (a worker's spawn is
// hundreds of ms of CPU: begun 250 ms after the take, it tripled the PGlite start it overlapped on 2 cores, and
// slowed that compute's first queries), so that they do not compete with the start that took the worker.
import { spawnComputeWorker } from '../compute.ts';
import type { ComputeWorker, SpawnOptions } from '../compute.ts';
import type { Logger } from '../../lib/logger.ts';

export interface PoolOptions extends SpawnOptions {
  size: number;
  /** Delay before a refill after a take (default 2 s). */
  refillDelayMs?: number;
  log: Logger;
  onChange?: (idle: number) => void;
}

export class WorkerPool {
  private readonly opts: PoolOptions;
  private readonly ready: ComputeWorker[] = [];
  private readonly warming = new Set<ComputeWorker>();
  private refilling = false;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(opts: PoolOptions) {
    this.opts = opts;
  }

  get size(): number {
    return this.opts.size;
  }

  /** Workers waiting for a timeline (ready) and still warming up. */
  get idle(): number {
    return this.ready.length;
  }

  get total(): number {
    return this.ready.length + this.warming.size;
  }

  /** Fills the pool; resolves when every worker is pre-started. */
  async fill(): Promise<void> {
    await this.refill();
  }

  /** A pre-started worker, or undefined when none is ready (the start then spawns its own). */
  take(): ComputeWorker | undefined {
    const w = this.ready.shift();
    this.opts.onChange?.(this.ready.length);
    this.scheduleRefill();
    return w;
  }

  private scheduleRefill(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.refill();
    }, this.opts.refillDelayMs ?? 2000);
    this.timer.unref();
  }

  private async refill(): Promise<void> {
    if (this.refilling) return;
    this.refilling = true;
    try {
      while (!this.closed && this.total < this.opts.size) {
        const w = await spawnComputeWorker(this.opts);
        // closed while it spawned: close() could not see it, and its pre-start (seconds of wasm compilation)
        // would hold the process's exit
        if (this.closed) {
          await w.terminate();
          break;
        }
        this.warming.add(w);
        try {
          await w.prestarted;
        } catch (e) {
          this.warming.delete(w);
          if (this.closed) break;
          this.opts.log.warn({ err: (e as Error).message }, 'a pooled compute worker failed to pre-start');
          await w.terminate();
          break;
        }
        this.warming.delete(w);
        if (this.closed) {
          await w.terminate();
          break;
        }
        this.ready.push(w);
        // a pooled worker that dies is replaced
        void w.exited.then(() => {
          const i = this.ready.indexOf(w);
          if (i >= 0) {
            this.ready.splice(i, 1);
            this.opts.onChange?.(this.ready.length);
            this.scheduleRefill();
          }
        });
        this.opts.onChange?.(this.ready.length);
      }
    } finally {
      this.refilling = false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const all = [...this.ready, ...this.warming];
    this.ready.length = 0;
    this.warming.clear();
    await Promise.all(all.map((w) => w.terminate()));
  }
}
