// File contents of a mount: 8 KiB pages, loaded lazily from the storage node, kept in an LRU of clean pages
// bounded by `cacheBytes`. Dirty pages (and those in the batch in flight) are pinned until acknowledged, so an
// evicted page is always one whose bytes the storage node has: it is read back at the durable LSN under the path
// the file had then (`originOf`), and bytes at or past the file's `originLimit` (a truncate) read as zeros.
// Fetches are deduplicated per page; a miss also fetches a whole small file or a growing sequential window.
import type { StorageClient } from '../../storage-node/client.ts';
import { PAGE_SIZE } from '../../storage-node/api/types.ts';
import type { StartPages } from './start-pages.ts';
import type { FuseCounters } from './stats.ts';
import type { FsNode, Origin } from './tree.ts';

/** Files up to this size are fetched whole on their first miss (they are read whole: configs, maps). */
const SMALL_FILE_BYTES = 128 * 1024;
const MAX_READAHEAD_PAGES = 32;
/** Pages per readPages request (the node allows 4096 by default). */
const MAX_PAGES_PER_REQUEST = 2048;
const ZERO = Buffer.alloc(PAGE_SIZE);

export interface PageStoreOptions {
  client: StorageClient;
  timelineId: string;
  cacheBytes: number;
  counters: FuseCounters;
  /** Where the node's clean pages are read from now (null: nowhere, they are zeros). */
  originOf: (node: FsNode) => Origin | null;
  /** Records the pages read during the start window (writable data directories only). */
  startPages?: StartPages | null;
}

const key = (node: FsNode, page: number): string => `${node.ino}:${page}`;

export class PageStore {
  private readonly opts: PageStoreOptions;
  /** Clean resident pages, least recently used first. */
  private readonly lru = new Map<string, [FsNode, number]>();

  constructor(opts: PageStoreOptions) {
    this.opts = opts;
  }

  get cachedBytes(): number {
    return this.lru.size * PAGE_SIZE;
  }

  /** A clean page known to hold the storage node's bytes (start-up prefetch, local files are pinned instead). */
  install(node: FsNode, page: number, bytes: Uint8Array): void {
    if (node.pages.has(page)) return;
    const b = Buffer.alloc(PAGE_SIZE);
    b.set(bytes.subarray(0, PAGE_SIZE));
    this.cut(node, page, b);
    node.pages.set(page, b);
    this.lru.set(key(node, page), [node, page]);
  }

  /** A pinned page of a file that exists only here (local files). */
  pin(node: FsNode, page: number, bytes: Uint8Array): void {
    const b = Buffer.alloc(PAGE_SIZE);
    b.set(bytes.subarray(0, PAGE_SIZE));
    node.pages.set(page, b);
    node.dirty.add(page);
  }

