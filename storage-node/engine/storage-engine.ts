// The storage engine: owns every timeline of this node. It makes batches durable (write log with group commit,
// or the object store itself), freezes recent versions into layer files, uploads them with manifests,
// compacts (image layers) and garbage-collects, and recovers all of it on start.
// Several nodes share one bucket: a node adopts a timeline it does not know from the bucket on the first request
// naming it, hands one over (release: everything acknowledged into the bucket, then forgotten), and only does
// background work on timelines it writes, so that it never deletes what another node owns.
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { decodeBatch } from '../api/batch-codec.ts';
import type { BatchAck, CreateTimelineRequest, FileEntry, PageRef, ReleaseAnswer, TimelineInfo, WriteBatch, WriterAnswer } from '../api/types.ts';
import { PAGE_SIZE } from '../api/types.ts';
import { PreconditionFailedError } from '../object-store/object-store.ts';
import type { ObjectStore } from '../object-store/object-store.ts';
import { encodeLayer } from './layer-file.ts';
import type { LayerContent, LayerIndex } from './layer-file.ts';
import { LayerStore } from './layer-store.ts';
import type { ReadSource } from './layer-store.ts';
import { fetchManifest, keys, lsnHex, newManifest, parseManifest } from './manifest.ts';
import type { Manifest, ManifestLayer } from './manifest.ts';
import type { PageData } from './page.ts';
import { ConflictError, InvalidRequestError, LsnOutOfRangeError, NotFoundError, TimelineBusyError, WriteLogFailedError } from './errors.ts';
import { batchRecord } from './batch-builder.ts';
import { Timeline } from './timeline.ts';
import { WAL_END_SLACK } from './wal-position.ts';
import type { BlobLoader, PageVersion, PreparedBatch } from './timeline.ts';
import { newTimelineState } from './timeline-state.ts';
import type { TimelineState } from './timeline-state.ts';
import { ManifestWatch } from './manifest-watch.ts';
import { readWalObjects, walObjectState } from './wal-objects.ts';
import { WriteLog, encodeRecord } from './write-log.ts';
import { checkWriterGeneration, takenOverError } from './writer-fence.ts';
import type { LogRecord, TimelineCreateRecord } from './write-log.ts';

export type Durability = 'local' | 'object-store';

export interface EngineConfig {
  dataDir: string;
  objectStore: ObjectStore;
  /** `local`: acknowledge after the local fsync, upload later. `object-store`: acknowledge once in the bucket. */
  durability: Durability;
  /** Freeze a timeline's in-memory versions into a layer once they hold this many bytes. */
  freezeBytes: number;
  /** ...or once it has had no write for this long. */
  freezeIdleMs: number;
  /** Write an image layer once this many delta layers have accumulated since the last one. */
  compactAfterDeltaLayers: number;
  /** History younger than this is kept for branching and reads in the past. */
  retentionMs: number;
  /** Pages per part of an image layer (8192: 64 MiB). */
  imagePartPages: number;
  /** How often background work (freeze, compaction, GC) looks for something to do; 0 disables it. */
  backgroundIntervalMs: number;
  events?: EngineEvents;
}

export interface EngineEvents {
  pageRead?(source: ReadSource | 'memory', bytes: number): void;
  batch?(bytes: number, seconds: number): void;
  walSync?(seconds: number, records: number): void;
  upload?(kind: 'layer' | 'manifest' | 'wal', bytes: number): void;
  layerCount?(delta: number, image: number): void;
  warn?(msg: string, err?: unknown): void;
}

export const DEFAULT_ENGINE_CONFIG = {
  durability: 'local' as Durability,
  freezeBytes: 16 * 1024 * 1024,
  freezeIdleMs: 10_000,
  compactAfterDeltaLayers: 10,
  retentionMs: 7 * 24 * 3600 * 1000,
  imagePartPages: 8192,
  backgroundIntervalMs: 1000,
};

/** How many times a request takes a timeline up again when it was released or found stale under it. */
const MAX_RETAKES = 8;

const TIMELINE_ID_RE = /^[0-9a-f]{32}$/;


export function newTimelineId(): string {
  return randomUUID().replace(/-/g, '');
}

export class StorageEngine {
  readonly config: EngineConfig;
  private readonly store: ObjectStore;
  private readonly layers: LayerStore;
  private readonly wal: WriteLog | null;
  private readonly states = new Map<string, TimelineState>();
  private readonly replay = new Map<string, LogRecord[]>();
  /** Lookups of the bucket for timelines this node does not know, one per timeline for concurrent requests. */
  private readonly adopting = new Map<string, Promise<TimelineState | null>>();
  private timer: NodeJS.Timeout | null = null;
  private backgroundRunning = false;
  private closed = false;
  private walFailure: WriteLogFailedError | null = null;

  constructor(config: EngineConfig) {
    this.config = config;
    this.store = config.objectStore;
    this.layers = new LayerStore(join(config.dataDir, 'layers'), this.store, (source, bytes) => config.events?.pageRead?.(source, bytes));
    // In object-store mode the bucket is the log: a batch is acknowledged once its object is there.
    this.wal = config.durability === 'local' ? new WriteLog(join(config.dataDir, 'wal'), (s, n) => config.events?.walSync?.(s, n)) : null;
  }

  /**
   * Reads every manifest in the bucket (what listTimelines shows; each is read again when first loaded) and replays
   * the local write log; timelines' layers are loaded on first use.
   */
  async start(): Promise<void> {
    const objects = await this.store.list(keys.timelinesPrefix);
    const manifests = objects.filter((o) => o.key.endsWith('/manifest.json'));
    await Promise.all(
      manifests.map(async (o) => {
        const res = await this.store.get(o.key);
        if (!res) return;
        const m = parseManifest(o.key, res.body);
        const st = newTimelineState(m, res.etag);
        st.recheck = true;
        this.states.set(m.timelineId, st);
      }),
    );
    if (this.wal) await this.recover(this.wal);
    if (this.config.backgroundIntervalMs > 0) {
      this.timer = setInterval(() => void this.background(), this.config.backgroundIntervalMs);
      this.timer.unref();
    }
  }

