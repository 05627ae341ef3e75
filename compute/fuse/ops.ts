// The FUSE operations of a mount, over the tree (tree.ts), the pages (pages.ts) and the shipper (shipper.ts).
// libfuse's threads block until a handler answers, so handlers only touch memory, or wait on a promise (a page
// fetch, a ship) and answer when it settles: nothing here blocks the event loop. Files are found through an fd ->
// node map first, so I/O on open files that were renamed keeps working; files unlinked while open keep working
// through libfuse's hidden names (see `hide`). Permission checks are the kernel's (default_permissions); every
// node is owned by the compute's uid/gid.
import { constants } from 'node:os';
import type Fuse from 'fuse-native';
import type { Logger } from '../../lib/logger.ts';
import type { PageStore } from './pages.ts';
import type { Shipper } from './shipper.ts';
import type { FuseCounters } from './stats.ts';
import { type FsNode, HIDDEN_NAME, type Tree, dataPath } from './tree.ts';

const E = constants.errno;
const ENOENT = -E.ENOENT;
const EIO = -E.EIO;

const STATFS: Fuse.Statfs = { bsize: 4096, frsize: 4096, blocks: 1 << 30, bfree: 1 << 29, bavail: 1 << 29, files: 1 << 24, ffree: 1 << 23, favail: 1 << 23, fsid: 0x1a4eba5e, flag: 0, namemax: 255 };

export interface HandlerDeps {
  tree: Tree;
  pages: PageStore;
  shipper: Shipper;
  counters: FuseCounters;
  log: Logger;
}

export class FuseHandlers {
  private readonly tree: Tree;
  private readonly pages: PageStore;
  private readonly shipper: Shipper;
  private readonly counters: FuseCounters;
  private readonly log: Logger;
  private readonly fds = new Map<number, FsNode>();
  private fdSeq = 1;

  constructor(deps: HandlerDeps) {
    this.tree = deps.tree;
    this.pages = deps.pages;
    this.shipper = deps.shipper;
    this.counters = deps.counters;
    this.log = deps.log;
  }

  /** Nodes held open (some may have left the tree). */
  openNodes(): Iterable<FsNode> {
    return this.fds.values();
  }

  operations(): Fuse.Operations {
    const { meta, data } = this;
    return { ...meta, ...data };
  }

  private count(op: string): void {
    this.counters.op(op);
  }

  private node(path: string, fd?: number): FsNode | null {
    return (fd !== undefined ? this.fds.get(fd) : undefined) ?? this.tree.lookup(path);
  }

  private stat(n: FsNode): Fuse.Stat {
    const size = n.kind === 'symlink' ? Buffer.byteLength(n.target) : n.kind === 'dir' ? 4096 : n.size;
    const nlink = n.kind === 'dir' ? 2 : n.unlinked ? 0 : 1;
    return { mode: n.mode, uid: n.uid, gid: n.gid, size, mtime: n.mtimeMs, atime: n.atimeMs, ctime: n.ctimeMs, nlink, ino: n.ino, blksize: 4096, blocks: Math.ceil(size / 512) };
  }

  private openFd(n: FsNode): number {
    const fd = this.fdSeq++;
    if (this.fdSeq > 0x7fffffff) this.fdSeq = 1;
    this.fds.set(fd, n);
    n.openCount++;
    return fd;
  }

  /** The node left the tree: its pages go once it is closed too. */
  private gone(n: FsNode): void {
    this.shipper.record(null, n);
    this.tree.detach(n);
    this.shipper.leave(n);
    if (n.openCount === 0) this.pages.drop(n);
  }

  private sync(cb: Fuse.Done): void {
    this.counters.fsyncs++;
    this.shipper.flush().then(
      () => cb(0),
      () => cb(EIO),
    );
  }

  private fail(what: string, e: unknown, cb: (r: number) => void): void {
    this.log.error({ err: (e as Error).message }, `${what} failed`);
    cb(EIO);
  }

