// The default backend: objects are files under a root directory, one file per key (`a/b/c` → ROOT/a/b/c).
//
// Durability: a put writes a temporary file, fsyncs it, then renames (or links) it into place and fsyncs the
// directory, so a reader sees the old object or the new one, never a torn one, and an acknowledged put survives a
// crash. Files are never modified in place, which lets an open file descriptor serve as a consistent snapshot.
//
// Concurrency (between async callers in one process and between processes on the same host):
// - `ifNoneMatch: '*'` is an atomic create: `link(temp, final)` fails with EEXIST when the key exists.
// - every other mutation (unconditional put, `ifMatch` put, delete) holds a per-key lock file, created with
//   `open(..., 'wx')`, around compare-and-rename. A lock whose holder is a dead process on this host, or that is older
//   than `staleLockMs`, is broken. Inside one process a per-key queue keeps callers from polling each other's lock.
//
// ETag: `"<sha256 hex of the content>"`. Computed when the object is written, otherwise by reading the file, and
// remembered per (device, inode, size, mtime): files are only ever replaced, never rewritten.
//
// Internal files live under ROOT/.lakebase-store/ (temporary files and locks); keys may not start with that segment.
// A filesystem cannot hold both `a` and `a/b` as objects; such a put fails with an error (not a precondition).

