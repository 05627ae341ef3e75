// What the engine keeps per timeline besides its model (timeline.ts): the manifest as last written or read, the
// batches not yet frozen, the lock that orders uploads, the writer generation, and where the timeline stands
// between storage nodes (owned, released, fenced by another node).
import type { ReleaseAnswer } from '../api/types.ts';
import type { ConflictError } from './errors.ts';
import type { Manifest } from './manifest.ts';
import type { ManifestWatch } from './manifest-watch.ts';
import type { PageVersion, PreparedBatch, Timeline } from './timeline.ts';

export interface Unfrozen {
  batch: PreparedBatch;
  versions: [string, PageVersion][];
}

export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(() => undefined, () => undefined);
    return result;
  }
}

export interface TimelineState {
  id: string;
  manifest: Manifest;
  /** ETag of the manifest as this node last wrote or read it; null when it is not in the object store yet. */
  etag: string | null;
  timeline: Timeline | null;
  loading: Promise<Timeline> | null;
  unfrozen: Unfrozen[];
  lock: Mutex;
  /** Set when another node changed this timeline under us: writes are refused from then on. */
  fenced: ConflictError | null;
  lastWriteMs: number;
  /** Object-store mode: acknowledgement order (a batch is durable only after every earlier one). */
  durableChain: Promise<void>;
  /** Object-store mode: LSNs of per-batch objects not yet covered by an uploaded layer. */
  walObjects: number[];
  deleted: boolean;
  /**
   * The current writer generation (writer-fence.ts). Ahead of the manifest's while a takeover's manifest is being
   * uploaded: batches of the old generation are refused from the moment of the takeover.
   */
  writerGeneration: number;
  /** Batches applied and becoming durable (settled either way): a takeover answers once they are. */
  writing: Set<Promise<void>>;
  /**
   * This node created the timeline or applied a batch to it since it loaded it: only then is it this node's to
   * freeze, compact and collect in the background (a timeline merely read, e.g. as an ancestor, may be another's).
   */
  owned: boolean;
  /** Not owned, but found unchanged in the bucket since it was loaded: a first write may build on it. */
  verified: boolean;
  /** Its manifest was read when the node started: read it again before loading (another node may have changed it). */
  recheck: boolean;
  /** Dropped from this node's memory (released, or lost to another node): requests still holding it start over. */
  detached: boolean;
  /** A release under way: writes wait for it, then go to the timeline as adopted again. */
  releasing: Promise<ReleaseAnswer> | null;
  /** A check against the bucket under way (`verified`), shared by the writes that wait for it. */
  checking: Promise<void> | null;
  /** Object-store mode: the manifest reads batches wait for before their acknowledgement (made on first use). */
  watch: ManifestWatch | null;
}

/** A timeline's bookkeeping as of manifest `m` (`etag`: null while the manifest is not in the bucket yet). */
export function newTimelineState(m: Manifest, etag: string | null): TimelineState {
  return {
    id: m.timelineId, manifest: m, etag, timeline: null, loading: null, unfrozen: [], lock: new Mutex(), fenced: null,
    lastWriteMs: 0, durableChain: Promise.resolve(), walObjects: [], deleted: false,
    writerGeneration: m.writerGeneration ?? 0, writing: new Set(),
    owned: false, verified: false, recheck: false, detached: false, releasing: null, checking: null, watch: null,
  };
}
