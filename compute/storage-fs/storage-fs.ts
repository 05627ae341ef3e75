// PGlite's data directory on the storage node: a synchronous BaseFilesystem that keeps the whole directory tree
// (names, sizes) in memory, serves file contents from a bounded page cache, fetches missing pages through a
// synchronous backend (in the compute worker: a SharedArrayBuffer bridge to the parent thread, see bridge.ts),
// and buffers every change until flush(), which ships them as ONE write batch with `expectedLsn`.
//
// How PGlite drives it (read from @electric-sql/pglite 0.5.16 src/fs/base.ts): the filesystem is mounted at
// /pglite/data, and every path it is given is relative to that mount with a leading '/' ('/base/5/1259'; the
// root is ''). Emscripten calls lstat for each lookup, writeFile(path, '') for O_CREAT (mknod), truncate for
// O_TRUNC and ftruncate (twice per setattr), open/close per stream, read(fd, HEAP8, ...) and write(fd,
// <wasm memory ArrayBuffer!>, offset, length, position): `write` receives the raw ArrayBuffer despite its type.
// Errors must carry a numeric errno in `code` (ERRNO_CODES); EMFS turns them into FS.ErrnoError.
import { BaseFilesystem, ERRNO_CODES } from '@electric-sql/pglite/basefs';
import type { FsStats } from '@electric-sql/pglite/basefs';
import type { FileEntry, FileOp, PageRef, WriteBatch } from '../../storage-node/api/types.ts';
import { PAGE_SIZE } from '../../storage-node/api/types.ts';

/** Most pages the start phase records for the prefetch hint (8 MiB, what a start can fetch in bulk in a few ms): a big scan among the first queries is not worth a prefetch. */
const MAX_START_PAGES = 1024;

/** How the filesystem reaches the storage node; both calls block the calling thread. */
export interface SyncBackend {
  /** Pages of files as they were at `lsn`, in the order asked (each PAGE_SIZE bytes). */
  readPagesSync(refs: PageRef[], lsn: number): Uint8Array[];
  /** Ships a batch and returns the new LSN once the storage node has acknowledged it. */
  writeBatchSync(batch: WriteBatch): number;
}

/** The state a filesystem starts from: the listing at `lsn` and any pages already fetched (prefetch). */
export interface FsSnapshot {
  lsn: number;
  files: FileEntry[];
  pages?: { refs: PageRef[]; data: Uint8Array };
  /**
   * Settings known only once the timeline is (a pooled, pre-started filesystem is created before that);
   * they replace the constructor's.
   */
  settings?: Partial<Pick<StorageFsOptions, 'readOnly' | 'cacheBytes' | 'maxUnshippedBytes'>>;
}

export interface StorageFsOptions {
  backend: SyncBackend;
  /** Read-only: changes stay in memory and are never shipped (Postgres writes during start-up and recovery). */
  readOnly?: boolean;
  /** Bound of the clean-page cache in bytes (default 64 MiB). Pages with unshipped changes are not counted. */
  cacheBytes?: number;
  /** A read-write filesystem ships a batch in the middle of a statement when unshipped pages exceed this. */
  maxUnshippedBytes?: number;
  /** Files up to this size are fetched whole on their first miss (default 128 KiB). */
  smallFileBytes?: number;
  /** Largest sequential read-ahead, in pages (default 32). */
  maxReadaheadPages?: number;
  /**
   * Where the snapshot comes from; awaited in initialSyncFs(), which PGlite calls after the wasm module is
   * instantiated and its runtime set up, so a filesystem can be handed to PGlite before its timeline is known.
   */
  snapshot: FsSnapshot | Promise<FsSnapshot>;
  debug?: boolean;
}