import { measured } from './measure.ts';
import type { ObjectStoreOp } from './measure.ts';
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { link, mkdir, open, readdir, readFile, rename, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import type { BigIntStats, Dirent } from 'node:fs';
import {
  PreconditionFailedError,
  type ByteRange,
  type GetResult,
  type ObjectInfo,
  type ObjectStore,
  type ObjectStoreMetrics,
  type PutOptions,
} from './object-store.ts';
import { pidAlive } from '../../lib/pid-alive.ts';

const INTERNAL_DIR = '.lakebase-store';
const ETAG_CACHE_LIMIT = 100_000;
const HASH_CHUNK = 1 << 20;

export interface LocalFolderStoreOptions {
  metrics?: ObjectStoreMetrics;
  /** A lock file older than this is considered abandoned and broken (default 10 s). */
  staleLockMs?: number;
  /** Give up waiting for a key's lock after this long (default 30 s). */
  lockTimeoutMs?: number;
  /** Skip fsync (tests only: loses durability, keeps atomicity). Default false. */
  noSync?: boolean;
}

type Op = ObjectStoreOp;

interface ErrnoError extends Error {
  code?: string;
}

function errCode(err: unknown): string | undefined {
  return err instanceof Error ? (err as ErrnoError).code : undefined;
}

function sha256Etag(hex: string): string {
  return `"${hex}"`;
}

/** Compares ETags ignoring quotes and a weak prefix, as HTTP and S3 clients pass them either way. */
export function normalizeEtag(etag: string): string {
  let e = etag.trim();
  if (e.startsWith('W/')) e = e.slice(2);
  if (e.length >= 2 && e.startsWith('"') && e.endsWith('"')) e = e.slice(1, -1);
  return e;
}

function statKey(s: BigIntStats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}`;
}

function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}


const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class LocalFolderStore implements ObjectStore {
  readonly description: string;
  readonly uri: string;
  readonly root: string;
  readonly #metrics: ObjectStoreMetrics | undefined;
  readonly #staleLockMs: number;
  readonly #lockTimeoutMs: number;
  readonly #sync: boolean;
  readonly #tmpDir: string;
  readonly #lockDir: string;
  readonly #etags = new Map<string, string>();
  readonly #keyQueues = new Map<string, Promise<void>>();
  #ready: Promise<void> | undefined;

  constructor(root: string, options: LocalFolderStoreOptions = {}) {
    this.root = resolve(root);
    this.description = pathToFileURL(this.root).href;
    this.uri = this.description;
    this.#metrics = options.metrics;
    this.#staleLockMs = options.staleLockMs ?? 10_000;
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 30_000;
    this.#sync = !options.noSync;
    this.#tmpDir = join(this.root, INTERNAL_DIR, 'tmp');
    this.#lockDir = join(this.root, INTERNAL_DIR, 'locks');
  }

  // ---- public API ----

  get(key: string, range?: ByteRange): Promise<GetResult | null> {
    return this.#measure('get', async () => {
      const path = this.#pathOf(key);
      if (range !== undefined) validateRange(range);
      const fh = await openForRead(path);
      if (fh === null) return { value: null, bytes: 0 };
      try {
        const st = await fh.stat({ bigint: true });
        if (!st.isFile()) return { value: null, bytes: 0 };
        const size = Number(st.size);
        if (range === undefined) {
          const body = await readAt(fh, 0, size);
          const etag = sha256Etag(createHash('sha256').update(body).digest('hex'));
          this.#remember(st, etag);
          return { value: { body, etag }, bytes: body.length };
        }
        const start = Math.min(range.start, size);
        const end = Math.min(range.end, size);
        const body = await readAt(fh, start, end - start);
        const etag = await this.#etagOfHandle(fh, st);
        return { value: { body, etag }, bytes: body.length };
      } finally {
        await fh.close();
      }
    });
  }

  head(key: string): Promise<ObjectInfo | null> {
    return this.#measure('head', async () => {
      const path = this.#pathOf(key);
      const fh = await openForRead(path);
      if (fh === null) return { value: null, bytes: 0 };
      try {
        const st = await fh.stat({ bigint: true });
        if (!st.isFile()) return { value: null, bytes: 0 };
        return { value: { key, size: Number(st.size), etag: await this.#etagOfHandle(fh, st) }, bytes: 0 };
      } finally {
        await fh.close();
      }
    });
  }

  put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<{ etag: string }> {
    return this.#measure('put', async () => {
      const path = this.#pathOf(key);
      if (options.ifMatch !== undefined && options.ifNoneMatch !== undefined) {
        throw new Error(`put ${key}: ifMatch and ifNoneMatch cannot be combined`);
      }
      if (options.ifNoneMatch !== undefined && options.ifNoneMatch !== '*') {
        throw new Error(`put ${key}: ifNoneMatch supports only '*'`);
      }
      await this.#init();
      const etag = sha256Etag(createHash('sha256').update(body).digest('hex'));
      const tmp = await this.#writeTemp(body, etag);
      try {
        if (options.ifNoneMatch === '*') {
          await this.#intoPlace(path, async () => {
            try {
              await link(tmp, path);
            } catch (err) {
              if (errCode(err) === 'EEXIST') {
                const st = await stat(path).catch(() => null);
                if (st?.isDirectory()) throw bothObjectAndPrefix(path, err);
                throw new PreconditionFailedError(key, 'the object already exists');
              }
              throw err;
            }
          });
        } else {
          await this.#withKeyLock(key, async (stillHeld) => {
            if (options.ifMatch !== undefined) {
              const current = await this.#currentEtag(path);
              if (current === null) throw new PreconditionFailedError(key, 'the object does not exist');
              if (normalizeEtag(current) !== normalizeEtag(options.ifMatch!)) {
                throw new PreconditionFailedError(key, `the object's ETag is ${current}, not ${options.ifMatch}`);
              }
            }
            await stillHeld();
            await this.#intoPlace(path, () => rename(tmp, path));
          });
        }
      } finally {
        // After rename the temp file is gone; after link (or a failure) it must be removed.
        await unlink(tmp).catch(() => {});
      }
      return { value: { etag }, bytes: body.length };
    });
  }

  delete(key: string): Promise<void> {
    return this.#measure('delete', async () => {
      const path = this.#pathOf(key);
      await this.#init();
      let removed = false;
      await this.#withKeyLock(key, async () => {
        try {
          await unlink(path);
          removed = true;
        } catch (err) {
          const code = errCode(err);
          if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'EISDIR') throw err;
        }
        // a concurrent delete of the directory's last other object may have pruned it already: nothing to sync then
        if (removed) await this.#fsyncDir(dirname(path), { mayBeGone: true });
      });
      if (removed) await this.#pruneEmptyDirs(dirname(path));
      return { value: undefined, bytes: 0 };
    });
  }

  list(prefix: string): Promise<ObjectInfo[]> {
    return this.#measure('list', async () => {
      if (prefix.includes('\0')) throw new Error('invalid prefix: contains NUL');
      // Walk only the deepest directory the prefix fully names.
      const slash = prefix.lastIndexOf('/');
      const dirKey = slash >= 0 ? prefix.slice(0, slash + 1) : '';
      const segments = dirKey.split('/').filter((s) => s !== '');
      if (segments.some((s) => s === '.' || s === '..')) return { value: [], bytes: 0 };
      const keys: string[] = [];
      await this.#walk(join(this.root, ...segments), dirKey, prefix, keys);
      keys.sort(compareKeys);
      // A few files at a time: each needs open + fstat (+ a hash the first time this process sees it).
      const infos: (ObjectInfo | null)[] = new Array(keys.length).fill(null);
      let next = 0;
      const worker = async () => {
        while (next < keys.length) {
          const i = next++;
          infos[i] = await this.#headQuiet(keys[i]);
        }
      };
      await Promise.all(Array.from({ length: Math.min(16, keys.length) }, worker));
      return { value: infos.filter((i): i is ObjectInfo => i !== null), bytes: 0 };
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.#keyQueues.values()]);
  }

  // ---- keys and paths ----

  #pathOf(key: string): string {
    validateObjectKey(key);
    const path = join(this.root, ...key.split('/'));
    if (!path.startsWith(this.root + sep)) throw new Error(`invalid object key ${JSON.stringify(key)}: escapes root`);
    return path;
  }

  #init(): Promise<void> {
    this.#ready ??= (async () => {
      await mkdir(this.#tmpDir, { recursive: true });
      await mkdir(this.#lockDir, { recursive: true });
      // Temporary files left by processes that died mid-put (named `<pid>-<random>.tmp`).
      for (const name of await readdir(this.#tmpDir)) {
        const pid = Number(name.split('-')[0]);
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !pidAlive(pid)) {
          await unlink(join(this.#tmpDir, name)).catch(() => {});
        }
      }
    })().catch((err: unknown) => {
      this.#ready = undefined;
      throw err;
    });
    return this.#ready;
  }

  // ---- writing ----

  async #writeTemp(body: Uint8Array, etag: string): Promise<string> {
    const tmp = join(this.#tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}.tmp`);
    const fh = await open(tmp, 'wx', 0o644);
    try {
      let off = 0;
      while (off < body.length) {
        const { bytesWritten } = await fh.write(body, off, body.length - off, off);
        off += bytesWritten;
      }
      if (this.#sync) await fh.sync();
      this.#remember(await fh.stat({ bigint: true }), etag);
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await fh.close();
    return tmp;
  }

  /** Runs `place` (a rename or link into `path`), creating parent directories, then makes it durable. */
  async #intoPlace(path: string, place: () => Promise<void>): Promise<void> {
    const dir = dirname(path);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#ensureDir(dir);
        await place();
        break;
      } catch (err) {
        // A concurrent delete may have pruned the (then empty) parent directory: recreate it and retry.
        if (errCode(err) === 'ENOENT' && attempt < 5) continue;
        const code = errCode(err);
        if (code === 'ENOTDIR' || code === 'EISDIR' || code === 'EEXIST') throw bothObjectAndPrefix(path, err);
        throw err;
      }
    }
    await this.#fsyncDir(dir);
  }

  async #ensureDir(dir: string): Promise<void> {
    const first = await mkdir(dir, { recursive: true });
    if (first === undefined || !this.#sync) return;
    // New directories' entries must reach the disk too: fsync each new directory's parent, deepest last.
    const created: string[] = [];
    for (let d = dir; d.length >= first.length; d = dirname(d)) created.push(d);
    for (const d of created.reverse()) await this.#fsyncDir(dirname(d));
  }

  async #fsyncDir(dir: string, opts: { mayBeGone?: boolean } = {}): Promise<void> {
    if (!this.#sync) return;
    let fh: FileHandle;
    try {
      fh = await open(dir, 'r');
    } catch (err) {
      if (opts.mayBeGone && errCode(err) === 'ENOENT') return;
      throw err;
    }
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  async #pruneEmptyDirs(dir: string): Promise<void> {
    for (let d = dir; d.startsWith(this.root + sep); d = dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        return; // not empty (ENOTEMPTY), already gone, or busy: stop
      }
    }
  }

  // ---- locking ----

  /** Serializes `fn` against other mutations of `key` in this process and in other processes. */
  async #withKeyLock<T>(key: string, fn: (stillHeld: () => Promise<void>) => Promise<T>): Promise<T> {
    const prev = this.#keyQueues.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.#keyQueues.set(key, tail);
    await prev;
    try {
      const lockPath = join(this.#lockDir, `${createHash('sha256').update(key).digest('hex')}.lock`);
      const token = await this.#acquireFileLock(lockPath, key);
      try {
        return await fn(async () => {
          // Paranoia against a lock broken as stale while we held it (e.g. a multi-second disk stall).
          const content = await readFile(lockPath, 'utf8').catch(() => '');
          if (content !== token) throw new Error(`lock for ${key} was taken over while held; write abandoned`);
        });
      } finally {
        await unlink(lockPath).catch(() => {});
      }
    } finally {
      release();
      if (this.#keyQueues.get(key) === tail) this.#keyQueues.delete(key);
    }
  }

  async #acquireFileLock(lockPath: string, key: string): Promise<string> {
    const token = `${process.pid} ${hostname()} ${Date.now()} ${randomBytes(8).toString('hex')}\n`;
    const deadline = Date.now() + this.#lockTimeoutMs;
    let delay = 1;
    for (;;) {
      try {
        const fh = await open(lockPath, 'wx', 0o644);
        try {
          await fh.writeFile(token);
        } finally {
          await fh.close();
        }
        return token;
      } catch (err) {
        if (errCode(err) !== 'EEXIST') throw err;
      }
      await this.#breakIfStale(lockPath);
      if (Date.now() > deadline) throw new Error(`timed out waiting for the lock on ${key} (${lockPath})`);
      await sleep(delay + Math.random() * delay);
      delay = Math.min(delay * 2, 50);
    }
  }

  async #breakIfStale(lockPath: string): Promise<void> {
    let st: BigIntStats;
    let content: string;
    try {
      st = await stat(lockPath, { bigint: true });
      content = await readFile(lockPath, 'utf8');
    } catch {
      return; // released meanwhile
    }
    const [pidText, host] = content.split(' ');
    const pid = Number(pidText);
    const ageMs = Date.now() - Number(st.mtimeMs);
    const holderDead = host === hostname() && Number.isInteger(pid) && pid > 0 && !pidAlive(pid);
    // An empty file is a lock being written right now, unless it is old.
    const stale = (content !== '' && holderDead) || ageMs > this.#staleLockMs;
    if (!stale) return;
    // Move it aside atomically, then make sure what we moved is the lock we judged stale (not a fresh one).
    const aside = `${lockPath}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await rename(lockPath, aside);
    } catch {
      return;
    }
    try {
      const moved = await stat(aside, { bigint: true });
      if (moved.ino !== st.ino || moved.dev !== st.dev) {
        // We took a live lock: put it back (fails harmlessly if yet another lock exists now).
        await link(aside, lockPath).catch(() => {});
      }
    } finally {
      await unlink(aside).catch(() => {});
    }
  }

  // ---- reading and ETags ----

  async #currentEtag(path: string): Promise<string | null> {
    const fh = await openForRead(path);
    if (fh === null) return null;
    try {
      const st = await fh.stat({ bigint: true });
      if (!st.isFile()) return null;
      return await this.#etagOfHandle(fh, st);
    } finally {
      await fh.close();
    }
  }

  async #headQuiet(key: string): Promise<ObjectInfo | null> {
    let path: string;
    try {
      path = this.#pathOf(key);
    } catch {
      return null; // a file no key maps to (e.g. a name with a backslash put there by hand)
    }
    const fh = await openForRead(path);
    if (fh === null) return null;
    try {
      const st = await fh.stat({ bigint: true });
      if (!st.isFile()) return null;
      return { key, size: Number(st.size), etag: await this.#etagOfHandle(fh, st) };
    } finally {
      await fh.close();
    }
  }

  async #etagOfHandle(fh: FileHandle, st: BigIntStats): Promise<string> {
    const cached = this.#etags.get(statKey(st));
    if (cached !== undefined) return cached;
    const hash = createHash('sha256');
    const size = Number(st.size);
    const buf = Buffer.allocUnsafe(Math.min(HASH_CHUNK, Math.max(size, 1)));
    let pos = 0;
    while (pos < size) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    const etag = sha256Etag(hash.digest('hex'));
    this.#remember(st, etag);
    return etag;
  }

  #remember(st: BigIntStats, etag: string): void {
    if (this.#etags.size >= ETAG_CACHE_LIMIT) {
      const oldest = this.#etags.keys().next();
      if (!oldest.done) this.#etags.delete(oldest.value);
    }
    this.#etags.set(statKey(st), etag);
  }

  async #walk(dir: string, dirKey: string, prefix: string, out: string[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw err;
    }
    for (const e of entries) {
      if (dirKey === '' && e.name === INTERNAL_DIR) continue;
      const key = dirKey + e.name;
      if (e.isDirectory()) {
        const sub = key + '/';
        // Descend only where keys can still match the prefix.
        if (sub.startsWith(prefix) || prefix.startsWith(sub)) await this.#walk(join(dir, e.name), sub, prefix, out);
      } else if (e.isFile() && key.startsWith(prefix)) {
        out.push(key);
      }
    }
  }

  #measure<T>(op: Op, fn: () => Promise<{ value: T; bytes: number }>): Promise<T> {
    return measured(this.#metrics, op, fn);
  }
}

/**
 * The keys every backend accepts: non-empty '/'-separated segments, none empty, '.' or '..', no NUL or backslash,
 * not absolute, at most 1024 UTF-8 bytes, and not under the local backend's reserved `.lakebase-store/`.
 * (Keys that S3 would take but a filesystem could not are refused by both, so data stays portable.)
 */
export function validateObjectKey(key: string): void {
  const bad = (why: string): never => {
    throw new Error(`invalid object key ${JSON.stringify(key.length > 80 ? key.slice(0, 80) + '...' : key)}: ${why}`);
  };
  if (typeof key !== 'string' || key.length === 0) bad('empty');
  if (Buffer.byteLength(key, 'utf8') > 1024) bad('longer than 1024 bytes');
  if (key.includes('\0')) bad('contains NUL');
  if (key.includes('\\')) bad('contains a backslash');
  if (key.startsWith('/')) bad('absolute');
  const segments = key.split('/');
  for (const s of segments) {
    if (s === '') bad('empty path segment');
    if (s === '.' || s === '..') bad(`'${s}' segment`);
  }
  if (segments[0] === INTERNAL_DIR) bad('reserved prefix');
}

function bothObjectAndPrefix(path: string, cause: unknown): Error {
  return new Error(`cannot store ${path}: a key is both an object and a prefix of another object's key`, { cause });
}

function validateRange(range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`invalid byte range [${start}, ${end})`);
  }
}

async function openForRead(path: string): Promise<FileHandle | null> {
  try {
    return await open(path, 'r');
  } catch (err) {
    const code = errCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return null;
    throw err;
  }
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let off = 0;
  while (off < length) {
    const { bytesRead } = await fh.read(buf, off, length - off, position + off);
    if (bytesRead === 0) break;
    off += bytesRead;
  }
  return off === length ? buf : buf.subarray(0, off);
}