  /** Replays the local write log: what it holds of a timeline is this node's, and is loaded now to be uploaded. */
  private async recover(wal: WriteLog): Promise<void> {
    for (const r of await wal.open()) {
      if (r.type === 'create') {
        if (!this.states.has(r.timeline.timelineId)) {
          const t = r.timeline;
          this.states.set(t.timelineId, newTimelineState(newManifest(t.timelineId, t.ancestorTimelineId, t.ancestorLsn, t.createdAt), null));
        }
      } else if (r.type === 'delete' || r.type === 'release') {
        // released: its records before this one are in the bucket; it is adopted again if asked for
        this.states.delete(r.timelineId);
        this.replay.delete(r.timelineId);
      } else {
        const list = this.replay.get(r.timelineId) ?? [];
        list.push(r);
        this.replay.set(r.timelineId, list);
      }
    }
    // Timelines with logged batches are loaded now, so that their log can be frozen and trimmed (one released and
    // adopted again since is in the bucket; one no longer there was deleted by another node).
    for (const id of [...this.replay.keys()]) {
      const st = this.states.get(id) ?? (await this.adopt(id));
      if (!st) this.replay.delete(id);
      else {
        st.owned = true;
        await this.load(id);
      }
    }
    for (const st of this.states.values()) {
      if (st.etag !== null) continue;
      st.owned = true;
      await this.uploadManifest(st);
    }
  }

  /** The timeline's state: in memory, or adopted from the bucket (made by another node, or released by this one). */
  private async known(id: string): Promise<TimelineState> {
    const st = this.states.get(id) ?? (await this.adopt(id));
    if (!st || st.deleted) throw new NotFoundError('timeline_not_found', `timeline ${id} not found`);
    return st;
  }

  /** Looks for the timeline's manifest in the bucket; concurrent requests for one timeline share the lookup. */
  private adopt(id: string): Promise<TimelineState | null> {
    let pending = this.adopting.get(id);
    if (!pending) {
      pending = this.readAdopted(id).finally(() => this.adopting.delete(id));
      this.adopting.set(id, pending);
    }
    return pending;
  }

  private async readAdopted(id: string): Promise<TimelineState | null> {
    if (!TIMELINE_ID_RE.test(id)) return null;
    const found = await fetchManifest(this.store, id);
    const current = this.states.get(id); // created, or adopted by start, meanwhile
    if (current) return current;
    if (!found || this.closed) return null;
    const st = newTimelineState(found.manifest, found.etag);
    this.states.set(id, st);
    return st;
  }

  /**
   * Forgets the timeline here (released, or another node wrote it): requests that still hold the state are refused
   * with `why`; new ones adopt it again from the bucket.
   */
  private detach(st: TimelineState, why: ConflictError): void {
    st.fenced ??= why;
    st.detached = true;
    if (this.states.get(st.id) === st) this.states.delete(st.id);
  }

  /**
   * A conditional write lost to another node. In object-store mode the bucket holds every acknowledged batch, so
   * the timeline is forgotten and the next request adopts it again with the other node's writes; in local mode the
   * log may hold batches the bucket does not, and the timeline stays fenced here (fail-stop) until a restart.
   */
  private fence(st: TimelineState, err: ConflictError): ConflictError {
    st.fenced = err;
    if (this.config.durability === 'object-store') this.detach(st, err);
    return err;
  }

  /** The timeline's in-memory model: layer indexes read, then the log (local or in the bucket) replayed. */
  private async load(id: string): Promise<Timeline> {
    return (await this.loaded(id)).t;
  }

  /** The timeline's state and model, loaded (and adopted first, if this node does not know it). */
  private async loaded(id: string): Promise<{ st: TimelineState; t: Timeline }> {
    const st = await this.known(id);
    if (st.timeline) return { st, t: st.timeline };
    if (!st.loading) {
      st.loading = this.doLoad(st).catch((e: unknown) => {
        st.loading = null;
        throw e;
      });
    }
    return { st, t: await st.loading };
  }

  /** A manifest read at start may be stale by the time the timeline is first used: read it again. */
  private async recheckManifest(st: TimelineState): Promise<void> {
    st.recheck = false;
    if (st.etag === null) return;
    const found = await fetchManifest(this.store, st.id);
    if (!found) {
      this.detach(st, new ConflictError('timeline_gone', `timeline ${st.id} was deleted by another storage node`));
      throw new NotFoundError('timeline_not_found', `timeline ${st.id} not found`);
    }
    if (found.etag === st.etag) return;
    st.manifest = found.manifest;
    st.etag = found.etag;
    st.writerGeneration = found.manifest.writerGeneration ?? 0;
  }

  private async doLoad(st: TimelineState): Promise<Timeline> {
    if (st.recheck) await this.recheckManifest(st);
    const m = st.manifest;
    const ancestor = m.ancestorTimelineId ? await this.load(m.ancestorTimelineId) : null;
    const t = new Timeline(m.timelineId, ancestor, m.ancestorLsn, m.createdAt);
    const ordered = [...m.layers].sort((a, b) => a.lsnEnd - b.lsnEnd || (a.kind === 'delta' ? -1 : 1));
    const indexes = await Promise.all(ordered.map((l) => this.layers.readIndex(m.timelineId, l.name, l.size)));
    indexes.forEach((ix, i) => {
      const name = ordered[i].name;
      for (const [path, lsn, value] of ix.ns) t.insertMeta(t.ns, path, { lsn, value });
      for (const [ino, lsn, size, cut] of ix.sizes) t.insertMeta(t.sizes, ino, { lsn, value: { size, cut } });
      for (const [key, lsn, kind, offset, length] of ix.pages) {
        t.insertPageVersion(key, { lsn, kind: kind === 'i' ? 'image' : 'delta', ref: { timelineId: m.timelineId, layer: name, offset, length } });
      }
      for (const [lsn, ms, wal] of ix.times) t.insertTime(lsn, ms, wal);
    });
    t.lastLsn = t.assignedLsn = Math.max(m.uploadedLsn, m.ancestorLsn);
    t.gcCutoffLsn = Math.max(m.gcCutoffLsn, m.ancestorLsn);
    // The bucket's WAL objects in either mode: a local-mode node may adopt a timeline an object-store node wrote.
    await this.replayWalObjects(st, t, m);
    for (const r of this.replay.get(m.timelineId) ?? []) if (r.type === 'batch') this.replayBatch(st, t, r.lsn, r.time, decodeBatch(r.batch));
    this.replay.delete(m.timelineId);
    st.timeline = t;
    return t;
  }

  /**
   * Applies the bucket's WAL objects after the model's head, as `m` tells the timeline's from a fenced writer's;
   * the latter are left where they are (wal-objects.ts: only the writer needing their LSN deletes them).
   * Whether any batch was applied.
   */
  private async replayWalObjects(st: TimelineState, t: Timeline, m: Manifest): Promise<boolean> {
    const wal = await readWalObjects(this.store, m, t.assignedLsn);
    for (const b of wal.batches) {
      st.walObjects.push(b.lsn);
      this.replayBatch(st, t, b.lsn, b.time, b.batch);
    }
    if (wal.staleFrom !== null) {
      this.config.events?.warn?.(`timeline ${m.timelineId}: the WAL objects from LSN ${wal.staleFrom} on were written by a writer fenced at LSN ${m.writerSinceLsn}; they are not the timeline's`);
    }
    return wal.batches.length > 0;
  }