export interface StorageFsStats {
  /** LSN this filesystem's contents correspond to (after the last acknowledged batch). */
  lsn: number;
  cacheHits: number;
  cacheMisses: number;
  /** Pages fetched synchronously (misses and read-ahead); prefetched pages are counted in prefetchedPages. */
  pagesFetched: number;
  fetchRequests: number;
  prefetchedPages: number;
  evictions: number;
  cachedPages: number;
  /** Pages holding changes not yet acknowledged by the storage node. */
  pinnedPages: number;
  batchesShipped: number;
  opsShipped: number;
  bytesShipped: number;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFMT = 0o170000;
const DEFAULT_DIR_MODE = S_IFDIR | 0o700;
const DEFAULT_FILE_MODE = S_IFREG | 0o600;
const EIO = 29;

const enum_CLEAN = 0;
const enum_DIRTY = 1;
const enum_PENDING = 2;
type PageState = typeof enum_CLEAN | typeof enum_DIRTY | typeof enum_PENDING;

interface Inode {
  id: number;
  /** Current local path, or null once unlinked (it may still be open). */
  path: string | null;
  /** Path of this file at the read LSN, or null if it does not exist there (created since). */
  remotePath: string | null;
  size: number;
  /** Bytes [0, baseSize) not in the cache come from remotePath at the read LSN; bytes past it are zeros. */
  baseSize: number;
  mode: number;
  mtime: number;
  pages: Map<number, PageEntry>;
  dirty: Set<number>;
  /** Sequential read detection: the page after the last miss, and the current read-ahead window. */
  nextSeqPage: number;
  window: number;
}

interface PageEntry {
  inode: Inode;
  page: number;
  data: Uint8Array;
  state: PageState;
  /** Dirty byte range within the page (meaningful while DIRTY). */
  lo: number;
  hi: number;
  /** Read during the start phase (for the prefetch hint). */
  startRead: boolean;
}

interface DirNode {
  mode: number;
  mtime: number;
  children: Set<string>;
}

/** An fs error as EMFS expects it: `code` is the errno number. */
export class FsError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = 'FsError';
    this.code = code;
  }
}

function norm(path: string): string {
  if (path === '' || path === '/') return '';
  let p = path;
  if (p.charCodeAt(0) === 47) p = p.replace(/^\/+/, '');
  if (p.endsWith('/') || p.includes('//') || p.includes('/./') || p.startsWith('./')) {
    p = p.split('/').filter((s) => s !== '' && s !== '.').join('/');
  }
  return p;
}

function cachePagesOf(bytes: number | undefined): number {
  return Math.max(64, Math.floor((bytes ?? 64 * 1024 * 1024) / PAGE_SIZE));
}

