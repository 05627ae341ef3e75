// The local write log: every batch (and timeline creation) is appended here and fsynced before it is
// acknowledged. Concurrent appends share one write and one fsync (group commit). On start the log is replayed;
// a torn record at the tail (a crash mid-write) is cut off, so a batch is either wholly there or not at all.
import { crc32 } from 'node:zlib';
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, truncate } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

export interface TimelineCreateRecord {
  timelineId: string;
  ancestorTimelineId: string | null;
  ancestorLsn: number;
  createdAt: number;
}

export type LogRecord =
  | { type: 'batch'; timelineId: string; lsn: number; time: number; batch: Buffer }
  | { type: 'create'; timeline: TimelineCreateRecord }
  | { type: 'delete'; timelineId: string }
  /** The node handed the timeline over (everything of it is in the bucket): a restart forgets it, as for a delete. */
  | { type: 'release'; timelineId: string };

const SEGMENT_BYTES = 64 * 1024 * 1024;
/**
 * Segments are opened O_DSYNC: a write returns once its bytes (and the file size that reaches them) are on disk,
 * as write + fdatasync would, but in one trip to the thread pool instead of two (alone on this disk: 0.29 ms
 * instead of 0.47 ms for an 8 KiB record).
 */
const SEGMENT_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_DSYNC;

export function encodeRecord(rec: LogRecord): Buffer {
  const { batch, ...head } = rec.type === 'batch' ? rec : { ...rec, batch: Buffer.alloc(0) };
  const json = Buffer.from(JSON.stringify(head));
  // frame and payload in one buffer: the record is copied once, not twice
  const out = Buffer.allocUnsafe(8 + 4 + json.length + batch.length);
  const payload = out.subarray(8);
  payload.writeUInt32BE(json.length, 0);
  json.copy(payload, 4);
  batch.copy(payload, 4 + json.length);
  out.writeUInt32BE(payload.length, 0);
  out.writeUInt32BE(crc32(payload), 4);
  return out;
}

export function decodeRecords(buf: Buffer): { records: LogRecord[]; validBytes: number } {
  const records: LogRecord[] = [];
  let pos = 0;
  while (pos + 8 <= buf.length) {
    const len = buf.readUInt32BE(pos);
    const crc = buf.readUInt32BE(pos + 4);
    if (pos + 8 + len > buf.length) break;
    const payload = buf.subarray(pos + 8, pos + 8 + len);
    if (crc32(payload) !== crc) break;
    const jlen = payload.readUInt32BE(0);
    const head = JSON.parse(payload.subarray(4, 4 + jlen).toString('utf8')) as LogRecord;
    if (head.type === 'batch') head.batch = Buffer.from(payload.subarray(4 + jlen));
    records.push(head);
    pos += 8 + len;
  }
  return { records, validBytes: pos };
}

/** Writes every byte (a short write is retried from where it stopped, so a record is never left half-sent). */
async function writeAll(fh: FileHandle, bytes: Buffer): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done);
    if (bytesWritten <= 0) throw new Error('the disk accepted no bytes');
    done += bytesWritten;
  }
}

interface Segment {
  seq: number;
  path: string;
  /** Highest LSN per timeline in this segment; -1 for a timeline's creation record. */
  maxLsn: Map<string, number>;
}