  /** Lookups, attributes, directories and fds. */
  private readonly meta: Fuse.Operations = {
    statfs: (_path, cb) => {
      this.count('statfs');
      cb(0, STATFS);
    },
    getattr: (path, cb) => {
      this.count('getattr');
      const n = this.tree.lookup(path);
      if (!n) return cb(ENOENT);
      cb(0, this.stat(n));
    },
    fgetattr: (path, fd, cb) => {
      this.count('fgetattr');
      const n = this.node(path, fd);
      if (!n) return cb(ENOENT);
      cb(0, this.stat(n));
    },
    access: (path, _mode, cb) => {
      this.count('access');
      cb(this.tree.lookup(path) ? 0 : ENOENT);
    },
    readdir: (path, cb) => {
      this.count('readdir');
      const n = this.tree.lookup(path);
      if (!n) return cb(ENOENT);
      if (!n.children) return cb(-E.ENOTDIR);
      const names = ['.', '..'];
      for (const [name, c] of n.children) if (!c.hidden) names.push(name);
      cb(0, names);
    },
    // No opendir, releasedir or flush: they had nothing to do, and an operation left out is answered inside libfuse
    // (opendir, releasedir) or never sent again (flush: the kernel stops after the first ENOSYS), instead of a round
    // trip into this event loop on every opendir and every close() (a backend's start opens and closes dozens of
    // relation files). The kernel checks a lookup's ENOENT and a file's ENOTDIR before an opendir.
    fsyncdir: (_path, _datasync, _fd, cb) => {
      this.count('fsyncdir');
      this.sync(cb);
    },
    open: (path, _flags, cb) => {
      this.count('open');
      const n = this.tree.lookup(path);
      if (!n) return cb(ENOENT);
      if (n.kind === 'dir') return cb(-E.EISDIR);
      cb(0, this.openFd(n));
    },
    release: (_path, fd, cb) => {
      this.count('release');
      const n = this.fds.get(fd);
      this.fds.delete(fd);
      if (n && --n.openCount === 0 && n.unlinked) this.pages.drop(n);
      cb(0);
    },
    utimens: (path, atime, mtime, cb) => {
      this.count('utimens');
      const n = this.tree.lookup(path);
      if (!n) return cb(ENOENT);
      n.atimeMs = atime;
      n.mtimeMs = mtime;
      n.ctimeMs = Date.now();
      cb(0);
    },
    chmod: (path, mode, cb) => {
      this.count('chmod');
      const n = this.tree.lookup(path);
      if (!n) return cb(ENOENT);
      n.setMode(mode);
      cb(0);
    },
    chown: (path, uid, gid, cb) => {
      this.count('chown');
      const n = this.tree.lookup(path);
      if (!n) return cb(ENOENT);
      if (uid !== 0xffffffff && uid !== -1) n.uid = uid;
      if (gid !== 0xffffffff && gid !== -1) n.gid = gid;
      n.ctimeMs = Date.now();
      cb(0);
    },
    readlink: (path, cb) => {
      this.count('readlink');
      const n = this.tree.lookup(path);
      if (!n) return cb(ENOENT);
      if (n.kind !== 'symlink') return cb(-E.EINVAL);
      cb(0, n.target);
    },
  };

  /** File contents and the namespace changes that are shipped. */
  private readonly data: Fuse.Operations = {
    read: (path, fd, buf, len, pos, cb) => {
      this.count('read');
      const n = this.node(path, fd);
      if (!n) return cb(ENOENT);
      if (n.kind !== 'file') return cb(-E.EISDIR);
      this.pages.read(n, pos, len, buf).then(cb, (e) => this.fail(`read of ${this.tree.pathOf(n)}`, e, cb));
    },
    write: (path, fd, buf, len, pos, cb) => {
      this.count('write');
      const n = this.node(path, fd);
      if (!n) return cb(ENOENT);
      if (n.kind !== 'file') return cb(-E.EISDIR);
      const data = Buffer.from(buf.subarray(0, len)); // libfuse's buffer is only valid until we answer
      this.pages.write(n, pos, data).then(
        () => {
          this.shipper.dirtied(n);
          cb(len);
        },
        (e) => this.fail(`write of ${this.tree.pathOf(n)}`, e, cb),
      );
    },
    fsync: (_path, _datasync, _fd, cb) => {
      this.count('fsync');
      this.sync(cb);
    },
    truncate: (path, size, cb) => {
      this.count('truncate');
      this.resize(this.tree.lookup(path), size, cb);
    },
    ftruncate: (path, fd, size, cb) => {
      this.count('ftruncate');
      this.resize(this.node(path, fd), size, cb);
    },
    create: (path, mode, cb) => {
      this.count('create');
      this.create(path, mode, cb);
    },
    mkdir: (path, mode, cb) => {
      this.count('mkdir');
      const { dir, name } = this.tree.parentOf(path);
      if (!dir) return cb(ENOENT);
      if (dir.children!.has(name)) return cb(-E.EEXIST);
      const n = this.tree.make('dir', mode, dir, name, false);
      this.tree.attach(n, dir, name);
      this.shipper.record({ op: 'mkdir', path: dataPath(path) }, n);
      cb(0);
    },
    rmdir: (path, cb) => {
      this.count('rmdir');
      const n = this.tree.lookup(path);
      if (!n) return cb(ENOENT);
      if (n.kind !== 'dir') return cb(-E.ENOTDIR);
      if (n === this.tree.root) return cb(-E.EBUSY);
      const children = [...n.children!.values()];
      if (children.some((c) => !c.hidden)) return cb(-E.ENOTEMPTY);
      for (const c of children) this.gone(c); // files unlinked while open: already gone for everyone else
      this.shipper.record({ op: 'rmdir', path: dataPath(path) }, n);
      this.gone(n);
      cb(0);
    },
    unlink: (path, cb) => {
      this.count('unlink');
      const n = this.tree.lookup(path);
      if (!n) return cb(ENOENT);
      if (n.kind === 'dir') return cb(-E.EISDIR);
      this.shipper.record(n.local || n.kind === 'symlink' ? null : { op: 'unlink', path: dataPath(path) }, n);
      this.gone(n);
      cb(0);
    },
    rename: (src, dest, cb) => {
      this.count('rename');
      cb(this.rename(src, dest));
    },
    symlink: (target, path, cb) => {
      this.count('symlink');
      const { dir, name } = this.tree.parentOf(path);
      if (!dir) return cb(ENOENT);
      if (dir.children!.has(name)) return cb(-E.EEXIST);
      const n = this.tree.make('symlink', 0o777, dir, name, true); // the storage node keeps no symlinks
      n.target = target;
      this.tree.attach(n, dir, name);
      cb(0);
    },
  };

