// The manifest of a timeline: its identity, its ancestry, and the list of layer files that hold its history.
// It lives at timelines/<id>/manifest.json and is only ever replaced with a conditional write (If-Match the
// ETag this node last saw), so two storage nodes can never silently overwrite each other's view of a timeline.
import type { ObjectStore } from '../object-store/object-store.ts';
import type { LayerKind } from './layer-file.ts';

export interface ManifestLayer {
  name: string;
  kind: LayerKind;
  lsnStart: number;
  lsnEnd: number;
  size: number;
}

export interface Manifest {
  format: 'lakebase-manifest';
  version: 1;
  timelineId: string;
  ancestorTimelineId: string | null;
  ancestorLsn: number;
  /** Creation time, ms since the epoch. */
  createdAt: number;
  /** Every batch with an LSN up to this one is in the layers below. */
  uploadedLsn: number;
  /** Reads below this LSN are refused: history before it was garbage-collected. */
  gcCutoffLsn: number;
  /** Bumped on every update; a reader can tell two versions apart without ETags. */
  generation: number;
  /**
   * The timeline's writer generation (POST /v1/timelines/:id/writer), not to be confused with `generation`: bumped
   * each time a read-write compute takes the timeline; batches of an older one are refused. Absent (0) in
   * manifests written before it existed or of timelines no compute has taken.
   */
  writerGeneration?: number;
  /**
   * The timeline's last LSN when the current writer generation was taken: a batch after it of an older generation
   * was written by a node that had not heard of the takeover (wal-objects.ts cuts it off). Absent before a takeover.
   */
  writerSinceLsn?: number;
  layers: ManifestLayer[];
}

export const keys = {
  timelinesPrefix: 'timelines/',
  manifest: (tl: string) => `timelines/${tl}/manifest.json`,
  layer: (tl: string, name: string) => `timelines/${tl}/layers/${name}`,
  walPrefix: (tl: string) => `timelines/${tl}/wal/`,
  walObject: (tl: string, lsn: number) => `timelines/${tl}/wal/${lsnHex(lsn)}.batch`,
  timelinePrefix: (tl: string) => `timelines/${tl}/`,
};

export function lsnHex(lsn: number): string {
  return lsn.toString(16).padStart(16, '0');
}

export function parseManifest(key: string, body: Buffer): Manifest {
  const m = JSON.parse(body.toString('utf8')) as Manifest;
  if (m.format !== 'lakebase-manifest' || m.version !== 1) throw new Error(`${key}: not a lakebase manifest (format ${String(m.format)} version ${String(m.version)})`);
  return m;
}

export function newManifest(timelineId: string, ancestorTimelineId: string | null, ancestorLsn: number, createdAt: number): Manifest {
  return {
    format: 'lakebase-manifest',
    version: 1,
    timelineId,
    ancestorTimelineId,
    ancestorLsn,
    createdAt,
    uploadedLsn: ancestorLsn,
    gcCutoffLsn: ancestorLsn,
    generation: 0,
    layers: [],
  };
}

/** The timeline's manifest as the bucket has it now, with its ETag; null when there is none (never made, or deleted). */
export async function fetchManifest(store: ObjectStore, timelineId: string): Promise<{ manifest: Manifest; etag: string } | null> {
  const key = keys.manifest(timelineId);
  const res = await store.get(key);
  return res ? { manifest: parseManifest(key, res.body), etag: res.etag } : null;
}
