// What a FUSE server counts, for the compute host's metrics: FUSE operations by name, fsync batches (count, ops,
// bytes, latency as a cumulative histogram ready for Prometheus), page fetches, and the page cache's size.

/** Upper bounds (seconds) of the batch latency histogram. */
export const BATCH_SECONDS_BOUNDS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10];

export interface Histogram {
  /** Upper bounds, seconds (the +Inf bucket is `count`). */
  bounds: number[];
  /** counts[i]: observations <= bounds[i] (cumulative, as Prometheus exposes them). */
  counts: number[];
  sum: number;
  count: number;
}

export interface FuseStats {
  /** Last acknowledged LSN (the mount's LSN if nothing was shipped). */
  lsn: number;
  /** FUSE operations served, by name (getattr, read, write, fsync, ...). */
  ops: Record<string, number>;
  /** fsync, fdatasync and fsyncdir calls; `fsyncsJoined`: those that arrived during a ship (group commit). */
  fsyncs: number;
  fsyncsJoined: number;
  /** Write batches acknowledged by the storage node, their ops and write bytes. */
  batches: number;
  batchOps: number;
  batchBytes: number;
  batchSeconds: Histogram;
  /** readPages calls, the pages they returned and those pages' bytes. */
  fetchRequests: number;
  pagesFetched: number;
  bytesFetched: number;
  /** Pages recorded for the prefetch hint in the start window (so far, or in all once it closed). */
  startPages: number;
  /** Clean resident pages (bounded by cacheBytes) and pinned ones (changes not acknowledged, local files). */
  cachedBytes: number;
  dirtyBytes: number;
  /** Why fsync answers EIO from now on, if it does. */
  failed: 'fenced' | 'ship_failed' | null;
}

export class FuseCounters {
  readonly ops: Record<string, number> = {};
  fsyncs = 0;
  fsyncsJoined = 0;
  batches = 0;
  batchOps = 0;
  batchBytes = 0;
  fetchRequests = 0;
  pagesFetched = 0;
  bytesFetched = 0;
  private readonly latency: Histogram = { bounds: BATCH_SECONDS_BOUNDS, counts: BATCH_SECONDS_BOUNDS.map(() => 0), sum: 0, count: 0 };

  op(name: string): void {
    this.ops[name] = (this.ops[name] ?? 0) + 1;
  }

  batch(seconds: number, ops: number, bytes: number): void {
    this.batches++;
    this.batchOps += ops;
    this.batchBytes += bytes;
    const h = this.latency;
    h.sum += seconds;
    h.count++;
    for (let i = 0; i < h.bounds.length; i++) if (seconds <= h.bounds[i]) h.counts[i]++;
  }

  snapshot(extra: Pick<FuseStats, 'lsn' | 'cachedBytes' | 'dirtyBytes' | 'failed' | 'startPages'>): FuseStats {
    const h = this.latency;
    return {
      ...extra,
      ops: { ...this.ops },
      fsyncs: this.fsyncs,
      fsyncsJoined: this.fsyncsJoined,
      batches: this.batches,
      batchOps: this.batchOps,
      batchBytes: this.batchBytes,
      batchSeconds: { bounds: [...h.bounds], counts: [...h.counts], sum: h.sum, count: h.count },
      fetchRequests: this.fetchRequests,
      pagesFetched: this.pagesFetched,
      bytesFetched: this.bytesFetched,
    };
  }
}