  private replayBatch(st: TimelineState, t: Timeline, lsn: number, time: number, batch: WriteBatch): void {
    if (lsn <= t.assignedLsn) return; // already in a layer
    if (lsn !== t.assignedLsn + 1) throw new Error(`timeline ${t.id}: log has LSN ${lsn} after ${t.assignedLsn}; the log is incomplete`);
    const prepared = t.prepare(batch, time);
    this.applyPrepared(st, t, prepared);
    t.markDurable(lsn);
  }

  private applyPrepared(st: TimelineState, t: Timeline, p: PreparedBatch): void {
    t.apply(p);
    const versions: [string, PageVersion][] = [];
    for (const key of p.pages.keys()) versions.push([key, t.pages.get(key)!.at(-1)!]);
    st.unfrozen.push({ batch: p, versions });
  }

  private readonly loadBlob: BlobLoader = (ref) => this.layers.readBlob(ref);

  // ---- timelines ----

  async createTimeline(req: CreateTimelineRequest): Promise<TimelineInfo> {
    const id = req.timelineId ?? newTimelineId();
    if (!TIMELINE_ID_RE.test(id)) throw new InvalidRequestError('invalid_timeline_id', `timeline id must be 32 lowercase hex characters, got ${JSON.stringify(id)}`);
    // a chosen id may be another node's timeline: the bucket is asked (a random one cannot be)
    const existing = this.states.get(id) ?? (req.timelineId === undefined ? undefined : await this.adopt(id));
    if (existing && !existing.deleted) throw new ConflictError('timeline_exists', `timeline ${id} already exists`);
    let ancestorLsn = 0;
    const ancestorId = req.ancestorTimelineId ?? null;
    const points = [req.ancestorLsn, req.ancestorTimestamp, req.ancestorWalLsn].filter((x) => x !== undefined).length;
    if (points > 1) throw new InvalidRequestError('invalid_request', 'give one of ancestorLsn, ancestorTimestamp or ancestorWalLsn, not several');
    if (ancestorId === null && points > 0) {
      throw new InvalidRequestError('invalid_request', 'ancestorLsn, ancestorTimestamp and ancestorWalLsn need ancestorTimelineId');
    }
    let parent: Timeline | null = null;
    if (ancestorId !== null) {
      // a branch at the parent's head must see every write to it, if another node wrote it since it was loaded here
      parent = (await this.writable(ancestorId, true)).t;
      if (req.ancestorLsn !== undefined) {
        if (!Number.isSafeInteger(req.ancestorLsn) || req.ancestorLsn < 0) throw new InvalidRequestError('invalid_lsn', `ancestorLsn must be a non-negative integer`);
        parent.checkReadable(req.ancestorLsn);
        ancestorLsn = req.ancestorLsn;
      } else if (req.ancestorTimestamp !== undefined) {
        ancestorLsn = this.lsnForTimestamp(parent, req.ancestorTimestamp);
      } else if (req.ancestorWalLsn !== undefined) {
        ancestorLsn = lsnForWal(parent, req.ancestorWalLsn);
      } else {
        ancestorLsn = parent.lastLsn;
      }
    }
    const createdAt = Date.now();
    const m = newManifest(id, ancestorId, ancestorLsn, createdAt);
    const st = newTimelineState(m, null);
    st.owned = true;
    this.states.set(id, st);
    try {
      if (this.wal) {
        const rec: TimelineCreateRecord = { timelineId: id, ancestorTimelineId: ancestorId, ancestorLsn, createdAt };
        await this.wal.append({ type: 'create', timeline: rec });
        void st.lock.run(() => this.uploadManifest(st)).catch((e: unknown) => this.config.events?.warn?.(`manifest upload of new timeline ${id} failed; will retry`, e));
      } else {
        await this.uploadManifest(st);
      }
    } catch (e) {
      if (this.states.get(id) === st) this.states.delete(id);
      if (st.fenced?.code === 'manifest_conflict') throw new ConflictError('timeline_exists', `timeline ${id} already exists`);
      throw e;
    }
    st.timeline = new Timeline(id, parent, ancestorLsn, createdAt);
    return this.describe(st);
  }

  private lsnForTimestamp(t: Timeline, ts: string): number {
    const ms = Date.parse(ts);
    if (Number.isNaN(ms)) throw new InvalidRequestError('invalid_timestamp', `timestamp ${JSON.stringify(ts)} is not an ISO 8601 time`);
    if (ms > Date.now() + 1000) throw new InvalidRequestError('invalid_timestamp', `timestamp ${ts} is in the future`);
    const lsn = t.lsnForTime(ms);
    if (lsn < 0) throw new InvalidRequestError('timestamp_before_history', `timestamp ${ts} is before timeline ${t.id} was created`);
    t.checkReadable(lsn);
    return lsn;
  }

  private describe(st: TimelineState): TimelineInfo {
    const t = st.timeline;
    const m = st.manifest;
    const children = [...this.states.values()].filter((s) => !s.deleted && s.manifest.ancestorTimelineId === st.id).map((s) => s.id);
    return {
      timelineId: st.id,
      ancestorTimelineId: m.ancestorTimelineId,
      ancestorLsn: m.ancestorTimelineId ? m.ancestorLsn : null,
      lastLsn: t ? t.lastLsn : m.uploadedLsn,
      oldestReadableLsn: t ? t.gcCutoffLsn : m.gcCutoffLsn,
      logicalSize: t ? t.logicalSize(t.lastLsn) : 0,
      lastWalLsn: t ? t.walLsnAt(t.lastLsn) : null,
      ancestorWalLsn: t?.ancestor ? t.ancestor.walLsnAt(t.ancestorLsn) : null,
      createdAt: new Date(m.createdAt).toISOString(),
      children,
    };
  }

  async getTimeline(id: string): Promise<TimelineInfo> {
    return this.describe((await this.loaded(id)).st);
  }

  listTimelines(): TimelineInfo[] {
    return [...this.states.values()].filter((s) => !s.deleted).map((s) => this.describe(s));
  }

  async deleteTimeline(id: string): Promise<void> {
    const st = await this.known(id);
    const children = [...this.states.values()].filter((s) => !s.deleted && s.manifest.ancestorTimelineId === id);
    if (children.length > 0) {
      throw new ConflictError('timeline_has_children', `timeline ${id} has child branches (${children.map((c) => c.id).join(', ')}); delete them first`);
    }
    await st.lock.run(async () => {
      st.deleted = true;
      await this.wal?.append({ type: 'delete', timelineId: id });
      const objs = await this.store.list(keys.timelinePrefix(id));
      // The manifest goes first: without it the timeline no longer exists, whatever is left behind.
      await this.store.delete(keys.manifest(id));
      await Promise.all(objs.filter((o) => o.key !== keys.manifest(id)).map((o) => this.store.delete(o.key)));
      await this.layers.removeTimeline(id);
      this.states.delete(id);
    });
  }

