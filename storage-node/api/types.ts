// The storage node's API types: what crosses the network between it and computes, the control plane and tools.
// Shared by the server (http/app.ts) and the client (client.ts); request bodies are derived from their schemas.
import type { InternalErrorBody } from '../../lib/errors.ts';
import type { CreateTimelineBody } from './schemas.ts';

/** Postgres pages are 8 KiB; every page read returns exactly this many bytes. */
export const PAGE_SIZE = 8192;

/**
 * A path inside the data directory: POSIX, relative, normalised (no leading '/', no '.' or '..' segments,
 * no empty segments). The data directory itself is ''.
 */
export type DataPath = string;

export type FileOp =
  | { op: 'write'; path: DataPath; offset: number; data: Uint8Array }
  | { op: 'create'; path: DataPath }
  | { op: 'truncate'; path: DataPath; size: number }
  | { op: 'unlink'; path: DataPath }
  | { op: 'rename'; from: DataPath; to: DataPath }
  | { op: 'mkdir'; path: DataPath }
  | { op: 'rmdir'; path: DataPath };

export type FileOpName = FileOp['op'];

export interface WriteBatch {
  /** The LSN the writer believes is the timeline's last; a mismatch means a second writer and is refused. */
  expectedLsn?: number;
  /**
   * The writer generation the compute was given when it took the timeline (POST /writer). A batch of an older
   * generation (or none, once the timeline has one) is refused: a newer compute has taken the timeline over.
   */
  writerGeneration?: number;
  ops: FileOp[];
}

export interface BatchAck {
  lsn: number;
  /** Commit time of the batch, ISO 8601. */
  time: string;
}

export interface TimelineInfo {
  timelineId: string;
  ancestorTimelineId: string | null;
  ancestorLsn: number | null;
  /** LSN of the last acknowledged batch (equals ancestorLsn for a branch with no writes yet; 0 for a new empty timeline). */
  lastLsn: number;
  /** Oldest LSN that can still be read (the GC horizon). */
  oldestReadableLsn: number;
  /** Bytes of all files' sizes at lastLsn. */
  logicalSize: number;
  /** Postgres' WAL position at lastLsn (pg_current_wal_lsn() as a number); null before any WAL or while unloaded. */
  lastWalLsn: number | null;
  /** Postgres' WAL position at the branch point; null for a root timeline. */
  ancestorWalLsn: number | null;
  createdAt: string;
  /** Timelines branched from this one. */
  children: string[];
}

/** POST /v1/timelines/:id/writer: the new writer generation (durable), and the timeline as of the takeover. */
export interface WriterAnswer {
  generation: number;
  timeline: TimelineInfo;
}

/**
 * POST /v1/timelines/:id/release: the timeline was handed over; everything acknowledged up to `lastLsn` is in the
 * bucket (`uploadedLsn`, in layers) and this node forgot it. `descendants`: its branches loaded on this node, released
 * with it (before it; deepest first).
 */
export interface ReleaseAnswer {
  timelineId: string;
  lastLsn: number;
  uploadedLsn: number;
  descendants: string[];
}

/** POST /v1/timelines (api/schemas.ts: `createTimelineBody`). */
export type CreateTimelineRequest = CreateTimelineBody;

export interface FileEntry {
  path: DataPath;
  type: 'file' | 'dir';
  size: number;
}

export interface PageRef {
  path: DataPath;
  page: number;
}

/** Error body of every 4xx/5xx response (lib/errors.ts, the internal APIs' shape). */
export type ApiErrorBody = InternalErrorBody;