interface Pending {
  rec: LogRecord;
  bytes: Buffer;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class WriteLog {
  private readonly dir: string;
  private segments: Segment[] = [];
  private fh: FileHandle | null = null;
  private size = 0;
  private queue: Pending[] = [];
  private rotateWaiters: (() => void)[] = [];
  private flushing: Promise<void> | null = null;
  /** After a failed write or fsync the log is fail-stop: what follows would build on a record that may be torn. */
  private failure: Error | null = null;
  /** Counts durable (O_DSYNC) writes, each one flush to disk, to show group commit at work. */
  fsyncs = 0;
  private readonly noteSync: (seconds: number, records: number) => void;

  constructor(dir: string, noteSync: (seconds: number, records: number) => void = () => {}) {
    this.dir = dir;
    this.noteSync = noteSync;
  }

  private segPath(seq: number): string {
    return join(this.dir, `${String(seq).padStart(10, '0')}.log`);
  }

  /** Reads every intact record in order, cuts off a torn tail, and opens a fresh segment for appends. */
  async open(): Promise<LogRecord[]> {
    await mkdir(this.dir, { recursive: true });
    const names = (await readdir(this.dir)).filter((n) => /^\d{10}\.log$/.test(n)).sort();
    const all: LogRecord[] = [];
    for (const name of names) {
      const path = join(this.dir, name);
      const buf = await readFile(path);
      const { records, validBytes } = decodeRecords(buf);
      if (validBytes < buf.length) await truncate(path, validBytes); // torn tail of a crash: never acknowledged
      const seg: Segment = { seq: Number(name.slice(0, 10)), path, maxLsn: new Map() };
      for (const r of records) this.note(seg, r);
      this.segments.push(seg);
      all.push(...records);
    }
    await this.roll();
    return all;
  }

  private note(seg: Segment, r: LogRecord): void {
    if (r.type === 'batch') seg.maxLsn.set(r.timelineId, Math.max(seg.maxLsn.get(r.timelineId) ?? -1, r.lsn));
    else if (r.type === 'create' && !seg.maxLsn.has(r.timeline.timelineId)) seg.maxLsn.set(r.timeline.timelineId, -1);
  }

  private async roll(): Promise<void> {
    if (this.fh) await this.fh.close();
    const seq = (this.segments.at(-1)?.seq ?? 0) + 1;
    const path = this.segPath(seq);
    this.fh = await open(path, SEGMENT_FLAGS, 0o666);
    this.size = 0;
    this.segments.push({ seq, path, maxLsn: new Map() });
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync(); // the new segment's directory entry must survive a crash too
    } finally {
      await dir.close();
    }
  }

  /** Resolves once the record is on disk (fsynced). */
  append(rec: LogRecord): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const bytes = encodeRecord(rec);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ rec, bytes, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    // Cleared in a later microtask, never inside flushLoop: a loop that finishes without awaiting must not
    // leave a settled promise behind as "flushing".
    // Work queued between the loop's end and this callback is picked up by a new loop.
    if (this.flushing) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = null;
      if (this.queue.length > 0 || this.rotateWaiters.length > 0) this.kick();
    });
  }

  // The only code that touches the segment file: writes, fsyncs and rolls never overlap.
  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0 || this.rotateWaiters.length > 0) {
      if (this.queue.length > 0) {
        const group = this.queue.splice(0);
        const started = process.hrtime.bigint();
        const seg = this.segments.at(-1)!;
        try {
          const bytes = group.length === 1 ? group[0].bytes : Buffer.concat(group.map((p) => p.bytes));
          for (const p of group) this.note(seg, p.rec); // noted in the segment that really holds it
          await writeAll(this.fh!, bytes); // O_DSYNC: on disk when it returns (SEGMENT_FLAGS)
          this.fsyncs++;
          this.size += bytes.length;
          this.noteSync(Number(process.hrtime.bigint() - started) / 1e9, group.length);
          for (const p of group) p.resolve();
        } catch (e) {
          this.failure = new Error(`write log failed: ${(e as Error).message}; restart the storage node`);
          for (const p of [...group, ...this.queue.splice(0)]) p.reject(this.failure);
        }
      }
      const waiters = this.rotateWaiters.splice(0);
      if ((this.size >= SEGMENT_BYTES || waiters.length > 0) && this.size > 0) await this.roll();
      for (const w of waiters) w();
    }
  }

  /** Starts a new segment, so that everything logged so far can be trimmed once it is persisted. */
  rotate(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.rotateWaiters.push(resolve);
      this.kick();
    });
  }

  /**
   * Deletes every closed segment whose records are all persisted elsewhere (in uploaded layers and manifests).
   * `persisted(timelineId, maxLsn)` says whether a timeline's records up to maxLsn may be dropped.
   */
  async trim(persisted: (timelineId: string, maxLsn: number) => boolean): Promise<number> {
    let removed = 0;
    const current = this.segments.at(-1);
    for (const seg of [...this.segments]) {
      if (seg === current) continue;
      if (![...seg.maxLsn].every(([tl, lsn]) => persisted(tl, lsn))) break; // keep order: trim oldest first
      await rm(seg.path, { force: true });
      this.segments = this.segments.filter((s) => s !== seg);
      removed++;
    }
    return removed;
  }

  segmentCount(): number {
    return this.segments.length;
  }

  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    await this.fh?.close();
    this.fh = null;
  }
}