  // ---- writes ----

  async writeBatch(id: string, batch: WriteBatch): Promise<BatchAck> {
    const started = process.hrtime.bigint();
    // Object-store mode needs no check against the bucket first: a batch at an LSN another node wrote is refused
    // by the create-once WAL object (lsn_conflict), and the timeline adopted again; a takeover this node was not
    // told of is found after the put (confirmWriter). A local-mode batch is acknowledged from the local log, so the
    // bucket is asked before a first one.
    const verify = this.wal !== null;
    let w = await this.writable(id, verify);
    // a release may have begun while this request resumed: the batch then goes to the timeline as adopted again
    for (let n = 0; this.notWritable(w.st, verify); n++) {
      if (n >= MAX_RETAKES) throw new TimelineBusyError(id);
      w = await this.writable(id, verify);
    }
    const { st, t } = w;
    if (st.fenced) throw st.fenced;
    if (this.walFailure) throw this.walFailure;
    // after the last await before the batch is applied: a takeover that came meanwhile refuses it
    checkWriterGeneration(id, st.writerGeneration, batch.writerGeneration);
    const prepared = t.prepare(batch, Date.now());
    this.applyPrepared(st, t, prepared);
    st.owned = true;
    st.lastWriteMs = Date.now();
    const { record, encoded } = batchRecord(id, prepared, batch);
    const durable = this.wal
      ? this.appendToLog(this.wal, record)
      : this.putWalObject(st, prepared.lsn, record, batch.writerGeneration).then(() => this.config.events?.upload?.('wal', encoded.length));
    const settled = durable.then(() => undefined, () => undefined);
    st.writing.add(settled);
    void settled.then(() => st.writing.delete(settled));
    await durable;
    t.markDurable(prepared.lsn);
    this.config.events?.batch?.(encoded.length, Number(process.hrtime.bigint() - started) / 1e9);
    if (t.openBytes >= this.config.freezeBytes) void this.freezeInBackground(st);
    return { lsn: prepared.lsn, time: new Date(prepared.time).toISOString() };
  }

  /**
   * A read-write compute takes the timeline: the writer generation goes up by one at once (batches of the older
   * one are refused from now on), and the answer comes once the new value is in the manifest in the object store
   * (it survives a restart or a kill -9) and the batches already applied are durable (the answer's lastLsn is the
   * head the new compute builds on).
   */
  async acquireWriter(id: string): Promise<WriterAnswer> {
    for (let n = 0; n < MAX_RETAKES; n++) {
      // verified: writerSinceLsn must be the real head, or another node's batches after it would pass for a fenced writer's
      const { st, t } = await this.writable(id, true);
      if (st.fenced && !st.detached) throw st.fenced;
      if (this.walFailure) throw this.walFailure;
      const generation = ++st.writerGeneration;
      await Promise.all([...st.writing]);
      const taken = await st.lock.run(async () => {
        if (st.deleted) throw new NotFoundError('timeline_not_found', `timeline ${id} not found`);
        if (st.detached) return false; // released, or changed by another node, meanwhile: take it as it is now
        if (st.fenced) throw st.fenced;
        // A later takeover may have written it already. The pair goes together: batches of older generations
        // after writerSinceLsn were written by a node that had not heard of this takeover (wal-objects.ts).
        if ((st.manifest.writerGeneration ?? 0) < st.writerGeneration) {
          const before = st.manifest;
          await this.uploadManifest(st, { writerGeneration: st.writerGeneration, writerSinceLsn: t.lastLsn });
          await this.adoptLateBatches(st, t, before);
        }
        return true;
      }).catch((e: unknown) => {
        // another node changed the manifest since this one read it (it froze batches of its own): take it as it is now
        if (e instanceof ConflictError && e.code === 'manifest_conflict' && st.detached) return false;
        throw e;
      });
      if (taken) return { generation, timeline: this.describe(st) };
    }
    throw new TimelineBusyError(id);
  }

  /**
   * A takeover's manifest is in the bucket. WAL objects after the head it was built on were put by a node that had
   * not been told of the takeover; it may acknowledge them. They are taken into the timeline (their writer generation
   * is the one before the takeover's: `before`), and writerSinceLsn moved past them, until none is found.
   *
   * Why, with confirmWriter, every batch an unaware node A acknowledges is kept, and every batch kept precedes the new
   * writer's first one (the object store is linearizable, as S3 and the local folder are). Let U be the completion of
   * this takeover's first manifest put (writerGeneration g+1). A acknowledges batch L only after (1) its create-once
   * put of L completed, then (2) a manifest read that started after that put found no generation above L's (g), so
   * that read, hence the put, came before U, and (3) every batch before L passed (1) and (2) too. So the objects of
   * the head's successors up to L were all put before U. The HEAD below starts after U: if A acknowledged any batch
   * after the head, it finds the head's successor, and the replay (its listing also starts after U) finds all of
   * them, contiguous, applies them and moves writerSinceLsn to or past L. (A batch of an even older generation than
   * `before`'s was fenced by an earlier takeover the same way: if acknowledged, it is at or before the head.)
   * Nothing A acknowledges is therefore after writerSinceLsn, where the load rule (wal-objects.ts) cuts. A batch put after U reads the manifest after U and is refused by A; it may still be kept
   * here if the listing saw it (a refusal whose batch survives, like an acknowledgement lost on the way: never the
   * reverse). The new writer gets this node's answer only now, so its first batch is at writerSinceLsn + 1, after all
   * of them; an object still in its way there is a refused one, deleted before its put (createWalObject).
   */
  private async adoptLateBatches(st: TimelineState, t: Timeline, before: Manifest): Promise<void> {
    for (let n = 0; n < MAX_RETAKES; n++) {
      if (!(await this.store.head(keys.walObject(st.id, t.assignedLsn + 1)))) return;
      // nothing applied: the object is of a writer an earlier takeover fenced (refused by its node, never the timeline's)
      if (!(await this.replayWalObjects(st, t, before))) return;
      this.config.events?.warn?.(`timeline ${st.id}: batches up to LSN ${t.lastLsn} landed while it was taken over; they are kept`);
      await this.uploadManifest(st, { writerSinceLsn: t.lastLsn });
    }
    throw new TimelineBusyError(st.id);
  }

