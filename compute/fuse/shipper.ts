// The durability point of a mount: fsync. An fsync ships every change not yet shipped, in order, as one write
// batch chained on the last acknowledged LSN (`expectedLsn`), and answers after the acknowledgement. One batch is
// in flight at a time; an fsync that arrives during a ship waits for the next one, which carries everything
// that piled up meanwhile (group commit). Metadata ops keep their order; file data goes as runs of dirty pages
// read at collect time, under each file's path then. A failed ship is final: every later fsync fails (EIO) and
// Postgres PANICs; a refused `expectedLsn` means another writer took the timeline, a refused `writerGeneration`
// (409 writer_fenced) that a newer compute did: both are final (fenced).
import type { Logger } from '../../lib/logger.ts';
import type { StorageClient } from '../../storage-node/client.ts';
import { PAGE_SIZE } from '../../storage-node/api/types.ts';
import type { FileOp } from '../../storage-node/api/types.ts';
import type { PageStore } from './pages.ts';
import type { FuseEvent } from './protocol.ts';
import type { FuseCounters } from './stats.ts';
import type { FsNode, Place, Tree } from './tree.ts';

/** A batch is split above this (the storage node refuses bodies over 64 MiB by default). */
const MAX_BATCH_BYTES = 48 * 1024 * 1024;
/** Pages per write op. */
const MAX_RUN_PAGES = 128;

export interface ShipperOptions {
  client: StorageClient;
  timelineId: string;
  /** The LSN the mount's tree was read at. */
  lsn: number;
  readOnly: boolean;
  /** Carried by every batch (undefined: none is sent). */
  writerGeneration?: number;
  tree: Tree;
  pages: PageStore;
  counters: FuseCounters;
  emit: (e: FuseEvent) => void;
  log: Logger;
}

/** What a node looked like when a batch was collected: its place and size once the batch is durable. */
interface Snap {
  node: FsNode;
  place: Place | null;
  size: number;
}

export class Shipper {
  private readonly opts: ShipperOptions;
  private pending: FileOp[] = [];
  /** Nodes with dirty pages, and nodes whose place or size changed, since the last collect. */
  private readonly written = new Set<FsNode>();
  private readonly touched = new Set<FsNode>();
  private inflight: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  private failure: { kind: 'fenced' | 'ship_failed'; error: Error } | null = null;
  /** The last acknowledged LSN. */
  lsn: number;
  /** The LSN the nodes' `durable` places describe (moves once a whole ship, all its parts, is acknowledged). */
  durableLsn: number;

  constructor(opts: ShipperOptions) {
    this.opts = opts;
    this.lsn = opts.lsn;
    this.durableLsn = opts.lsn;
  }

  get failed(): 'fenced' | 'ship_failed' | null {
    return this.failure?.kind ?? null;
  }

  /** A metadata op, in order; `nodes` are those whose place or size it changed. */
  record(op: FileOp | null, ...nodes: FsNode[]): void {
    if (this.opts.readOnly) return; // nothing is shipped: the durable places stay those of the mount's LSN
    if (op) this.pending.push(op);
    for (const n of nodes) this.touched.add(n);
  }

  /** The node has new dirty pages (those of local and unlinked files stay pinned, never shipped). */
  dirtied(node: FsNode): void {
    if (!this.opts.readOnly && !node.local && !node.unlinked) this.written.add(node);
  }

  /** The node left the tree: its clean pages are read from where it was at the durable LSN from now on. */
  leave(node: FsNode): void {
    const path = this.opts.tree.durablePath(node);
    node.frozen = path === null ? null : { path, lsn: this.durableLsn };
  }