function unshippedPagesOf(bytes: number | undefined): number {
  return Math.max(64, Math.floor((bytes ?? 32 * 1024 * 1024) / PAGE_SIZE));
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export class StorageFS extends BaseFilesystem {
  private ro: boolean;
  private readonly backend: SyncBackend;
  private readonly snapshotSource: FsSnapshot | Promise<FsSnapshot>;
  private cachePages: number;
  private maxUnshippedPages: number;
  private readonly smallFileBytes: number;
  private readonly maxReadahead: number;

  private lsn = 0;
  private opened = false;
  private readonly dirs = new Map<string, DirNode>();
  private readonly files = new Map<string, Inode>();
  private readonly fds = new Map<number, Inode>();
  private nextFd = 1;
  private nextIno = 1;
  /** Clean pages in least-recently-used order (Set iteration order = insertion order). */
  private readonly lru = new Set<PageEntry>();
  private readonly pending: PageEntry[] = [];
  private readonly dirtyInodes = new Set<Inode>();
  private readonly touchedInodes = new Set<Inode>();
  private ops: FileOp[] = [];
  private pinned = 0;
  private fenced: Error | null = null;
  private startPhase = true;
  private readonly startMisses: PageRef[] = [];

  private readonly counters = {
    cacheHits: 0, cacheMisses: 0, pagesFetched: 0, fetchRequests: 0, prefetchedPages: 0, evictions: 0,
    batchesShipped: 0, opsShipped: 0, bytesShipped: 0,
  };

  constructor(opts: StorageFsOptions) {
    super('', { debug: opts.debug ?? false });
    this.backend = opts.backend;
    this.ro = opts.readOnly ?? false;
    this.snapshotSource = opts.snapshot;
    this.cachePages = cachePagesOf(opts.cacheBytes);
    this.maxUnshippedPages = unshippedPagesOf(opts.maxUnshippedBytes);
    this.smallFileBytes = opts.smallFileBytes ?? 128 * 1024;
    this.maxReadahead = Math.max(1, opts.maxReadaheadPages ?? 32);
    this.dirs.set('', { mode: DEFAULT_DIR_MODE, mtime: Date.now(), children: new Set() });
  }

  get readOnly(): boolean {
    return this.ro;
  }

  // PGlite touches the data directory only after this resolves (it instantiates the wasm and sets up the runtime
  // first), so waiting for the snapshot here is what lets a compute be pre-started before its timeline is known.
  override async initialSyncFs(): Promise<void> {
    await this.loadSnapshot();
  }

  /** Loads the snapshot (PGlite's initialSyncFs() does it; call it yourself to use the filesystem without PGlite). */
  async loadSnapshot(): Promise<void> {
    if (this.opened) return;
    this.opened = true;
    this.load(await this.snapshotSource);
  }

  /** Durability is owned by flush(), called by the compute after each request: PGlite's own sync is a no-op. */
  override async syncToFs(_relaxedDurability?: boolean): Promise<void> {}

  override async closeFs(): Promise<void> {}

  // ---- state ------------------------------------------------------------------------------------------------

  private load(snap: FsSnapshot): void {
    const set = snap.settings;
    if (set?.readOnly !== undefined) this.ro = set.readOnly;
    if (set?.cacheBytes !== undefined) this.cachePages = cachePagesOf(set.cacheBytes);
    if (set?.maxUnshippedBytes !== undefined) this.maxUnshippedPages = unshippedPagesOf(set.maxUnshippedBytes);
    this.lsn = snap.lsn;
    const now = Date.now();
    const entries = [...snap.files].sort((a, b) => a.path.length - b.path.length);
    for (const e of entries) {
      const path = norm(e.path);
      if (path === '') continue;
      this.ensureDirChain(parentOf(path), now);
      if (e.type === 'dir') {
        if (!this.dirs.has(path)) this.dirs.set(path, { mode: DEFAULT_DIR_MODE, mtime: now, children: new Set() });
      } else {
        this.files.set(path, this.newInode(path, path, e.size, e.size));
      }
      this.dirs.get(parentOf(path))!.children.add(baseName(path));
    }
    if (snap.pages) {
      const { refs, data } = snap.pages;
      for (let i = 0; i < refs.length; i++) {
        const inode = this.files.get(norm(refs[i].path));
        if (!inode || inode.pages.has(refs[i].page)) continue;
        this.install(inode, refs[i].page, data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
        this.counters.prefetchedPages++;
      }
      this.evict();
    }
  }

  private ensureDirChain(path: string, now: number): void {
    if (this.dirs.has(path)) return;
    this.ensureDirChain(parentOf(path), now);
    this.dirs.set(path, { mode: DEFAULT_DIR_MODE, mtime: now, children: new Set() });
    this.dirs.get(parentOf(path))!.children.add(baseName(path));
  }

  private newInode(path: string, remotePath: string | null, size: number, baseSize: number): Inode {
    return {
      id: this.nextIno++, path, remotePath, size, baseSize, mode: DEFAULT_FILE_MODE, mtime: Date.now(),
      pages: new Map(), dirty: new Set(), nextSeqPage: -1, window: 1,
    };
  }

  private install(inode: Inode, page: number, bytes: Uint8Array): PageEntry {
    const data = new Uint8Array(PAGE_SIZE);
    data.set(bytes.subarray(0, PAGE_SIZE));
    const start = page * PAGE_SIZE;
    if (inode.baseSize < start + PAGE_SIZE) data.fill(0, Math.max(0, inode.baseSize - start));
    const entry: PageEntry = { inode, page, data, state: enum_CLEAN, lo: 0, hi: 0, startRead: false };
    inode.pages.set(page, entry);
    this.lru.add(entry);
    return entry;
  }

  private dropEntry(entry: PageEntry): void {
    entry.inode.pages.delete(entry.page);
    if (entry.state === enum_CLEAN) this.lru.delete(entry);
    else {
      this.pinned--;
      if (entry.state === enum_DIRTY) entry.inode.dirty.delete(entry.page);
      // a PENDING entry stays in `pending` until the flush, which skips it: it is no longer PENDING
      entry.state = enum_CLEAN;
    }
  }

  private evict(): void {
    while (this.lru.size > this.cachePages) {
      const victim = this.lru.values().next().value as PageEntry;
      this.lru.delete(victim);
      victim.inode.pages.delete(victim.page);
      this.counters.evictions++;
    }
  }

  private touch(entry: PageEntry): void {
    if (entry.state === enum_CLEAN) {
      this.lru.delete(entry);
      this.lru.add(entry);
    }
    if (this.startPhase) entry.startRead = true;
  }

  private markDirty(entry: PageEntry, lo: number, hi: number): void {
    if (entry.state === enum_CLEAN) {
      this.lru.delete(entry);
      this.pinned++;
    }
    if (entry.state !== enum_DIRTY) {
      entry.state = enum_DIRTY;
      entry.lo = lo;
      entry.hi = hi;
      entry.inode.dirty.add(entry.page);
      this.dirtyInodes.add(entry.inode);
    } else {
      if (lo < entry.lo) entry.lo = lo;
      if (hi > entry.hi) entry.hi = hi;
    }
  }

  // ---- fetching ---------------------------------------------------------------------------------------------

  /** Makes pages [first, last] of the inode resident where they come from the storage node, in one request. */
  private fetchRange(inode: Inode, first: number, last: number): void {
    const basePages = Math.ceil(inode.baseSize / PAGE_SIZE);
    let from = first;
    let to = Math.min(last, basePages - 1);
    if (to < from) return;
    // whole small files on their first miss; sequential scans grow a read-ahead window
    if (inode.size <= this.smallFileBytes) {
      from = 0;
      to = basePages - 1;
    } else if (from === inode.nextSeqPage) {
      inode.window = Math.min(inode.window * 2, this.maxReadahead);
      to = Math.min(basePages - 1, Math.max(to, from + inode.window - 1));
    } else {
      inode.window = 1;
    }
    inode.nextSeqPage = to + 1;
    const want: number[] = [];
    for (let p = from; p <= to; p++) if (!inode.pages.has(p)) want.push(p);
    if (want.length === 0) return;
    if (inode.remotePath === null) throw new FsError(EIO, `internal: no remote path for inode ${inode.id}`);
    const refs = want.map((page) => ({ path: inode.remotePath!, page }));
    let pages: Uint8Array[];
    try {
      pages = this.backend.readPagesSync(refs, this.lsn);
    } catch (e) {
      if (this.debug) console.error('storage-fs: page read failed', e);
      throw new FsError(EIO, `reading ${inode.remotePath}: ${(e as Error).message}`);
    }
    this.counters.fetchRequests++;
    this.counters.pagesFetched += refs.length;
    for (let i = 0; i < want.length; i++) {
      this.install(inode, want[i], pages[i]);
      if (this.startPhase && this.startMisses.length < MAX_START_PAGES) this.startMisses.push(refs[i]);
    }
    // no eviction here: the caller copies out of these pages first, then calls evict()
  }

  /** The page's entry, fetching it (with its neighbours as the read-ahead decides) if it is not resident. */
  private pageFor(inode: Inode, page: number, lastWanted: number): PageEntry | null {
    let entry = inode.pages.get(page);
    if (entry) {
      this.counters.cacheHits++;
      this.touch(entry);
      return entry;
    }
    if (page * PAGE_SIZE >= inode.baseSize) return null; // zeros: never written since the read LSN
    this.counters.cacheMisses++;
    this.fetchRange(inode, page, lastWanted);
    entry = inode.pages.get(page)!;
    this.touch(entry);
    return entry;
  }

  // ---- BaseFilesystem ---------------------------------------------------------------------------------------

  private fileAt(path: string): Inode {
    const inode = this.files.get(path);
    if (inode) return inode;
    if (this.dirs.has(path)) throw new FsError(ERRNO_CODES.EISDIR, `${path} is a directory`);
    throw new FsError(ERRNO_CODES.ENOENT, `no such file: ${path}`);
  }

  private fdInode(fd: number): Inode {
    const inode = this.fds.get(fd);
    if (!inode) throw new FsError(ERRNO_CODES.EBADF, `bad file descriptor ${fd}`);
    return inode;
  }

  private requireParent(path: string): DirNode {
    const parent = this.dirs.get(parentOf(path));
    if (parent) return parent;
    if (this.files.has(parentOf(path))) throw new FsError(ERRNO_CODES.ENOTDIR, `${parentOf(path)} is not a directory`);
    throw new FsError(ERRNO_CODES.ENOENT, `no such directory: ${parentOf(path)}`);
  }

  private checkWritable(): void {
    if (this.fenced) throw new FsError(EIO, `filesystem is fenced: ${this.fenced.message}`);
  }

  private stats(mode: number, size: number, mtime: number): FsStats {
    return {
      dev: 0, ino: 0, mode, nlink: 1, uid: 0, gid: 0, rdev: 0, size, blksize: 4096,
      blocks: Math.ceil(size / 512), atime: mtime, mtime, ctime: mtime,
    };
  }

  lstat(path: string): FsStats {
    const p = norm(path);
    const inode = this.files.get(p);
    if (inode) return this.stats(inode.mode, inode.size, inode.mtime);
    const dir = this.dirs.get(p);
    if (dir) return this.stats(dir.mode, 0, dir.mtime);
    throw new FsError(ERRNO_CODES.ENOENT, `no such file or directory: ${p}`);
  }

  fstat(fd: number): FsStats {
    const inode = this.fdInode(fd);
    return this.stats(inode.mode, inode.size, inode.mtime);
  }

  chmod(path: string, mode: number): void {
    const p = norm(path);
    const inode = this.files.get(p);
    if (inode) {
      inode.mode = S_IFREG | (mode & 0o7777);
      return;
    }
    const dir = this.dirs.get(p);
    if (!dir) throw new FsError(ERRNO_CODES.ENOENT, `no such file or directory: ${p}`);
    dir.mode = S_IFDIR | (mode & 0o7777);
  }

  utimes(path: string, _atime: number, mtime: number): void {
    const p = norm(path);
    const inode = this.files.get(p);
    if (inode) {
      inode.mtime = mtime;
      return;
    }
    const dir = this.dirs.get(p);
    if (!dir) throw new FsError(ERRNO_CODES.ENOENT, `no such file or directory: ${p}`);
    dir.mtime = mtime;
  }

  readdir(path: string): string[] {
    const p = norm(path);
    const dir = this.dirs.get(p);
    if (!dir) {
      if (this.files.has(p)) throw new FsError(ERRNO_CODES.ENOTDIR, `${p} is not a directory`);
      throw new FsError(ERRNO_CODES.ENOENT, `no such directory: ${p}`);
    }
    return [...dir.children];
  }

  mkdir(path: string, options?: { recursive?: boolean; mode?: number }): void {
    this.checkWritable();
    const p = norm(path);
    if (this.dirs.has(p)) {
      if (options?.recursive) return;
      throw new FsError(ERRNO_CODES.EEXIST, `${p} exists`);
    }
    if (this.files.has(p)) throw new FsError(ERRNO_CODES.EEXIST, `${p} exists`);
    if (!this.dirs.has(parentOf(p)) && options?.recursive) this.mkdir(parentOf(p), options);
    const parent = this.requireParent(p);
    this.dirs.set(p, { mode: S_IFDIR | ((options?.mode ?? 0o700) & 0o7777), mtime: Date.now(), children: new Set() });
    parent.children.add(baseName(p));
    this.record({ op: 'mkdir', path: p });
  }

  rmdir(path: string): void {
    this.checkWritable();
    const p = norm(path);
    const dir = this.dirs.get(p);
    if (!dir) {
      if (this.files.has(p)) throw new FsError(ERRNO_CODES.ENOTDIR, `${p} is not a directory`);
      throw new FsError(ERRNO_CODES.ENOENT, `no such directory: ${p}`);
    }
    if (p === '') throw new FsError(ERRNO_CODES.EINVAL, 'cannot remove the data directory');
    if (dir.children.size > 0) throw new FsError(ERRNO_CODES.ENOTEMPTY, `${p} is not empty`);
    this.dirs.delete(p);
    this.dirs.get(parentOf(p))!.children.delete(baseName(p));
    this.record({ op: 'rmdir', path: p });
  }

  open(path: string, _flags?: string, _mode?: number): number {
    const inode = this.fileAt(norm(path));
    const fd = this.nextFd++;
    this.fds.set(fd, inode);
    return fd;
  }

  close(fd: number): void {
    this.fds.delete(fd);
  }

  writeFile(path: string, data: string | Uint8Array, options?: { encoding?: string; mode?: number; flag?: string }): void {
    this.checkWritable();
    const p = norm(path);
    let inode = this.files.get(p);
    if (!inode) {
      if (this.dirs.has(p)) throw new FsError(ERRNO_CODES.EISDIR, `${p} is a directory`);
      const parent = this.requireParent(p);
      inode = this.newInode(p, null, 0, 0);
      if (options?.mode !== undefined) inode.mode = S_IFREG | (options.mode & 0o7777);
      this.files.set(p, inode);
      parent.children.add(baseName(p));
      this.touchedInodes.add(inode);
      this.record({ op: 'create', path: p });
    } else if (inode.size > 0) {
      this.truncate(p, 0);
    }
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    if (bytes.length > 0) this.writeBytes(inode, bytes, 0);
  }

  read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number {
    const inode = this.fdInode(fd);
    const end = Math.min(position + length, inode.size);
    if (end <= position) return 0;
    const out = new Uint8Array(buffer.buffer, buffer.byteOffset + offset, end - position);
    const lastPage = Math.floor((end - 1) / PAGE_SIZE);
    let pos = position;
    while (pos < end) {
      const page = Math.floor(pos / PAGE_SIZE);
      const inPage = pos - page * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - inPage, end - pos);
      const entry = this.pageFor(inode, page, lastPage);
      if (entry) out.set(entry.data.subarray(inPage, inPage + n), pos - position);
      else out.fill(0, pos - position, pos - position + n);
      pos += n;
    }
    this.evict();
    return end - position;
  }

  write(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number {
    this.checkWritable();
    const inode = this.fdInode(fd);
    // EMFS passes the wasm memory's ArrayBuffer here (stream_ops.write gives `buffer.buffer`); msync a view.
    const src = buffer instanceof Uint8Array
      ? buffer.subarray(offset, offset + length)
      : new Uint8Array(buffer as ArrayBufferLike, offset, length);
    this.writeBytes(inode, src, position);
    return length;
  }

  private writeBytes(inode: Inode, src: Uint8Array, position: number): void {
    let pos = 0;
    while (pos < src.length) {
      const abs = position + pos;
      const page = Math.floor(abs / PAGE_SIZE);
      const inPage = abs - page * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - inPage, src.length - pos);
      let entry = inode.pages.get(page);
      // whether entry.data holds what the storage node has for the page (at the read LSN) outside its dirty range
      let known = entry !== undefined;
      if (!entry) {
        if (page * PAGE_SIZE < inode.baseSize && n < PAGE_SIZE) {
          this.counters.cacheMisses++;
          this.fetchRange(inode, page, page); // read-modify-write of a partly written page
          entry = inode.pages.get(page)!;
          known = true;
        } else {
          entry = { inode, page, data: new Uint8Array(PAGE_SIZE), state: enum_CLEAN, lo: 0, hi: 0, startRead: false };
          inode.pages.set(page, entry);
          this.lru.add(entry);
        }
      }
      let lo = inPage;
      let hi = inPage + n;
      // Postgres rewrites whole pages (the WAL page a commit appends to, a heap page with one new tuple): inside
      // what the storage node already has at the read LSN, only the bytes that differ need shipping. Past
      // baseSize every byte is shipped (the write is what extends the remote file).
      if (known && page * PAGE_SIZE + hi <= inode.baseSize) {
        const d = entry.data;
        while (lo < hi && d[lo] === src[pos + lo - inPage]) lo++;
        while (hi > lo && d[hi - 1] === src[pos + hi - 1 - inPage]) hi--;
      }
      if (lo < hi) {
        entry.data.set(src.subarray(pos + lo - inPage, pos + hi - inPage), lo);
        this.markDirty(entry, lo, hi);
      }
      pos += n;
    }
    if (position + src.length > inode.size) inode.size = position + src.length;
    inode.mtime = Date.now();
    this.touchedInodes.add(inode);
    this.evict();
    this.afterChange();
  }

  truncate(path: string, len: number = 0): void {
    this.checkWritable();
    const p = norm(path);
    const inode = this.fileAt(p);
    if (len < inode.size) {
      const keepPages = Math.ceil(len / PAGE_SIZE);
      for (const entry of [...inode.pages.values()]) if (entry.page >= keepPages) this.dropEntry(entry);
      const tail = len % PAGE_SIZE;
      if (tail !== 0) {
        const entry = inode.pages.get(keepPages - 1);
        if (entry) {
          entry.data.fill(0, tail);
          if (entry.state === enum_DIRTY) {
            entry.hi = Math.min(entry.hi, tail);
            if (entry.lo > entry.hi) entry.lo = entry.hi;
          }
        }
      }
      if (len < inode.baseSize) inode.baseSize = len;
    }
    if (len === inode.size && this.ops.length > 0) {
      const last = this.ops[this.ops.length - 1];
      if (last.op === 'truncate' && last.path === p) return; // EMFS setattr truncates twice
    }
    inode.size = len;
    inode.mtime = Date.now();
    this.touchedInodes.add(inode);
    this.record({ op: 'truncate', path: p, size: len });
  }

  unlink(path: string): void {
    this.checkWritable();
    const p = norm(path);
    const inode = this.fileAt(p);
    this.files.delete(p);
    this.dirs.get(parentOf(p))!.children.delete(baseName(p));
    this.forget(inode);
    this.record({ op: 'unlink', path: p });
  }

  /** An inode leaves the namespace: its unshipped writes are moot; resident pages stay for open fds. */
  private forget(inode: Inode): void {
    for (const page of inode.dirty) {
      const entry = inode.pages.get(page)!;
      entry.state = enum_CLEAN;
      this.pinned--;
      this.lru.add(entry);
    }
    inode.dirty.clear();
    this.dirtyInodes.delete(inode);
    this.touchedInodes.delete(inode);
    inode.path = null;
    if (![...this.fds.values()].includes(inode)) {
      for (const entry of [...inode.pages.values()]) this.dropEntry(entry);
    }
  }

  rename(oldPath: string, newPath: string): void {
    this.checkWritable();
    const from = norm(oldPath);
    const to = norm(newPath);
    if (from === to) return;
    const srcFile = this.files.get(from);
    const srcDir = srcFile ? undefined : this.dirs.get(from);
    if (!srcFile && !srcDir) throw new FsError(ERRNO_CODES.ENOENT, `no such file or directory: ${from}`);
    if (to.startsWith(from + '/')) throw new FsError(ERRNO_CODES.EINVAL, `cannot move ${from} into itself`);
    const newParent = this.requireParent(to);
    // Unshipped writes belong to inodes, not paths: they are shipped under the path the inode has at flush.
    if (srcFile) {
      if (this.dirs.has(to)) throw new FsError(ERRNO_CODES.EISDIR, `${to} is a directory`);
      const replaced = this.files.get(to);
      if (replaced) this.forget(replaced);
      this.files.delete(from);
      this.files.set(to, srcFile);
      srcFile.path = to;
      this.touchedInodes.add(srcFile);
    } else {
      const target = this.dirs.get(to);
      if (this.files.has(to)) throw new FsError(ERRNO_CODES.ENOTDIR, `${to} is not a directory`);
      if (target && target.children.size > 0) throw new FsError(ERRNO_CODES.ENOTEMPTY, `${to} is not empty`);
      const prefix = from + '/';
      const movedFiles = [...this.files.entries()].filter(([k]) => k.startsWith(prefix));
      const movedDirs = [...this.dirs.entries()].filter(([k]) => k.startsWith(prefix));
      for (const [k, inode] of movedFiles) {
        this.files.delete(k);
        const np = to + k.slice(from.length);
        this.files.set(np, inode);
        inode.path = np;
        this.touchedInodes.add(inode);
      }
      for (const [k, d] of movedDirs) {
        this.dirs.delete(k);
        this.dirs.set(to + k.slice(from.length), d);
      }
      this.dirs.delete(from);
      this.dirs.set(to, srcDir!);
    }
    this.dirs.get(parentOf(from))!.children.delete(baseName(from));
    newParent.children.add(baseName(to));
    this.record({ op: 'rename', from, to });
  }

  // ---- shipping changes -------------------------------------------------------------------------------------

  private record(op: FileOp): void {
    if (!this.readOnly) this.ops.push(op);
  }

  /** Turns the inode's dirty pages into write ops (at its current path), keeping them pinned until the ack. */
  // Called at flush only: a truncate clips dirty ranges instead, an unlink drops them, a rename moves them.
  private materialize(inode: Inode): void {
    if (inode.dirty.size === 0) return;
    const pages = [...inode.dirty].sort((a, b) => a - b);
    inode.dirty.clear();
    this.dirtyInodes.delete(inode);
    if (this.readOnly || inode.path === null) {
      for (const p of pages) {
        const e = inode.pages.get(p)!;
        e.state = enum_PENDING;
        this.pending.push(e);
      }
      return;
    }
    let run: PageEntry[] = [];
    const emit = (): void => {
      if (run.length === 0) return;
      const first = run[0];
      const last = run[run.length - 1];
      const start = first.page * PAGE_SIZE + first.lo;
      const end = last.page * PAGE_SIZE + last.hi;
      const data = new Uint8Array(end - start);
      for (const e of run) {
        const lo = e === first ? e.lo : 0;
        const hi = e === last ? e.hi : PAGE_SIZE;
        data.set(e.data.subarray(lo, hi), e.page * PAGE_SIZE + lo - start);
      }
      this.ops.push({ op: 'write', path: inode.path!, offset: start, data });
      run = [];
    };
    for (const p of pages) {
      const e = inode.pages.get(p)!;
      e.state = enum_PENDING;
      this.pending.push(e);
      if (e.hi <= e.lo) continue;
      const prev = run[run.length - 1];
      const contiguous = prev && prev.page === p - 1 && prev.hi === PAGE_SIZE && e.lo === 0;
      if (!contiguous) emit();
      run.push(e);
    }
    emit();
  }

  private afterChange(): void {
    if (!this.readOnly && this.pinned > this.maxUnshippedPages) this.flush();
  }

  /** True when there are changes not yet acknowledged by the storage node. */
  get hasUnshippedChanges(): boolean {
    return !this.readOnly && (this.ops.length > 0 || this.dirtyInodes.size > 0);
  }

  /**
   * Ships every change since the last flush as one write batch and waits for the acknowledgement. A failed
   * batch fences the filesystem (another writer, or the storage node refused it): nothing more is shipped.
   * Returns the LSN after the batch (unchanged when there was nothing to ship; always for read-only).
   */
  flush(): number {
    if (this.readOnly) return this.lsn;
    if (this.fenced) throw new FsError(EIO, `filesystem is fenced: ${this.fenced.message}`);
    for (const inode of [...this.dirtyInodes]) this.materialize(inode);
    if (this.ops.length === 0) {
      this.releasePending();
      return this.lsn;
    }
    const batch: WriteBatch = { expectedLsn: this.lsn, ops: this.ops };
    // counted before shipping: the bridge may transfer (detach) the ops' buffers
    let bytes = 0;
    for (const op of this.ops) if (op.op === 'write') bytes += op.data.byteLength;
    let lsn: number;
    try {
      lsn = this.backend.writeBatchSync(batch);
    } catch (e) {
      this.fenced = e as Error;
      throw new FsError(EIO, `write batch failed: ${(e as Error).message}`);
    }
    this.counters.batchesShipped++;
    this.counters.opsShipped += this.ops.length;
    this.counters.bytesShipped += bytes;
    this.ops = [];
    this.lsn = lsn;
    for (const inode of this.touchedInodes) {
      if (inode.path === null) continue;
      inode.remotePath = inode.path;
      inode.baseSize = inode.size;
    }
    this.touchedInodes.clear();
    this.releasePending();
    return lsn;
  }

  private releasePending(): void {
    for (const e of this.pending) {
      if (e.state !== enum_PENDING) continue;
      e.state = enum_CLEAN;
      this.pinned--;
      if (e.inode.pages.get(e.page) === e) this.lru.add(e);
    }
    this.pending.length = 0;
    this.evict();
  }

  // ---- introspection ----------------------------------------------------------------------------------------

  /** Ends the start phase; returns the pages read during it (prefetched and fetched) as of the read LSN. */
  endStartPhase(): PageRef[] {
    this.startPhase = false;
    const out: PageRef[] = [];
    for (const inode of this.files.values()) {
      for (const e of inode.pages.values()) {
        if (e.startRead && inode.remotePath !== null && e.page * PAGE_SIZE < inode.baseSize) {
          out.push({ path: inode.remotePath, page: e.page });
        }
      }
    }
    for (const r of this.startMisses) out.push(r);
    const seen = new Set<string>();
    return out.filter((r) => {
      const k = r.path + '\0' + r.page;
      if (seen.has(k) || seen.size >= MAX_START_PAGES) return false;
      seen.add(k);
      return true;
    });
  }

  get currentLsn(): number {
    return this.lsn;
  }

  get fencedError(): Error | null {
    return this.fenced;
  }

  getStats(): StorageFsStats {
    return { lsn: this.lsn, ...this.counters, cachedPages: this.lru.size + this.pinned, pinnedPages: this.pinned };
  }

  /** Whether the path exists (for callers outside PGlite). */
  exists(path: string): boolean {
    const p = norm(path);
    return this.files.has(p) || this.dirs.has(p);
  }

  /** File type bits of a mode, exported for tests. */
  static isDirMode(mode: number): boolean {
    return (mode & S_IFMT) === S_IFDIR;
  }
}