  /**
   * The timeline as a write (or a branch at its head) must find it: loaded; not being released (the request waits
   * for the release and takes the timeline as adopted again); and with `verify`, unless this node has written it
   * since loading it, unchanged in the bucket since then (else it is adopted again, with what another node wrote).
   */
  private async writable(id: string, verify: boolean): Promise<{ st: TimelineState; t: Timeline }> {
    for (let n = 0; n < MAX_RETAKES; n++) {
      const { st, t } = await this.loaded(id);
      const wait = this.notWritable(st, verify);
      if (!wait) return { st, t };
      await wait;
    }
    throw new TimelineBusyError(id);
  }

  /** Null when a write may go to `st` now; else what to wait for before taking the timeline up again. */
  private notWritable(st: TimelineState, verify: boolean): Promise<unknown> | null {
    if (st.detached) return st.releasing?.catch(() => undefined) ?? Promise.resolve();
    if (st.releasing) return st.releasing.catch(() => undefined);
    if (!verify || st.owned || st.verified || st.fenced) return null;
    st.checking ??= this.checkUnchanged(st).finally(() => {
      st.checking = null;
    });
    return st.checking;
  }

  /** A timeline this node loaded but has not written: still as the bucket has it? (Its manifest, and no next batch.) */
  private async checkUnchanged(st: TimelineState): Promise<void> {
    const t = st.timeline!;
    const [manifest, next] = await Promise.all([
      this.store.head(keys.manifest(st.id)),
      this.store.head(keys.walObject(st.id, t.assignedLsn + 1)),
    ]);
    const unquoted = (etag: string | null | undefined) => etag?.replace(/"/g, '') ?? null;
    // a fenced writer's object in the way is none (the write deletes it: createWalObject)
    const nextIsNew = next !== null && (await walObjectState(this.store, st.manifest, t.assignedLsn + 1)) === 'live';
    if (!nextIsNew && unquoted(manifest?.etag) === unquoted(st.etag)) st.verified = true;
    else if (!st.owned) this.detach(st, new ConflictError('timeline_changed', `timeline ${st.id} was changed by another storage node; it is loaded again`));
  }

  // ---- handing a timeline over to another node ----

  /**
   * Hands the timeline over: once the batches in flight have settled, everything acknowledged is frozen into a
   * layer and in the bucket with the manifest (the local log may forget it), and the timeline is dropped from memory,
   * so that another node adopts it with nothing missing. Its branches loaded here are released first, the same way
   * (their model holds this one's). A later request here adopts it again from the bucket.
   */
  async releaseTimeline(id: string): Promise<ReleaseAnswer> {
    await this.known(id);
    const descendants: string[] = [];
    for (const child of [...this.states.values()]) {
      if (child.deleted || !child.timeline || child.manifest.ancestorTimelineId !== id) continue;
      const r = await this.releaseTimeline(child.id).catch((e: unknown) => {
        if (e instanceof NotFoundError) return null; // deleted meanwhile
        throw e;
      });
      if (r) descendants.push(...r.descendants, child.id);
    }
    for (let n = 0; n < MAX_RETAKES; n++) {
      const { st, t } = await this.loaded(id);
      if (st.releasing) return { ...(await st.releasing), descendants }; // one release at a time: it answers both
      if (st.detached) continue;
      const releasing = this.release(st, t);
      st.releasing = releasing;
      try {
        return { ...(await releasing), descendants };
      } catch (e) {
        st.releasing = null; // still here: writes go on
        throw e;
      }
    }
    throw new TimelineBusyError(id);
  }

  private async release(st: TimelineState, t: Timeline): Promise<ReleaseAnswer> {
    if (this.walFailure) throw this.walFailure;
    await Promise.all([...st.writing]); // batches applied before the release began; later ones wait for it
    const uploadedLsn = await this.freeze(st);
    await st.lock.run(async () => {
      if (st.deleted) throw new NotFoundError('timeline_not_found', `timeline ${st.id} not found`);
      if (st.fenced) throw st.fenced;
      if (st.etag === null || st.manifest.uploadedLsn < t.lastLsn) {
        throw new Error(`timeline ${st.id}: the bucket holds LSNs up to ${st.manifest.uploadedLsn} of ${t.lastLsn} after freezing; not released`);
      }
      // a restart forgets it too (its records in the log are in the bucket now)
      await this.wal?.append({ type: 'release', timelineId: st.id });
      this.replay.delete(st.id);
      this.detach(st, new ConflictError('timeline_released', `timeline ${st.id} was handed over by this storage node; ask again`));
    });
    await this.trimWal();
    return { timelineId: st.id, lastLsn: t.lastLsn, uploadedLsn, descendants: [] };
  }

  /** Local mode: the batch is durable once the write log has fsynced it. */
  private async appendToLog(wal: WriteLog, record: LogRecord): Promise<void> {
    try {
      await wal.append(record);
    } catch (e) {
      // The batch is applied in memory but not durable, and later batches would build on it: stop writing
      // (fail-stop, like a Postgres PANIC). A restart replays the log, which holds every acknowledged batch.
      this.walFailure = new WriteLogFailedError(`the storage node's write log failed (${(e as Error).message}); it accepts no writes until it is restarted`, e);
      throw this.walFailure;
    }
  }

  /**
   * Object-store mode: the batch is durable once its object is in the bucket, the timeline is still its writer's
   * (confirmWriter), and every earlier batch is durable too. A failed put fences the timeline: later batches build on
   * the lost one and are never acknowledged.
   */
  private async putWalObject(st: TimelineState, lsn: number, record: LogRecord, generation: number | undefined): Promise<void> {
    const put = this.createWalObject(st, lsn, encodeRecord(record));
    const previous = st.durableChain;
    const mine = (async () => {
      try {
        await put;
      } catch (e) {
        if (e instanceof PreconditionFailedError) {
          throw this.fence(st, new ConflictError('lsn_conflict', `another storage node already wrote LSN ${lsn} of timeline ${st.id}; this node stopped writing to it`));
        }
        // the bucket may or may not have it: later batches cannot be acknowledged on top of it
        st.fenced = new ConflictError('write_failed', `writing LSN ${lsn} of timeline ${st.id} to the object store failed: ${(e as Error).message}`);
        throw e;
      }
      await this.confirmWriter(st, lsn, generation);
      await previous;
      if (st.fenced) throw st.fenced; // an earlier batch failed: this one builds on it and cannot be acknowledged
    })();
    st.durableChain = mine.catch(() => {});
    await mine;
    st.walObjects.push(lsn);
  }

  /**
   * The create-once put of a WAL object. An object in its way that a writer fenced by the timeline's takeover left
   * (its node refused it: confirmWriter) is deleted first, as the LSN is this writer's (wal-objects.ts).
   */
  private async createWalObject(st: TimelineState, lsn: number, body: Buffer): Promise<void> {
    const key = keys.walObject(st.id, lsn);
    for (let n = 0; ; n++) {
      try {
        await this.store.put(key, body, { ifNoneMatch: '*' });
        return;
      } catch (e) {
        if (!(e instanceof PreconditionFailedError) || n >= 2 || (await walObjectState(this.store, st.manifest, lsn)) === 'live') throw e;
        this.config.events?.warn?.(`timeline ${st.id}: deleting the WAL object at LSN ${lsn} a fenced writer left, to write there`);
        await this.store.delete(key);
      }
    }
  }

  /**
   * The batch's WAL object is in the bucket; before it is acknowledged, the manifest is read again (a read that
   * started after the put: manifest-watch.ts). A newer writer generation there means another node took the
   * timeline and this one was not told (frozen, partitioned): the batch is refused (writer_fenced), and the timeline
   * dropped here, to be adopted again with the new owner's writes. Its object stays: the new owner cuts it, or kept it
   * if it saw it in time (adoptLateBatches, which also argues why nothing acknowledged here is ever cut).
   */
  private async confirmWriter(st: TimelineState, lsn: number, generation: number | undefined): Promise<void> {
    st.watch ??= new ManifestWatch(this.store, st);
    let seen: Awaited<ReturnType<ManifestWatch['read']>>;
    try {
      seen = await st.watch.read();
    } catch (e) {
      this.fence(st, new ConflictError('write_failed', `confirming LSN ${lsn} of timeline ${st.id} against its manifest failed: ${(e as Error).message}`));
      throw e;
    }
    if (seen === null) {
      this.detach(st, new ConflictError('timeline_gone', `timeline ${st.id} was deleted by another storage node`));
      throw new NotFoundError('timeline_not_found', `timeline ${st.id} not found`);
    }
    if (seen.writerGeneration > (generation ?? 0)) throw this.fence(st, takenOverError(st.id, seen.writerGeneration, generation));
    // Another node froze batches up to this LSN (its WAL object had been deleted, so the put went through). This
    // node's own uploads never cover a batch not yet acknowledged.
    if (seen.uploadedLsn >= lsn) {
      throw this.fence(st, new ConflictError('lsn_conflict', `another storage node already wrote LSN ${lsn} of timeline ${st.id}; this node stopped writing to it`));
    }
  }

  // ---- reads ----

  private async readableAt(id: string, lsn?: number): Promise<{ t: Timeline; lsn: number }> {
    const t = await this.load(id);
    const at = lsn ?? t.lastLsn;
    t.checkReadable(at);
    return { t, lsn: at };
  }

  async readPage(id: string, path: string, page: number, lsn?: number): Promise<Buffer> {
    if (!Number.isSafeInteger(page) || page < 0) throw new InvalidRequestError('invalid_page', `page must be a non-negative integer`);
    const r = await this.readableAt(id, lsn);
    return r.t.readPage(path, page, r.lsn, this.loadBlob);
  }

  async readPages(id: string, refs: PageRef[], lsn?: number): Promise<{ lsn: number; pages: Buffer[] }> {
    const r = await this.readableAt(id, lsn);
    for (const ref of refs) {
      if (!Number.isSafeInteger(ref.page) || ref.page < 0) throw new InvalidRequestError('invalid_page', `page must be a non-negative integer`);
    }
    const pages = await Promise.all(refs.map((ref) => r.t.readPage(ref.path, ref.page, r.lsn, this.loadBlob)));
    return { lsn: r.lsn, pages };
  }

  async listFiles(id: string, lsn?: number): Promise<{ lsn: number; files: FileEntry[] }> {
    const r = await this.readableAt(id, lsn);
    return { lsn: r.lsn, files: r.t.listFiles(r.lsn) };
  }

  /** The LSN as of a time, or where Postgres' WAL reached a position; with its time and WAL position. */
  async lsnAt(id: string, at: { timestamp: string } | { walLsn: number }): Promise<{ lsn: number; time: string | null; walLsn: number | null }> {
    const t = await this.load(id);
    const lsn = 'timestamp' in at ? this.lsnForTimestamp(t, at.timestamp) : lsnForWal(t, at.walLsn);
    const ms = t.timeOfLsn(lsn);
    return { lsn, time: ms === null ? null : new Date(ms).toISOString(), walLsn: t.walLsnAt(lsn) };
  }

  async timeOf(id: string, lsn: number): Promise<{ lsn: number; time: string | null }> {
    const t = await this.load(id);
    t.checkReadable(lsn);
    const ms = t.timeOfLsn(lsn);
    return { lsn, time: ms === null ? null : new Date(ms).toISOString() };
  }

  // ---- layers: freeze, compaction, GC ----

  /**
   * Writes the manifest with `changes` applied. The in-memory manifest changes only once the object store has it:
   * what it says (uploadedLsn, layers) decides what the write log may drop and what GC may remove.
   */
  private async uploadManifest(st: TimelineState, changes: Partial<Manifest> = {}): Promise<void> {
    // the writer generation changes only with a takeover's own upload (acquireWriter: with writerSinceLsn)
    const next: Manifest = { ...st.manifest, ...changes, generation: st.manifest.generation + 1 };
    const body = Buffer.from(JSON.stringify(next, null, 1));
    try {
      const { etag } = await this.store.put(keys.manifest(st.id), body, st.etag === null ? { ifNoneMatch: '*' } : { ifMatch: st.etag });
      st.etag = etag;
      st.manifest = next;
      this.config.events?.upload?.('manifest', body.length);
      if (changes.layers) this.reportLayers();
    } catch (e) {
      if (e instanceof PreconditionFailedError) {
        throw this.fence(st, new ConflictError(
          'manifest_conflict',
          `timeline ${st.id} was changed in the object store by another storage node (manifest generation ${st.manifest.generation} is stale); this node stopped writing to it`,
        ));
      }
      throw e;
    }
  }

  private freezeInBackground(st: TimelineState): Promise<void> {
    return this.freeze(st).then(() => undefined, (e: unknown) => this.config.events?.warn?.(`freezing timeline ${st.id} failed`, e));
  }

  /** Freezes everything durable and in memory into one delta layer, uploads it and the manifest. */
  private freeze(st: TimelineState): Promise<number> {
    return st.lock.run(async () => {
      const t = st.timeline;
      if (!t || st.deleted) return st.manifest.uploadedLsn;
      if (st.fenced) throw st.fenced;
      const upto = t.lastLsn;
      const take = st.unfrozen.filter((u) => u.batch.lsn <= upto);
      if (take.length === 0) {
        if (st.etag === null) await this.uploadManifest(st);
        return st.manifest.uploadedLsn;
      }
      const content: LayerContent = {
        timelineId: st.id, kind: 'delta', lsnStart: take[0].batch.lsn, lsnEnd: upto, ns: [], sizes: [], pages: [], times: [],
      };
      for (const { batch } of take) {
        for (const [path, value] of batch.ns) content.ns.push([path, batch.lsn, value]);
        for (const [ino, value] of batch.sizes) content.sizes.push([ino, batch.lsn, value]);
        for (const [key, data] of batch.pages) content.pages.push([key, batch.lsn, data]);
        content.times.push(batch.wal === undefined ? [batch.lsn, batch.time] : [batch.lsn, batch.time, batch.wal]);
      }
      const { name, index: written, entry } = await this.writeLayer(st, content);
      const walDone = st.walObjects.filter((l) => l <= upto);
      await this.uploadManifest(st, { uploadedLsn: upto, layers: [...st.manifest.layers, entry] });
      // The versions now live in the layer: drop their bytes from memory.
      const index = new Map<string, number>();
      let pi = 0;
      for (const { batch } of take) for (const key of batch.pages.keys()) index.set(`${batch.lsn}:${key}`, pi++);
      for (const { batch, versions } of take) {
        for (const [key, v] of versions) {
          const entry = written.pages[index.get(`${batch.lsn}:${key}`)!];
          v.ref = { timelineId: st.id, layer: name, offset: entry[3], length: entry[4] };
          const d = v.data!;
          t.openBytes -= d.kind === 'image' ? d.bytes.length : d.ranges.reduce((n, r) => n + r.bytes.length, 0);
          delete v.data;
        }
      }
      st.unfrozen = st.unfrozen.filter((u) => u.batch.lsn > upto);
      if (walDone.length > 0) {
        await Promise.all(walDone.map((l) => this.store.delete(keys.walObject(st.id, l))));
        st.walObjects = st.walObjects.filter((l) => l > upto);
      }
      await this.trimWal();
      return upto;
    });
  }

  /** Uploads a layer file; it becomes part of the timeline only when a manifest listing its entry is written. */
  private async writeLayer(st: TimelineState, content: LayerContent): Promise<{ name: string; index: LayerIndex; entry: ManifestLayer }> {
    const name = `${content.kind}-${lsnHex(content.lsnStart)}-${lsnHex(content.lsnEnd)}-${randomBytes(4).toString('hex')}.layer`;
    const { bytes, index } = encodeLayer(content);
    await this.layers.put(st.id, name, bytes);
    this.config.events?.upload?.('layer', bytes.length);
    return { name, index, entry: { name, kind: content.kind, lsnStart: content.lsnStart, lsnEnd: content.lsnEnd, size: bytes.length } };
  }

  private reportLayers(): void {
    let delta = 0;
    let image = 0;
    for (const st of this.states.values()) for (const l of st.manifest.layers) l.kind === 'delta' ? delta++ : image++;
    this.config.events?.layerCount?.(delta, image);
  }

  private async trimWal(): Promise<void> {
    if (!this.wal) return;
    await this.wal.rotate();
    await this.wal.trim((tl, maxLsn) => {
      const st = this.states.get(tl);
      if (!st) return true; // deleted
      return st.etag !== null && st.manifest.uploadedLsn >= maxLsn;
    });
  }

  /** Makes everything durable so far part of uploaded layers (the write log can then be dropped). */
  async checkpoint(id: string): Promise<{ uploadedLsn: number; layers: number }> {
    const { st } = await this.loaded(id);
    const uploadedLsn = await this.freeze(st);
    return { uploadedLsn, layers: st.manifest.layers.length };
  }

  /**
   * Writes an image layer at the timeline's uploaded LSN: every page this timeline wrote that is still part of a
   * live file, plus a full snapshot of file metadata. Reads then never walk more than one image back, and GC
   * can drop the layers before it.
   */
  async compact(id: string): Promise<{ imageLayer: string | null; parts: number; pages: number }> {
    const { st, t } = await this.loaded(id);
    return this.compactLoaded(st, t);
  }

  private async compactLoaded(st: TimelineState, t: Timeline): Promise<{ imageLayer: string | null; parts: number; pages: number }> {
    const id = st.id;
    await this.freeze(st);
    return st.lock.run(async () => {
      if (st.fenced) throw st.fenced;
      const at = st.manifest.uploadedLsn;
      if (st.manifest.layers.some((l) => l.kind === 'image' && l.lsnEnd === at)) return { imageLayer: null, parts: 0, pages: 0 };
      const live = new Map<string, number>(); // inode -> size
      for (const f of t.listFiles(at)) {
        const e = t.entryAt(f.path, at);
        if (e?.type === 'file') live.set(e.ino, f.size);
      }
      const first: LayerContent = { timelineId: id, kind: 'image', lsnStart: at, lsnEnd: at, ns: [], sizes: [], pages: [], times: [] };
      const allPaths = new Set<string>();
      for (let cur: Timeline | null = t; cur; cur = cur.ancestor) for (const p of cur.ns.keys()) allPaths.add(p);
      for (const p of allPaths) first.ns.push([p, at, t.entryAt(p, at)]);
      for (const [ino, size] of live) first.sizes.push([ino, at, { size, cut: size }]);
      // Written in parts of at most imagePartPages pages (the first also holds the metadata snapshot), yielding
      // between pages, so that compacting a large timeline never holds the event loop or a huge buffer.
      const written: { name: string; index: LayerIndex; entry: ManifestLayer }[] = [];
      let part = first;
      let pages = 0;
      for (const key of [...t.pages.keys()]) {
        const slash = key.lastIndexOf('/');
        const ino = key.slice(0, slash);
        const page = Number(key.slice(slash + 1));
        const size = live.get(ino);
        if (size === undefined || page * PAGE_SIZE >= size) continue;
        const bytes = await t.readInodePage(ino, page, at, this.loadBlob);
        part.pages.push([key, at, { kind: 'image', bytes } satisfies PageData]);
        pages++;
        if (pages % 256 === 0) await new Promise((r) => setImmediate(r));
        if (part.pages.length >= this.config.imagePartPages) {
          written.push(await this.writeLayer(st, part));
          part = { ...first, ns: [], sizes: [], pages: [] };
        }
      }
      if (part.pages.length > 0 || part === first) written.push(await this.writeLayer(st, part));
      await this.uploadManifest(st, { layers: [...st.manifest.layers, ...written.map((w) => w.entry)] });
      for (const { name, index } of written) {
        for (const [key, lsn, , offset, length] of index.pages) {
          t.insertPageVersion(key, { lsn, kind: 'image', ref: { timelineId: id, layer: name, offset, length } });
        }
      }
      for (const [p, lsn, value] of first.ns) t.insertMeta(t.ns, p, { lsn, value });
      for (const [ino, lsn, value] of first.sizes) t.insertMeta(t.sizes, ino, { lsn, value });
      return { imageLayer: written[0].name, parts: written.length, pages };
    });
  }

  /**
   * Drops layers that no read at or after the GC cutoff needs: the cutoff is the retention window's start,
   * held back by every child branch point; layers entirely older than the newest image layer at or before
   * the cutoff are removed.
   */
  async gc(id: string, now = Date.now()): Promise<{ cutoffLsn: number; layersRemoved: number }> {
    const { st, t } = await this.loaded(id);
    return this.gcLoaded(st, t, now);
  }

  private gcLoaded(st: TimelineState, t: Timeline, now: number): Promise<{ cutoffLsn: number; layersRemoved: number }> {
    const id = st.id;
    return st.lock.run(async () => {
      if (st.fenced) throw st.fenced;
      let cutoff = Math.min(st.manifest.uploadedLsn, Math.max(t.lsnForTime(now - this.config.retentionMs), t.ancestorLsn));
      for (const s of this.states.values()) {
        if (!s.deleted && s.manifest.ancestorTimelineId === id) cutoff = Math.min(cutoff, s.manifest.ancestorLsn);
      }
      const image = st.manifest.layers
        .filter((l) => l.kind === 'image' && l.lsnEnd <= cutoff)
        .sort((a, b) => b.lsnEnd - a.lsnEnd)[0];
      if (!image) return { cutoffLsn: t.gcCutoffLsn, layersRemoved: 0 };
      const horizon = image.lsnEnd;
      const doomed = st.manifest.layers.filter((l) => l.lsnEnd < horizon);
      if (doomed.length === 0 && t.gcCutoffLsn >= horizon) return { cutoffLsn: t.gcCutoffLsn, layersRemoved: 0 };
      const doomedNames = new Set(doomed.map((l) => l.name));
      await this.uploadManifest(st, { gcCutoffLsn: horizon, layers: st.manifest.layers.filter((l) => !doomedNames.has(l.name)) });
      // In memory: versions older than the horizon are superseded by the image layer's snapshot.
      t.gcCutoffLsn = horizon;
      for (const [key, arr] of t.pages) {
        const kept = arr.filter((v) => !(v.ref && doomedNames.has(v.ref.layer)));
        if (kept.length === 0) t.pages.delete(key);
        else t.pages.set(key, kept);
      }
      for (const map of [t.ns, t.sizes] as const) {
        for (const [key, arr] of map) {
          const kept = (arr as { lsn: number }[]).filter((v) => v.lsn >= horizon);
          if (kept.length === 0) map.delete(key);
          else map.set(key, kept as never);
        }
      }
      const firstTime = t.times.findIndex((x) => x.lsn >= horizon);
      t.times.splice(0, firstTime < 0 ? t.times.length : firstTime);
      await Promise.all(doomed.map((l) => this.layers.remove(id, l.name)));
      return { cutoffLsn: horizon, layersRemoved: doomed.length };
    });
  }

  private async background(): Promise<void> {
    if (this.backgroundRunning || this.closed) return;
    this.backgroundRunning = true;
    try {
      const now = Date.now();
      for (const st of [...this.states.values()]) {
        const t = st.timeline;
        // only what this node writes: a timeline it merely read (an ancestor, one another node writes) is not its
        if (!t || st.deleted || st.fenced || !st.owned || st.releasing) continue;
        if (st.etag === null) await st.lock.run(() => this.uploadManifest(st)).catch((e: unknown) => this.config.events?.warn?.(`manifest upload of ${st.id} failed`, e));
        if (st.unfrozen.length > 0 && (t.openBytes >= this.config.freezeBytes || now - st.lastWriteMs >= this.config.freezeIdleMs)) {
          await this.freezeInBackground(st);
        }
        const lastImage = Math.max(0, ...st.manifest.layers.filter((l) => l.kind === 'image').map((l) => l.lsnEnd));
        const deltasSince = st.manifest.layers.filter((l) => l.kind === 'delta' && l.lsnEnd > lastImage).length;
        if (deltasSince >= this.config.compactAfterDeltaLayers) {
          // this state, not whatever a request adopted meanwhile under the same id
          await this.compactLoaded(st, t).catch((e: unknown) => this.config.events?.warn?.(`compaction of ${st.id} failed`, e));
          await this.gcLoaded(st, t, Date.now()).catch((e: unknown) => this.config.events?.warn?.(`GC of ${st.id} failed`, e));
        }
      }
    } finally {
      this.backgroundRunning = false;
    }
  }

  /** Stops background work, freezes and uploads what is in memory (graceful shutdown), closes files. */
  async close(options: { flush?: boolean } = {}): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    while (this.backgroundRunning) await new Promise((r) => setTimeout(r, 10));
    // Let in-flight freezes and manifest uploads finish before files are closed.
    await Promise.all([...this.states.values()].map((st) => st.lock.run(async () => {})));
    if (options.flush !== false) {
      for (const st of this.states.values()) {
        if (st.timeline && st.owned && !st.fenced && !st.deleted && (st.unfrozen.length > 0 || st.etag === null)) await this.freezeInBackground(st);
      }
    }
    await this.wal?.close();
    this.layers.close();
    await this.store.close?.();
  }

