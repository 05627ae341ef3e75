// The in-memory model of one timeline: versioned file metadata and pages, keyed by LSN, with reads that fall
// through to the ancestor at the branch point. Durability and layers are handled by the engine around it.
import { PAGE_SIZE } from '../api/types.ts';
import type { FileEntry, WriteBatch } from '../api/types.ts';
import { buildBatch, pageKey } from './batch-builder.ts';
import { FileNotFoundError, LsnOutOfRangeError } from './errors.ts';
import { reconstructPage, decodeDelta } from './page.ts';
import type { DeltaRange, PageData } from './page.ts';

/** Where a frozen version's bytes are: a byte range of a layer file. */
export interface LayerRef {
  /** The timeline whose layer holds the bytes (an ancestor's, for versions read through a branch). */
  timelineId: string;
  layer: string;
  offset: number;
  length: number;
}

export interface PageVersion {
  lsn: number;
  kind: 'image' | 'delta';
  /** Present while the version lives in memory (not yet frozen, or cached). */
  data?: PageData;
  ref?: LayerRef;
}

export type NsEntry = { type: 'file'; ino: string } | { type: 'dir' };
/** A file's size after a batch, and the smallest size it had within that batch (a truncate cuts older pages). */
export interface SizeValue {
  size: number;
  cut: number;
}
export interface MetaVersion<T> {
  lsn: number;
  value: T;
}

/** The changes a validated batch will make, computed before it is made durable. */
export interface PreparedBatch {
  lsn: number;
  time: number;
  pages: Map<string, PageData>;
  ns: Map<string, NsEntry | null>;
  sizes: Map<string, SizeValue>;
  /** Postgres' WAL position once this batch is applied (wal-position.ts); undefined before any WAL. */
  wal?: number;
}

export type BlobLoader = (ref: LayerRef) => Promise<Buffer>;

export { pageKey };