  /** Resolves once every change made before the call is acknowledged (at once if there is none). */
  flush(): Promise<void> {
    if (this.opts.readOnly) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure.error);
    if (this.inflight) {
      this.opts.counters.fsyncsJoined++;
      this.queued ??= this.inflight.catch(() => {}).then(() => {
        this.queued = null;
        return this.start();
      });
      return this.queued;
    }
    return this.start();
  }

  /** Is there anything to ship or in flight? */
  get idle(): boolean {
    return !this.inflight && this.pending.length === 0 && this.written.size === 0;
  }

  private start(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure.error);
    const { ops, snaps } = this.collect();
    if (ops.length === 0) {
      this.settle(snaps, this.durableLsn);
      return Promise.resolve();
    }
    const ship = this.ship(ops, snaps);
    this.inflight = ship.finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  /** Takes every change since the last collect: the ordered metadata ops, then the dirty pages as write runs. */
  private collect(): { ops: FileOp[]; snaps: Snap[] } {
    const ops = this.pending;
    this.pending = [];
    const { tree } = this.opts;
    for (const n of this.written) {
      if (n.unlinked || n.local) continue; // their pages stay pinned: never shipped
      for (const op of this.writeRuns(n, tree.pathOf(n))) ops.push(op);
    }
    const snaps: Snap[] = [];
    for (const n of new Set([...this.touched, ...this.written])) {
      const alive = !n.unlinked && !n.local && n.kind !== 'symlink';
      snaps.push({ node: n, place: alive ? { parent: n.parent!, name: n.name } : null, size: n.size });
      n.shipSize = n.size;
      n.sizeFloor = n.size;
    }
    this.touched.clear();
    this.written.clear();
    return { ops, snaps };
  }

  /** The node's dirty pages as write ops of consecutive pages, clipped to its size; they move to `shipping`. */
  private writeRuns(n: FsNode, path: string): FileOp[] {
    const ops: FileOp[] = [];
    const pages = [...n.dirty].sort((a, b) => a - b);
    n.dirty.clear();
    for (let i = 0; i < pages.length; ) {
      let j = i;
      while (j + 1 < pages.length && pages[j + 1] === pages[j] + 1 && j + 1 - i < MAX_RUN_PAGES) j++;
      const bufs: Buffer[] = [];
      for (let k = i; k <= j; k++) {
        const p = pages[k];
        n.shipping.add(p);
        const end = Math.min(PAGE_SIZE, n.size - p * PAGE_SIZE);
        if (end > 0) bufs.push(n.pages.get(p)!.subarray(0, end));
      }
      if (bufs.length > 0) ops.push({ op: 'write', path, offset: pages[i] * PAGE_SIZE, data: Buffer.concat(bufs) });
      i = j + 1;
    }
    return ops;
  }

  /** Ships the ops as one batch (or several, in order, if huge); on success the durable state moves. */
  private async ship(ops: FileOp[], snaps: Snap[]): Promise<void> {
    try {
      for (const part of split(ops)) await this.shipPart(part);
    } catch (e) {
      this.fail(e as Error);
      throw this.failure!.error;
    }
    this.settle(snaps, this.lsn);
  }

  private async shipPart(ops: FileOp[]): Promise<void> {
    const { client, timelineId, counters, emit } = this.opts;
    const bytes = ops.reduce((s, o) => s + (o.op === 'write' ? o.data.length : 0), 0);
    const t0 = performance.now();
    const { writerGeneration } = this.opts;
    const ack = await client.writeBatch(timelineId, writerGeneration === undefined ? { expectedLsn: this.lsn, ops } : { expectedLsn: this.lsn, writerGeneration, ops });
    const ms = performance.now() - t0;
    this.lsn = ack.lsn;
    counters.batch(ms / 1000, ops.length, bytes);
    emit({ type: 'shipped', lsn: ack.lsn, ms, bytes });
  }

  /** The batch of `snaps` is durable at `lsn`: places, origin limits and clean pages follow. */
  private settle(snaps: Snap[], lsn: number): void {
    const { tree, pages } = this.opts;
    this.durableLsn = lsn;
    for (const s of snaps) {
      s.node.durable = s.place;
      if (s.place && s.node.kind === 'file') s.node.originLimit = Math.min(s.size, s.node.sizeFloor);
    }
    for (const s of snaps) {
      pages.shipped(s.node);
      // gone since the collect: its pages are read from where this batch left it
      if (s.place && s.node.left) s.node.frozen = { path: tree.durablePath(s.node)!, lsn };
    }
    pages.evict();
  }

  private fail(e: Error): void {
    const code = (e as { code?: unknown }).code;
    const fenced = code === 'lsn_mismatch' || code === 'writer_fenced';
    const kind = fenced ? 'fenced' : 'ship_failed';
    const message = code === 'writer_fenced'
      ? `fenced by a newer compute: ${e.message}; every later fsync fails with EIO`
      : fenced
      ? `fenced: another writer took timeline ${this.opts.timelineId} (${e.message}); every later fsync fails with EIO`
      : `shipping to the storage node failed (${e.message}); every later fsync fails with EIO`;
    this.failure = { kind, error: new Error(message, { cause: e }) };
    this.opts.log.error({ err: e.message, lsn: this.lsn }, message);
    this.opts.emit(fenced ? { type: 'fenced', message } : { type: 'ship_failed', message });
  }
}

/** Ops in parts of at most MAX_BATCH_BYTES of data (any boundary is crash-consistent for Postgres). */
function split(ops: FileOp[]): FileOp[][] {
  const parts: FileOp[][] = [];
  let part: FileOp[] = [];
  let bytes = 0;
  for (const op of ops) {
    const b = op.op === 'write' ? op.data.length : 256;
    if (bytes + b > MAX_BATCH_BYTES && part.length > 0) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(op);
    bytes += b;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}
