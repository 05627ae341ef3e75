// Object-store durability: a batch whose WAL object is in the bucket is acknowledged only once the node has read the
// timeline's manifest again, AFTER the put. A node that was never told of a takeover (frozen, partitioned from the
// control plane) would otherwise acknowledge its stale writer's batch, and the new owner would cut it off
// (wal-objects.ts): an acknowledged commit lost. The read is cheap: a HEAD, compared with the ETag the node knows;
// the manifest's body is fetched only when it changed. Concurrent batches share reads (group commit), but a read
// counts for a batch only if it started after that batch's put completed: that order is what the proof in
// StorageEngine.adoptLateBatches rests on.
import type { ObjectStore } from '../object-store/object-store.ts';
import { fetchManifest, keys } from './manifest.ts';
import type { Manifest } from './manifest.ts';

/** What a batch's acknowledgement needs to know of the manifest as the bucket has it. */
export interface ManifestView {
  etag: string;
  writerGeneration: number;
  uploadedLsn: number;
}

/** The manifest as this node last wrote or read it (a TimelineState): a HEAD that matches its ETag needs no GET. */
export interface KnownManifest {
  readonly id: string;
  readonly etag: string | null;
  readonly manifest: Manifest;
}

const unquoted = (etag: string): string => etag.replace(/"/g, '');

export class ManifestWatch {
  private readonly store: ObjectStore;
  private readonly known: KnownManifest;
  private inFlight: Promise<ManifestView | null> | null = null;
  private queued: Promise<ManifestView | null> | null = null;
  /** The last manifest fetched because it was not the known one (another node's, or ours being uploaded). */
  private fetched: ManifestView | null = null;

  constructor(store: ObjectStore, known: KnownManifest) {
    this.store = store;
    this.known = known;
  }

  /** The manifest as of a read that started after this call (null: there is none, the timeline was deleted). */
  read(): Promise<ManifestView | null> {
    if (this.queued) return this.queued; // starts once the read in flight is done: after this call
    if (!this.inFlight) return this.launch();
    // the read in flight may have started before the caller's put completed: it proves nothing for it
    const next = this.inFlight.then(noop, noop).then(() => {
      this.queued = null;
      return this.launch();
    });
    this.queued = next;
    return next;
  }

  private launch(): Promise<ManifestView | null> {
    const p = this.readNow();
    this.inFlight = p;
    const clear = (): void => {
      if (this.inFlight === p) this.inFlight = null;
    };
    p.then(clear, clear);
    return p;
  }

  private async readNow(): Promise<ManifestView | null> {
    const head = await this.store.head(keys.manifest(this.known.id));
    if (!head) return null;
    const etag = unquoted(head.etag);
    const { etag: knownEtag, manifest } = this.known;
    if (knownEtag !== null && unquoted(knownEtag) === etag) return view(etag, manifest);
    if (this.fetched?.etag === etag) return this.fetched;
    const found = await fetchManifest(this.store, this.known.id);
    if (!found) return null;
    this.fetched = view(unquoted(found.etag), found.manifest);
    return this.fetched;
  }
}

function view(etag: string, m: Manifest): ManifestView {
  return { etag, writerGeneration: m.writerGeneration ?? 0, uploadedLsn: m.uploadedLsn };
}

function noop(): void {}