  /** Counters for tests and metrics. */
  stats(): { timelines: number; loaded: number; walFsyncs: number; walSegments: number } {
    return {
      timelines: this.states.size,
      loaded: [...this.states.values()].filter((s) => s.timeline).length,
      walFsyncs: this.wal?.fsyncs ?? 0,
      walSegments: this.wal?.segmentCount() ?? 0,
    };
  }
}

/** The timeline's LSN for a Postgres WAL position (Timeline.lsnForWal), readable, and not past its head. */
function lsnForWal(t: Timeline, wal: number): number {
  const head = t.walLsnAt(t.lastLsn);
  if (head === null) throw new LsnOutOfRangeError(`timeline ${t.id} has no Postgres WAL yet: no WAL position can be named in it`);
  if (wal > head + WAL_END_SLACK) {
    throw new LsnOutOfRangeError(`WAL position ${formatWalLsn(wal)} is ahead of timeline ${t.id}'s last WAL position ${formatWalLsn(head)}`, 'lsn_ahead');
  }
  const lsn = t.lsnForWal(wal, t.lastLsn);
  if (lsn < 0) throw new LsnOutOfRangeError(`WAL position ${formatWalLsn(wal)} is before timeline ${t.id}'s history`);
  t.checkReadable(lsn);
  return lsn;
}

/** As Postgres prints an LSN: two 32-bit halves in upper-case hex. */
function formatWalLsn(n: number): string {
  return `${Math.floor(n / 0x1_0000_0000).toString(16).toUpperCase()}/${(n % 0x1_0000_0000).toString(16).toUpperCase()}`;
}
