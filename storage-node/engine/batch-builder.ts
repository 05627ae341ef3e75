// The batch builder: checks a write batch against a timeline's latest state (including batches still becoming
// durable) and computes the page, namespace and size changes it makes, without changing anything; and the
// write-log record that makes it durable. Split out of Timeline, which only applies what this computes.
import { parentOf } from '../api/paths.ts';
import { encodeBatch } from '../api/batch-codec.ts';
import { PAGE_SIZE } from '../api/types.ts';
import type { FileOp, WriteBatch } from '../api/types.ts';
import { BatchRejectedError } from './errors.ts';
import { mergeWrite } from './page.ts';
import type { PageData } from './page.ts';
import type { NsEntry, PreparedBatch, SizeValue } from './timeline.ts';
import { walEndOfWrite } from './wal-position.ts';
import type { LogRecord } from './write-log.ts';

/** What the builder reads of a timeline: its state at an LSN, through its ancestors. */
export interface TimelineView {
  readonly id: string;
  /** The highest LSN assigned: the state a new batch builds on. */
  readonly assignedLsn: number;
  entryAt(path: string, lsn: number): NsEntry | null;
  sizeAt(ino: string, lsn: number): number;
  /** Every path ever named in the chain at `lsn` (live or not). */
  allPaths(lsn: number): Set<string>;
  /** Postgres' WAL position as of `lsn` (wal-position.ts), null before any WAL. */
  walLsnAt(lsn: number): number | null;
}

export function pageKey(ino: string, page: number): string {
  return `${ino}/${page}`;
}

/**
 * Validates `batch` against the timeline and computes its changes at the next LSN. Throws BatchRejectedError,
 * with nothing changed, when any op is invalid.
 */
export function buildBatch(view: TimelineView, batch: WriteBatch, time: number): PreparedBatch {
  if (batch.expectedLsn !== undefined && batch.expectedLsn !== view.assignedLsn) {
    throw new BatchRejectedError(
      'lsn_mismatch',
      `batch expected timeline ${view.id} at LSN ${batch.expectedLsn} but it is at ${view.assignedLsn}: another writer has written to it`,
    );
  }
  const builder = new BatchBuilder(view);
  batch.ops.forEach((op, i) => {
    builder.add(op, i);
  });
  return builder.result(time);
}

/** The write-log record of a prepared batch (and the encoded batch it carries). */
export function batchRecord(timelineId: string, prepared: PreparedBatch, batch: WriteBatch): { record: LogRecord; encoded: Buffer } {
  const encoded = encodeBatch(batch);
  return { record: { type: 'batch', timelineId, lsn: prepared.lsn, time: prepared.time, batch: encoded }, encoded };
}

function where(op: FileOp, i: number): string {
  return `op ${i} (${op.op} ${'path' in op ? op.path : `${op.from} -> ${op.to}`})`;
}

/** The changes of one batch, op by op, over the timeline's state at `at`. */
class BatchBuilder {
  private readonly view: TimelineView;
  private readonly at: number;
  private readonly lsn: number;
  private readonly pages = new Map<string, PageData>();
  private readonly ns = new Map<string, NsEntry | null>();
  private readonly sizes = new Map<string, SizeValue>();
  /** inode -> first byte cut in this batch */
  private readonly truncatedFrom = new Map<string, number>();
  private inoSeq = 0;
  /** The furthest WAL position this batch's writes reach. */
  private walEnd: number | undefined;

  constructor(view: TimelineView) {
    this.view = view;
    this.at = view.assignedLsn;
    this.lsn = this.at + 1;
  }

  result(time: number): PreparedBatch {
    // a batch that writes no WAL stays at the position before it, so every batch has one once WAL exists
    const wal = this.walEnd ?? this.view.walLsnAt(this.at) ?? undefined;
    return { lsn: this.lsn, time, pages: this.pages, ns: this.ns, sizes: this.sizes, wal };
  }

  add(op: FileOp, i: number): void {
    const w = where(op, i);
    switch (op.op) {
      case 'create':
        this.create(op.path, w);
        return;
      case 'write':
        this.write(op.path, op.offset, op.data, w);
        return;
      case 'truncate':
        this.truncate(op.path, op.size, w);
        return;
      case 'unlink':
        this.unlink(op.path, w);
        return;
      case 'mkdir':
        this.mkdir(op.path, w);
        return;
      case 'rmdir':
        this.rmdir(op.path, w);
        return;
      case 'rename':
        this.rename(op.from, op.to, w);
        return;
    }
  }

  // ---- the state as this batch has left it so far ----

  private entry(p: string): NsEntry | null {
    if (p === '') return { type: 'dir' };
    return this.ns.has(p) ? this.ns.get(p)! : this.view.entryAt(p, this.at);
  }

  private size(ino: string): SizeValue {
    return this.sizes.get(ino) ?? { size: this.view.sizeAt(ino, this.at), cut: this.view.sizeAt(ino, this.at) };
  }

  private livePaths(): string[] {
    const all = this.view.allPaths(this.at);
    for (const k of this.ns.keys()) all.add(k);
    return [...all].filter((p) => this.entry(p) !== null);
  }

  private requireParentDir(p: string, where: string): void {
    const parent = parentOf(p);
    if (this.entry(parent)?.type !== 'dir') throw new BatchRejectedError('no_such_directory', `${where}: parent directory ${JSON.stringify(parent)} does not exist`);
  }