  private create(path: string, mode: number, cb: Fuse.FdCb): void {
    const { dir, name } = this.tree.parentOf(path);
    let n = dir?.children?.get(name);
    if (!dir || n?.kind === 'dir') {
      cb(dir ? -E.EISDIR : ENOENT);
      return;
    }
    if (!n) {
      const p = dataPath(path);
      n = this.tree.make('file', mode, dir, name, this.tree.isLocalPath(p));
      this.tree.attach(n, dir, name);
      this.shipper.record(n.local ? null : { op: 'create', path: p }, n);
    }
    cb(0, this.openFd(n));
  }

  private resize(n: FsNode | null, size: number, cb: Fuse.Done): void {
    if (n?.kind !== 'file') {
      cb(n ? -E.EISDIR : ENOENT);
      return;
    }
    this.pages.setSize(n, size);
    const shipped = !n.local && !n.unlinked;
    this.shipper.record(shipped ? { op: 'truncate', path: this.tree.pathOf(n), size } : null, n);
    cb(0);
  }

  /** rename(2) semantics over the tree; the errno (0 on success). */
  private rename(src: string, dest: string): number {
    const n = this.tree.lookup(src);
    const { dir, name } = this.tree.parentOf(dest);
    if (!n || !dir) return ENOENT;
    if (n === this.tree.root || n.hidden) return -E.EBUSY;
    if (HIDDEN_NAME.test(name) && n.kind === 'file' && !dir.children!.has(name)) return this.hide(n, dir, name, dataPath(src));
    if (this.tree.isWithin(dir, n)) return -E.EINVAL; // into itself
    const old = dir.children!.get(name);
    if (old === n) return 0;
    if (old) {
      if (old.kind === 'dir' && n.kind !== 'dir') return -E.EISDIR;
      if (n.kind === 'dir' && old.kind !== 'dir') return -E.ENOTDIR;
      if (old.children && old.children.size > 0) return -E.ENOTEMPTY;
    }
    const from = dataPath(src);
    const to = dataPath(dest);
    const shipped = (x: FsNode): boolean => !x.local && x.kind !== 'symlink';
    if (old) {
      // the storage node's rename replaces the target; a target replaced by something never shipped goes first
      if (shipped(old) && !shipped(n)) this.shipper.record({ op: old.kind === 'dir' ? 'rmdir' : 'unlink', path: to }, old);
      this.gone(old);
    }
    n.parent!.children!.delete(n.name);
    this.tree.attach(n, dir, name);
    n.ctimeMs = Date.now();
    if (shipped(n)) {
      this.shipper.record({ op: 'rename', from, to }, n);
    } else if (n.kind === 'file' && !this.tree.isLocalPath(to)) {
      this.publish(n, to);
    } else {
      this.shipper.record(null, n);
    }
    return 0;
  }

  /**
   * libfuse hides a file unlinked while open by renaming it to `.fuse_hidden...`: for the storage node that is
   * the unlink; here the file stays reachable by that path (libfuse does its I/O through it) until libfuse
   * unlinks it at the last close. It is local from now on, and left out of directory listings.
   */
  private hide(n: FsNode, dir: FsNode, name: string, from: string): number {
    this.shipper.record(n.local ? null : { op: 'unlink', path: from }, n);
    this.shipper.leave(n);
    n.local = true;
    n.hidden = true;
    n.parent!.children!.delete(n.name);
    this.tree.attach(n, dir, name);
    return 0;
  }

  /** A local file renamed to a shipped path (e.g. a temp file made durable): it is shipped whole from now on. */
  private publish(n: FsNode, to: string): void {
    n.local = false;
    this.shipper.record({ op: 'create', path: to }, n);
    if (n.size > 0) this.shipper.record({ op: 'truncate', path: to, size: n.size }, n);
    this.shipper.dirtied(n);
  }
}
