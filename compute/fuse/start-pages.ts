// The pages a compute start reads, for the prefetch hint (compute/storage-fs/prefetch.ts): recorded from the
// mount until the host says the start is over (FuseServer.startDone) or a bound is hit, and written as
// `lakebase.prefetch` by a clean stop, so that the next start of the timeline (or of a branch) fetches them in
// one bulk request at mount instead of one by one while Postgres waits.
import { PAGE_SIZE } from '../../storage-node/api/types.ts';
import type { PageRef } from '../../storage-node/api/types.ts';
import type { Logger } from '../../lib/logger.ts';
import type { FsNode } from './tree.ts';

/**
 * The window ends by itself after this long or this many pages: a start reads a few hundred, and the host leaves it
 * open for the first queries after the start too (their catalog and index pages), so that a wake's first queries
 * find them prefetched.
 */
export const START_WINDOW_MS = 10_000;
export const START_WINDOW_PAGES = 1024;

export class StartPages {
  private readonly byNode = new Map<FsNode, Set<number>>();
  /** Pages every start prefetches anyway (small files, checkpoint WAL): not worth a place in the hint. */
  private readonly base = new Set<string>();
  private count = 0;
  private open = true;
  private readonly t0 = performance.now();
  private readonly timer: NodeJS.Timeout;
  private readonly log: Logger;
  private readonly maxPages: number;

  constructor(log: Logger, maxMs = START_WINDOW_MS, maxPages = START_WINDOW_PAGES) {
    this.log = log;
    this.maxPages = maxPages;
    this.timer = setTimeout(() => this.done('timeout'), maxMs);
    this.timer.unref();
  }

  /** Pages recorded so far. */
  get pages(): number {
    return this.count;
  }

  /** A page the start-up prefetch fetched regardless of the hint. */
  ignore(node: FsNode, page: number): void {
    this.base.add(`${node.ino}:${page}`);
  }

  /** Postgres read pages [first, last] of `node`: those the storage node holds are recorded while the window is open. */
  read(node: FsNode, first: number, last: number): void {
    if (!this.open || node.local) return;
    for (let p = first; p <= last && p * PAGE_SIZE < node.originLimit; p++) {
      if (this.base.has(`${node.ino}:${p}`)) continue;
      let set = this.byNode.get(node);
      if (!set) {
        set = new Set();
        this.byNode.set(node, set);
      }
      if (set.has(p)) continue;
      set.add(p);
      if (++this.count >= this.maxPages) {
        this.done('pages');
        return;
      }
    }
  }

  /** Ends the window (the host's start_done, the time or page bound, or the stop). */
  done(reason: 'start_done' | 'timeout' | 'pages' | 'stop'): void {
    if (!this.open) return;
    this.open = false;
    clearTimeout(this.timer);
    this.log.info({ pages: this.count, ms: Math.round(performance.now() - this.t0), reason }, 'start window closed');
  }

  /** Stops recording, silently: the mount is no start of Postgres (its timeline holds no data directory yet). */
  cancel(): void {
    this.open = false;
    clearTimeout(this.timer);
  }

  /** The recorded pages under each file's path (`pathOf` null: the file is gone, its pages are dropped). */
  refs(pathOf: (node: FsNode) => string | null): PageRef[] {
    const out: PageRef[] = [];
    for (const [node, pages] of this.byNode) {
      const path = pathOf(node);
      if (path === null) continue;
      for (const page of pages) if (page * PAGE_SIZE < node.size) out.push({ path, page });
    }
    return out;
  }
}