function lastAtOrBefore<T extends { lsn: number }>(arr: T[] | undefined, lsn: number): number {
  if (!arr) return -1;
  let lo = 0;
  let hi = arr.length - 1;
  let ans = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (arr[mid].lsn <= lsn) {
      ans = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return ans;
}

function pushVersion<T extends { lsn: number }>(map: Map<string, T[]>, key: string, v: T): void {
  const arr = map.get(key);
  if (arr) arr.push(v);
  else map.set(key, [v]);
}

export class Timeline {
  readonly id: string;
  readonly ancestor: Timeline | null;
  readonly ancestorLsn: number;
  readonly createdAt: number;
  /** LSN of the last durable batch; reads at head read here. */
  lastLsn: number;
  /** Versions older than this may have been garbage-collected. */
  gcCutoffLsn: number;

  readonly pages = new Map<string, PageVersion[]>();
  readonly ns = new Map<string, MetaVersion<NsEntry | null>[]>();
  readonly sizes = new Map<string, MetaVersion<SizeValue>[]>();
  /** Commit time (ms since epoch) and Postgres' WAL position of each batch, in LSN order. */
  readonly times: { lsn: number; ms: number; wal?: number }[] = [];
  /** Bytes of page data held in memory and not yet frozen into a layer. */
  openBytes = 0;
  /** The highest LSN assigned (may be ahead of lastLsn while a batch is becoming durable). */
  assignedLsn: number;

  constructor(id: string, ancestor: Timeline | null, ancestorLsn: number, createdAt: number) {
    this.id = id;
    this.ancestor = ancestor;
    this.ancestorLsn = ancestor ? ancestorLsn : 0;
    this.createdAt = createdAt;
    this.lastLsn = this.ancestorLsn;
    this.assignedLsn = this.ancestorLsn;
    this.gcCutoffLsn = this.ancestorLsn;
  }

  /** This timeline and its ancestors, each with the highest LSN of it that is visible from here. */
  private *chain(lsn: number): Generator<[Timeline, number]> {
    let t: Timeline | null = this;
    let bound = lsn;
    while (t) {
      yield [t, bound];
      bound = Math.min(bound, t.ancestorLsn);
      t = t.ancestor;
    }
  }

  checkReadable(lsn: number): void {
    if (!Number.isSafeInteger(lsn) || lsn < 0) throw new LsnOutOfRangeError(`LSN must be a non-negative integer, got ${lsn}`);
    if (lsn > this.lastLsn) {
      throw new LsnOutOfRangeError(`requested LSN ${lsn} is ahead of timeline ${this.id}'s last LSN ${this.lastLsn}`);
    }
    if (lsn < this.gcCutoffLsn) {
      const why = this.ancestor && lsn < this.ancestorLsn ? 'before the branch point' : 'older than the retained history (garbage-collected)';
      throw new LsnOutOfRangeError(`requested LSN ${lsn} of timeline ${this.id} is ${why}; the oldest readable LSN is ${this.gcCutoffLsn}`);
    }
  }

  private metaAt<T>(field: 'ns' | 'sizes', key: string, lsn: number): MetaVersion<T> | undefined {
    for (const [t, bound] of this.chain(lsn)) {
      const arr = t[field].get(key) as MetaVersion<T>[] | undefined;
      const i = lastAtOrBefore(arr, bound);
      if (i >= 0) return arr![i];
    }
    return undefined;
  }

  entryAt(path: string, lsn: number): NsEntry | null {
    if (path === '') return { type: 'dir' };
    return this.metaAt<NsEntry | null>('ns', path, lsn)?.value ?? null;
  }

  sizeAt(ino: string, lsn: number): number {
    return this.metaAt<SizeValue>('sizes', ino, lsn)?.value.size ?? 0;
  }

  /** Every path ever named in this timeline's chain (live or not). */
  allPaths(lsn: number): Set<string> {
    const out = new Set<string>();
    for (const [t] of this.chain(lsn)) for (const k of t.ns.keys()) out.add(k);
    return out;
  }

  listFiles(lsn: number): FileEntry[] {
    const files: FileEntry[] = [];
    for (const path of this.allPaths(lsn)) {
      const e = this.entryAt(path, lsn);
      if (!e) continue;
      files.push({ path, type: e.type, size: e.type === 'file' ? this.sizeAt(e.ino, lsn) : 0 });
    }
    files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return files;
  }

  logicalSize(lsn: number): number {
    let total = 0;
    for (const f of this.listFiles(lsn)) total += f.size;
    return total;
  }

  lsnForTime(ms: number): number {
    // The last batch committed at or before ms; before the first batch, the branch point.
    let lo = 0;
    let hi = this.times.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.times[mid].ms <= ms) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (ans < 0) {
      if (this.ancestor && ms >= this.createdAt) return this.ancestorLsn;
      if (!this.ancestor && ms >= this.createdAt) return 0;
      return -1;
    }
    return Math.min(this.times[ans].lsn, this.lastLsn);
  }

  /** Postgres' WAL position as of `lsn` (not bounded by lastLsn: the batch builder asks at assignedLsn). */
  walLsnAt(lsn: number): number | null {
    for (let i = lastAtOrBefore(this.times, lsn); i >= 0; i--) {
      const wal = this.times[i].wal;
      if (wal !== undefined) return wal; // only batches of layers written before WAL positions were kept lack one
    }
    return this.ancestor ? this.ancestor.walLsnAt(Math.min(lsn, this.ancestorLsn)) : null;
  }

  /**
   * The last LSN up to `upTo` whose WAL position is at or before `wal`: it holds every transaction whose commit
   * record ends at or before `wal`, and nothing whose WAL lies past it. The branch point if no batch of this
   * timeline qualifies, -1 if not even that does (the position is before this timeline's history).
   */
  lsnForWal(wal: number, upTo: number): number {
    let lo = 0;
    let hi = lastAtOrBefore(this.times, upTo);
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const at = this.times[mid].wal;
      if (at === undefined || at <= wal) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (ans >= 0) return this.times[ans].lsn;
    const base = this.ancestor ? this.ancestor.walLsnAt(this.ancestorLsn) : null;
    return base === null || base <= wal ? this.ancestorLsn : -1;
  }

  timeOfLsn(lsn: number): number | null {
    const i = lastAtOrBefore(this.times, lsn);
    if (i >= 0 && this.times[i].lsn === lsn) return this.times[i].ms;
    if (this.ancestor && lsn <= this.ancestorLsn) return this.ancestor.timeOfLsn(lsn);
    return null;
  }

  /**
   * Reads page `page` of file `path` as of `lsn`: collects this key's versions newest first across the chain
   * until an image, or a truncation that cut the page away, then applies the deltas over it.
   */
  async readPage(path: string, page: number, lsn: number, load: BlobLoader): Promise<Buffer> {
    const e = this.entryAt(path, lsn);
    if (e?.type !== 'file') throw new FileNotFoundError(path, lsn);
    return this.readInodePage(e.ino, page, lsn, load);
  }

  async readInodePage(ino: string, page: number, lsn: number, load: BlobLoader): Promise<Buffer> {
    const key = pageKey(ino, page);
    const pageStart = page * PAGE_SIZE;
    const collected: PageVersion[] = [];
    let base: PageVersion | null = null;
    // Smallest `cut` among size versions newer than the candidate page version (and <= lsn).
    const sizeVersions = this.sizeHistory(ino, lsn); // newest first
    let si = 0;
    let minCut = Infinity;
    outer: for (const [t, bound] of this.chain(lsn)) {
      const arr = t.pages.get(key);
      let i = lastAtOrBefore(arr, bound);
      for (; i >= 0; i--) {
        const v = arr![i];
        while (si < sizeVersions.length && sizeVersions[si].lsn > v.lsn) {
          minCut = Math.min(minCut, sizeVersions[si].value.cut);
          si++;
        }
        if (minCut <= pageStart) break outer; // truncated away after this version: start from zeros
        if (v.kind === 'image') {
          base = v;
          break outer;
        }
        collected.push(v);
      }
    }
    const datas = await Promise.all([...collected, ...(base ? [base] : [])].map((v) => versionData(v, load)));
    const deltas: DeltaRange[][] = [];
    for (let i = 0; i < collected.length; i++) {
      const d = datas[i];
      deltas.push(d.kind === 'delta' ? d.ranges : []);
    }
    let baseBytes: Buffer | null = null;
    if (base) {
      const d = datas[datas.length - 1];
      baseBytes = d.kind === 'image' ? d.bytes : null;
    }
    return reconstructPage(baseBytes, deltas);
  }

  private sizeHistory(ino: string, lsn: number): MetaVersion<SizeValue>[] {
    const out: MetaVersion<SizeValue>[] = [];
    for (const [t, bound] of this.chain(lsn)) {
      const arr = t.sizes.get(ino);
      for (let i = lastAtOrBefore(arr, bound); i >= 0; i--) out.push(arr![i]);
    }
    return out;
  }

  /**
   * Validates a batch against the timeline's latest state (including batches still becoming durable) and
   * computes its changes (batch-builder.ts). Throws BatchRejectedError, with nothing changed, when any op is invalid.
   */
  prepare(batch: WriteBatch, time: number): PreparedBatch {
    return buildBatch(this, batch, time);
  }

  /** Makes a prepared batch visible to later prepares (not yet to reads: see markDurable). */
  apply(b: PreparedBatch): void {
    for (const [key, data] of b.pages) {
      pushVersion(this.pages, key, { lsn: b.lsn, kind: data.kind, data });
      this.openBytes += data.kind === 'image' ? data.bytes.length : data.ranges.reduce((n, r) => n + r.bytes.length, 0);
    }
    for (const [key, value] of b.ns) pushVersion(this.ns, key, { lsn: b.lsn, value });
    for (const [key, value] of b.sizes) pushVersion(this.sizes, key, { lsn: b.lsn, value });
    this.times.push({ lsn: b.lsn, ms: b.time, wal: b.wal });
    this.assignedLsn = b.lsn;
  }

  markDurable(lsn: number): void {
    if (lsn > this.lastLsn) this.lastLsn = lsn;
  }

  /** Inserts a version loaded from a layer, keeping each key's versions sorted (images after deltas at one LSN). */
  insertPageVersion(key: string, v: PageVersion): void {
    const arr = this.pages.get(key);
    if (!arr) {
      this.pages.set(key, [v]);
      return;
    }
    let i = arr.length;
    while (i > 0 && (arr[i - 1].lsn > v.lsn || (arr[i - 1].lsn === v.lsn && v.kind === 'delta' && arr[i - 1].kind === 'image'))) i--;
    if (i > 0 && arr[i - 1].lsn === v.lsn && arr[i - 1].kind === v.kind) {
      arr[i - 1] = v; // the same version, seen again in another layer
      return;
    }
    arr.splice(i, 0, v);
  }

  insertMeta<T>(map: Map<string, MetaVersion<T>[]>, key: string, v: MetaVersion<T>): void {
    const arr = map.get(key);
    if (!arr) {
      map.set(key, [v]);
      return;
    }
    let i = arr.length;
    while (i > 0 && arr[i - 1].lsn > v.lsn) i--;
    if (i > 0 && arr[i - 1].lsn === v.lsn) arr[i - 1] = v;
    else arr.splice(i, 0, v);
  }

  insertTime(lsn: number, ms: number, wal?: number): void {
    let i = this.times.length;
    while (i > 0 && this.times[i - 1].lsn > lsn) i--;
    if (i > 0 && this.times[i - 1].lsn === lsn) return;
    this.times.splice(i, 0, { lsn, ms, wal });
  }
}

async function versionData(v: PageVersion, load: BlobLoader): Promise<PageData> {
  if (v.data) return v.data;
  if (!v.ref) throw new Error('page version has neither data nor a layer reference');
  const blob = await load(v.ref);
  return v.kind === 'image' ? { kind: 'image', bytes: blob } : { kind: 'delta', ranges: decodeDelta(blob) };
}