  /** Reads up to `len` bytes at `pos` into `dst`; the byte count. */
  async read(node: FsNode, pos: number, len: number, dst: Buffer): Promise<number> {
    const end = Math.min(pos + len, node.size);
    if (end <= pos) return 0;
    const first = Math.floor(pos / PAGE_SIZE);
    const last = Math.floor((end - 1) / PAGE_SIZE);
    this.opts.startPages?.read(node, first, last);
    let fetched: Map<number, Buffer> | null = null;
    for (let p = first; p <= last; p++) {
      if (!node.pages.has(p) && p * PAGE_SIZE < node.originLimit) {
        fetched = await this.load(node, first, last, true);
        break;
      }
    }
    // copied synchronously: nothing can be evicted or written between the check and the copy
    for (let off = pos; off < end; ) {
      const p = Math.floor(off / PAGE_SIZE);
      const o = off - p * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - o, end - off);
      const page = this.resident(node, p) ?? fetched?.get(p) ?? ZERO;
      page.copy(dst, off - pos, o, o + n);
      off += n;
    }
    return end - pos;
  }

  /** Writes `data` at `pos` (read-modify-write of partly written pages the storage node has). */
  async write(node: FsNode, pos: number, data: Buffer): Promise<void> {
    const len = data.length;
    if (len === 0) return;
    const first = Math.floor(pos / PAGE_SIZE);
    const last = Math.floor((pos + len - 1) / PAGE_SIZE);
    const need: number[] = [];
    for (const p of new Set([first, last])) {
      const whole = pos <= p * PAGE_SIZE && pos + len >= (p + 1) * PAGE_SIZE;
      if (!whole && !node.pages.has(p) && p * PAGE_SIZE < node.originLimit) need.push(p);
    }
    const fetched = need.length > 0 ? await this.loadPages(node, need) : null;
    for (let i = 0; i < len; ) {
      const off = pos + i;
      const p = Math.floor(off / PAGE_SIZE);
      const o = off - p * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - o, len - i);
      data.copy(this.dirtyPage(node, p, fetched?.get(p)), o, i, i + n);
      i += n;
    }
    if (pos + len > node.size) node.size = pos + len;
    node.mtimeMs = node.ctimeMs = Date.now();
  }

  /** Truncates or extends the file; bytes past a cut read as zeros even after the file grows again. */
  setSize(node: FsNode, size: number): void {
    if (size < node.size) {
      const keep = Math.ceil(size / PAGE_SIZE);
      for (const p of [...node.pages.keys()]) {
        if (p < keep) continue;
        node.pages.delete(p);
        node.dirty.delete(p);
        node.shipping.delete(p);
        this.lru.delete(key(node, p));
      }
      for (const p of [...node.fetching.keys()]) if (p >= Math.floor(size / PAGE_SIZE)) node.fetching.delete(p);
      const tail = node.pages.get(Math.floor(size / PAGE_SIZE));
      if (tail && size % PAGE_SIZE !== 0) tail.fill(0, size % PAGE_SIZE);
      node.originLimit = Math.min(node.originLimit, size);
      node.sizeFloor = Math.min(node.sizeFloor, size);
    }
    node.size = size;
    node.mtimeMs = node.ctimeMs = Date.now();
  }

  /** The batch in flight was acknowledged: its pages that were not written again are clean now. */
  shipped(node: FsNode): void {
    for (const p of node.shipping) if (node.pages.has(p) && !node.dirty.has(p)) this.lru.set(key(node, p), [node, p]);
    node.shipping.clear();
  }

  /** Forgets every page of a node that is gone (unlinked and closed). */
  drop(node: FsNode): void {
    for (const p of node.pages.keys()) this.lru.delete(key(node, p));
    node.pages.clear();
    node.dirty.clear();
    node.shipping.clear();
    node.fetching.clear();
  }

  /** Evicts the least recently used clean pages above the bound. */
  evict(): void {
    const max = Math.floor(this.opts.cacheBytes / PAGE_SIZE);
    while (this.lru.size > max) {
      const [k, [node, page]] = this.lru.entries().next().value as [string, [FsNode, number]];
      this.lru.delete(k);
      node.pages.delete(page);
    }
  }

  /** A resident page, marked as recently used. */
  private resident(node: FsNode, page: number): Buffer | undefined {
    const b = node.pages.get(page);
    if (b) {
      const k = key(node, page);
      if (this.lru.delete(k)) this.lru.set(k, [node, page]);
    }
    return b;
  }

  /** The page, resident and pinned as dirty (from `fetched`, or zeros, if it was not resident). */
  private dirtyPage(node: FsNode, p: number, fetched: Buffer | undefined): Buffer {
    let page = node.pages.get(p);
    if (page) {
      this.lru.delete(key(node, p));
    } else {
      page = fetched ?? Buffer.alloc(PAGE_SIZE);
      this.cut(node, p, page);
      node.pages.set(p, page);
    }
    node.dirty.add(p);
    node.fetching.delete(p); // a fetch still in flight must not install the old bytes over this page
    return page;
  }

  /** Zeroes the bytes of a fetched page at or past the file's origin limit (a truncate since). */
  private cut(node: FsNode, page: number, b: Buffer): void {
    const keep = node.originLimit - page * PAGE_SIZE;
    if (keep < PAGE_SIZE) b.fill(0, Math.max(keep, 0));
  }

  /** Pages [first, last] that the storage node has, with read-ahead when `ahead`. */
  private load(node: FsNode, first: number, last: number, ahead: boolean): Promise<Map<number, Buffer>> {
    const want: number[] = [];
    for (let p = first; p <= last; p++) want.push(p);
    let extra: number[] = [];
    if (ahead) extra = this.readAhead(node, first, last);
    return this.loadPages(node, want, extra);
  }

  /** The pages a miss at [first, last] should also fetch: a whole small file, or the sequential window. */
  private readAhead(node: FsNode, first: number, last: number): number[] {
    const basePages = Math.ceil(node.originLimit / PAGE_SIZE);
    let from = first;
    let to = Math.min(last, basePages - 1);
    if (node.originLimit <= SMALL_FILE_BYTES) {
      from = 0;
      to = basePages - 1;
    } else if (first === node.nextSeqPage) {
      node.window = Math.min(node.window * 2, MAX_READAHEAD_PAGES);
      to = Math.min(basePages - 1, Math.max(to, first + node.window - 1));
    } else {
      node.window = 1;
    }
    node.nextSeqPage = to + 1;
    const out: number[] = [];
    for (let p = from; p <= to; p++) if (p < first || p > last) out.push(p);
    return out;
  }

  /** Resolves with the bytes of `want` (resident, in flight, or fetched now with `extra`); zeros are absent. */
  private async loadPages(node: FsNode, want: number[], extra: number[] = []): Promise<Map<number, Buffer>> {
    const out = new Map<number, Buffer>();
    const waits: Promise<unknown>[] = [];
    const missing: number[] = [];
    const wanted = new Set(want);
    for (const p of [...want, ...extra]) {
      if (p * PAGE_SIZE >= node.originLimit) continue;
      const resident = node.pages.get(p);
      if (resident) {
        if (wanted.has(p)) out.set(p, resident);
        continue;
      }
      const inFlight = node.fetching.get(p);
      if (inFlight) {
        if (wanted.has(p)) waits.push(inFlight.promise.then((m) => out.set(p, m.get(p)!)));
        continue;
      }
      missing.push(p);
    }
    if (missing.length > 0) {
      const got = this.fetch(node, missing);
      waits.push(got.then((m) => {
        for (const p of missing) if (wanted.has(p)) out.set(p, m.get(p)!);
      }));
    }
    await Promise.all(waits);
    return out;
  }

  /** One fetch of `pages` (split into requests the node accepts), registered so that others wait for it. */
  private fetch(node: FsNode, pages: number[]): Promise<Map<number, Buffer>> {
    const token = {};
    const origin = this.opts.originOf(node);
    const promise = (async () => {
      const out = new Map<number, Buffer>();
      const parts: Promise<Buffer[]>[] = [];
      for (let i = 0; i < pages.length; i += MAX_PAGES_PER_REQUEST) {
        const refs = pages.slice(i, i + MAX_PAGES_PER_REQUEST).map((page) => ({ path: origin?.path ?? '', page }));
        parts.push(origin ? this.opts.client.readPages(this.opts.timelineId, refs, origin.lsn) : Promise.resolve(refs.map(() => ZERO)));
      }
      const bufs = (await Promise.all(parts)).flat();
      this.count(parts.length, pages.length);
      pages.forEach((p, i) => {
        const b = Buffer.from(bufs[i]); // a copy: the answer's body is not kept alive by one page
        this.cut(node, p, b);
        out.set(p, b);
        if (node.fetching.get(p)?.token !== token) return;
        node.fetching.delete(p);
        if (!node.pages.has(p) && p * PAGE_SIZE < node.size) {
          node.pages.set(p, b);
          this.lru.set(key(node, p), [node, p]);
        }
      });
      this.evict();
      return out;
    })();
    for (const p of pages) node.fetching.set(p, { token, promise });
    promise.catch(() => {
      for (const p of pages) if (node.fetching.get(p)?.token === token) node.fetching.delete(p);
    });
    return promise;
  }

  private count(requests: number, pages: number): void {
    const c = this.opts.counters;
    c.fetchRequests += requests;
    c.pagesFetched += pages;
    c.bytesFetched += pages * PAGE_SIZE;
  }
}
