// The mount's namespace in memory: directories, files and (local-only) symlinks as nodes, found by FUSE path.
// A node is an inode: open files hold the node, so a rename or unlink of an open file leaves its I/O working.
// Each node also remembers where it sat at the durable LSN (`durable`), which is where its clean pages can be
// read back from the storage node: a rename not yet shipped changes the current path, not that one.
import type { DataPath } from '../../storage-node/api/types.ts';

export type NodeKind = 'file' | 'dir' | 'symlink';

/** A node's place in the tree (parent and name) at some moment. */
export interface Place {
  parent: FsNode;
  name: string;
}

/** Where the clean pages of a node that left the tree can still be read: its path at an LSN it existed at. */
export interface Origin {
  path: DataPath;
  lsn: number;
}

/** An in-flight page fetch; `token` tells a stale answer (the page was written or cut since) from a current one. */
export interface Fetch {
  token: object;
  promise: Promise<Map<number, Buffer>>;
}

const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

export class FsNode {
  readonly ino: number;
  readonly kind: NodeKind;
  mode: number;
  uid: number;
  gid: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  parent: FsNode | null;
  name: string;
  readonly children: Map<string, FsNode> | null;
  size = 0;
  /** A symlink's target. */
  target = '';
  /** Never shipped (postmaster.pid, postmaster.opts, the mount's localFiles, symlinks). */
  local: boolean;
  unlinked = false;
  /** Unlinked while open: libfuse renamed it to `.fuse_hidden...` (HIDDEN_NAME) and unlinks it at last close. */
  hidden = false;
  openCount = 0;
  /** Place at the durable LSN; null: not in the tree at that LSN. The root is always there. */
  durable: Place | null = null;
  /** Set when the node leaves the tree: where its clean pages are read from from then on. */
  frozen: Origin | null = null;
  /** Bytes below this come from the storage node when not resident; bytes at or past it are zeros. */
  originLimit = 0;
  /** Resident pages (PAGE_SIZE bytes each): clean ones are in the LRU, dirty and shipping ones are pinned. */
  readonly pages = new Map<number, Buffer>();
  /** Pages changed since the last collect. */
  readonly dirty = new Set<number>();
  /** Pages in the batch in flight (pinned until it is acknowledged). */
  readonly shipping = new Set<number>();
  readonly fetching = new Map<number, Fetch>();
  /** Size when the batch in flight was collected, and the smallest size since (what the durable file holds). */
  shipSize = 0;
  sizeFloor = 0;
  /** Sequential read detection: the page after the last miss, and the read-ahead window in pages. */
  nextSeqPage = -1;
  window = 1;

  constructor(ino: number, kind: NodeKind, mode: number, owner: { uid: number; gid: number }, parent: FsNode | null, name: string, local: boolean) {
    const now = Date.now();
    this.ino = ino;
    this.kind = kind;
    const type = kind === 'dir' ? S_IFDIR : kind === 'file' ? S_IFREG : S_IFLNK;
    this.mode = type | (mode & ~S_IFMT);
    this.uid = owner.uid;
    this.gid = owner.gid;
    this.atimeMs = now;
    this.mtimeMs = now;
    this.ctimeMs = now;
    this.parent = parent;
    this.name = name;
    this.children = kind === 'dir' ? new Map() : null;
    this.local = local;
  }

  /** Gone from the shipped namespace (unlinked, or hidden by libfuse), though perhaps still open. */
  get left(): boolean {
    return this.unlinked || this.hidden;
  }

  setMode(mode: number): void {
    this.mode = (this.mode & S_IFMT) | (mode & ~S_IFMT);
    this.ctimeMs = Date.now();
  }
}

/**
 * The name libfuse2 gives a file unlinked while open (without hard_remove): it renames the file to this name
 * in the same directory, keeps serving I/O on it by that path, and unlinks it at the last close.
 */
export const HIDDEN_NAME = /^\.fuse_hidden[0-9a-f]{16}$/;

/** `/a/b` (a FUSE path) as a data path `a/b`. */
export function dataPath(fusePath: string): DataPath {
  return fusePath.replace(/^\/+/, '').replace(/\/+$/, '');
}

export class Tree {
  readonly root: FsNode;
  readonly owner: { uid: number; gid: number };
  private readonly localPaths: Set<DataPath>;
  private inoSeq = 1;

  /** `localPaths`: data paths whose files are never shipped (and hidden if the storage node has them). */
  constructor(owner: { uid: number; gid: number }, localPaths: Iterable<DataPath>) {
    this.owner = owner;
    this.localPaths = new Set(localPaths);
    this.root = new FsNode(this.inoSeq++, 'dir', 0o700, owner, null, '', false);
  }

  isLocalPath(path: DataPath): boolean {
    return this.localPaths.has(path);
  }

  /** A new node under `parent` (not attached). */
  make(kind: NodeKind, mode: number, parent: FsNode, name: string, local: boolean): FsNode {
    return new FsNode(this.inoSeq++, kind, mode, this.owner, parent, name, local);
  }

  attach(node: FsNode, parent: FsNode, name: string): void {
    node.parent = parent;
    node.name = name;
    parent.children!.set(name, node);
    parent.mtimeMs = parent.ctimeMs = Date.now();
  }

  /** Removes the node from its directory; it lives on while open (hard_remove). */
  detach(node: FsNode): void {
    const parent = node.parent;
    if (parent && parent.children!.get(node.name) === node) {
      parent.children!.delete(node.name);
      parent.mtimeMs = parent.ctimeMs = Date.now();
    }
    node.unlinked = true;
  }

  lookup(fusePath: string): FsNode | null {
    let n: FsNode = this.root;
    for (const part of fusePath.split('/')) {
      if (part === '') continue;
      const next = n.children?.get(part);
      if (!next) return null;
      n = next;
    }
    return n;
  }

  /** The directory a path would be created in (null if missing or not a directory) and the last name. */
  parentOf(fusePath: string): { dir: FsNode | null; name: string } {
    const p = dataPath(fusePath);
    const i = p.lastIndexOf('/');
    const dir = this.lookup(i < 0 ? '' : p.slice(0, i));
    return { dir: dir?.kind === 'dir' ? dir : null, name: p.slice(i + 1) };
  }

  /** The node's current data path. */
  pathOf(node: FsNode): DataPath {
    const parts: string[] = [];
    for (let n: FsNode | null = node; n && n !== this.root; n = n.parent) parts.push(n.name);
    return parts.reverse().join('/');
  }

  /** The node's data path at the durable LSN, or null if it was not in the tree then. */
  durablePath(node: FsNode): DataPath | null {
    const parts: string[] = [];
    for (let n: FsNode = node; n !== this.root; ) {
      if (!n.durable) return null;
      parts.push(n.durable.name);
      n = n.durable.parent;
    }
    return parts.reverse().join('/');
  }

  /** Is `node` `ancestor` or below it? */
  isWithin(node: FsNode, ancestor: FsNode): boolean {
    for (let n: FsNode | null = node; n; n = n.parent) if (n === ancestor) return true;
    return false;
  }

  /** Every node still in the tree (for stats). */
  *walk(from: FsNode = this.root): Generator<FsNode> {
    yield from;
    if (from.children) for (const c of from.children.values()) yield* this.walk(c);
  }
}