  private requireFile(p: string, where: string): string {
    const e = this.entry(p);
    if (!e) throw new BatchRejectedError('no_such_file', `${where}: no such file`);
    if (e.type !== 'file') throw new BatchRejectedError('is_a_directory', `${where}: is a directory`);
    return e.ino;
  }

  // ---- the ops ----

  private create(path: string, where: string): void {
    const e = this.entry(path);
    if (e?.type === 'dir') throw new BatchRejectedError('is_a_directory', `${where}: is a directory`);
    if (e) return; // O_CREAT on an existing file
    this.requireParentDir(path, where);
    const ino = `${this.view.id.slice(0, 12)}.${this.lsn}.${this.inoSeq++}`;
    this.ns.set(path, { type: 'file', ino });
    this.sizes.set(ino, { size: 0, cut: 0 });
  }

  private write(path: string, offset: number, bytes: Uint8Array, where: string): void {
    const ino = this.requireFile(path, where);
    const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let pos = 0;
    while (pos < data.length) {
      const abs = offset + pos;
      const page = Math.floor(abs / PAGE_SIZE);
      const inPage = abs - page * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - inPage, data.length - pos);
      const key = pageKey(ino, page);
      let prev = this.pages.get(key);
      const cutAt = this.truncatedFrom.get(ino);
      if (!prev && cutAt !== undefined && page * PAGE_SIZE >= cutAt) {
        prev = { kind: 'image', bytes: Buffer.alloc(0) }; // written after a truncate: over zeros
      }
      this.pages.set(key, mergeWrite(prev, inPage, data.subarray(pos, pos + n)));
      pos += n;
    }
    const s = this.size(ino);
    const size = Math.max(s.size, offset + data.length);
    this.sizes.set(ino, { size, cut: s.cut });
    const wal = walEndOfWrite(path, offset, data, size);
    if (wal !== undefined && (this.walEnd === undefined || wal > this.walEnd)) this.walEnd = wal;
  }

  private truncate(path: string, size: number, where: string): void {
    const ino = this.requireFile(path, where);
    const s = this.size(ino);
    if (size < s.size) this.cutPages(ino, size);
    this.sizes.set(ino, { size, cut: Math.min(s.cut, size) });
  }

  /** Drops this batch's pages of `ino` past `size`, zeroes the rest of the page it ends in, remembers the cut. */
  private cutPages(ino: string, size: number): void {
    for (const key of [...this.pages.keys()]) {
      if (!key.startsWith(ino + '/')) continue;
      const page = Number(key.slice(ino.length + 1));
      if (page * PAGE_SIZE >= size) this.pages.delete(key);
    }
    const tail = size % PAGE_SIZE;
    if (tail !== 0) {
      const key = pageKey(ino, Math.floor(size / PAGE_SIZE));
      this.pages.set(key, mergeWrite(this.pages.get(key), tail, Buffer.alloc(PAGE_SIZE - tail)));
    }
    const prevCut = this.truncatedFrom.get(ino);
    this.truncatedFrom.set(ino, prevCut === undefined ? size : Math.min(prevCut, size));
  }

  private unlink(path: string, where: string): void {
    this.requireFile(path, where);
    this.ns.set(path, null);
  }

  private mkdir(path: string, where: string): void {
    const e = this.entry(path);
    if (e?.type === 'dir') return;
    if (e) throw new BatchRejectedError('file_exists', `${where}: a file exists at this path`);
    this.requireParentDir(path, where);
    this.ns.set(path, { type: 'dir' });
  }

  private rmdir(path: string, where: string): void {
    const e = this.entry(path);
    if (!e) throw new BatchRejectedError('no_such_directory', `${where}: no such directory`);
    if (e.type !== 'dir') throw new BatchRejectedError('not_a_directory', `${where}: not a directory`);
    if (path === '') throw new BatchRejectedError('invalid_path', `${where}: the data directory itself cannot be removed`);
    const prefix = path + '/';
    if (this.livePaths().some((p) => p.startsWith(prefix))) throw new BatchRejectedError('directory_not_empty', `${where}: directory not empty`);
    this.ns.set(path, null);
  }

  private rename(from: string, to: string, where: string): void {
    const src = this.entry(from);
    if (!src) throw new BatchRejectedError('no_such_file', `${where}: source does not exist`);
    if (from === to) return;
    if (to.startsWith(from + '/')) throw new BatchRejectedError('invalid_rename', `${where}: cannot move a directory into itself`);
    this.requireParentDir(to, where);
    const dst = this.entry(to);
    if (dst && dst.type !== src.type) throw new BatchRejectedError('invalid_rename', `${where}: source and destination are not both files or both directories`);
    if (src.type === 'dir') this.moveChildren(from, to, dst !== null, where);
    this.ns.set(to, src);
    this.ns.set(from, null);
  }

  /** A directory rename: every live path under `from` moves under `to` (which must be empty if it exists). */
  private moveChildren(from: string, to: string, dstExists: boolean, where: string): void {
    const live = this.livePaths();
    if (dstExists && live.some((p) => p.startsWith(to + '/'))) throw new BatchRejectedError('directory_not_empty', `${where}: destination directory not empty`);
    const prefix = from + '/';
    for (const p of live) {
      if (!p.startsWith(prefix)) continue;
      this.ns.set(to + p.slice(from.length), this.entry(p));
      this.ns.set(p, null);
    }
  }
}
