// The storage engine: owns every timeline of this node. It makes batches durable (write log with group commit,
// or the object store itself), freezes recent versions into layer files, uploads them with manifests,
// compacts (image layers) and garbage-collects, and recovers all of it on start.
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { decodeBatch } from '../api/batch-codec.ts';
import type { BatchAck, CreateTimelineRequest, FileEntry, PageRef, TimelineInfo, WriteBatch } from '../api/types.ts';
import { PAGE_SIZE } from '../api/types.ts';
import { PreconditionFailedError } from '../object-store/object-store.ts';
import type { ObjectStore } from '../object-store/object-store.ts';
import { encodeLayer } from './layer-file.ts';
import type { LayerContent, LayerIndex } from './layer-file.ts';
import { LayerStore } from './layer-store.ts';
import type { ReadSource } from './layer-store.ts';
import { keys, lsnHex, newManifest, parseManifest } from './manifest.ts';
import type { Manifest, ManifestLayer } from './manifest.ts';
import type { PageData } from './page.ts';
import { ConflictError, InvalidRequestError, LsnOutOfRangeError, NotFoundError, WriteLogFailedError } from './errors.ts';
import { batchRecord } from './batch-builder.ts';
import { Timeline } from './timeline.ts';
import { WAL_END_SLACK } from './wal-position.ts';
import type { BlobLoader, PageVersion, PreparedBatch } from './timeline.ts';
import { WriteLog, decodeRecords, encodeRecord } from './write-log.ts';
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

interface Unfrozen {
  batch: PreparedBatch;
  versions: [string, PageVersion][];
}

class Mutex {
  private tail: Promise<void> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(() => undefined, () => undefined);
    return result;
  }
}

interface TimelineState {
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
}

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

  /** Loads every manifest and replays the local write log; timelines' layers are loaded on first use. */
  async start(): Promise<void> {
    const objects = await this.store.list(keys.timelinesPrefix);
    const manifests = objects.filter((o) => o.key.endsWith('/manifest.json'));
    await Promise.all(
      manifests.map(async (o) => {
        const res = await this.store.get(o.key);
        if (!res) return;
        const m = parseManifest(o.key, res.body);
        this.states.set(m.timelineId, this.newState(m, res.etag));
      }),
    );
    if (this.wal) {
      const records = await this.wal.open();
      for (const r of records) {
        if (r.type === 'create') {
          if (!this.states.has(r.timeline.timelineId)) {
            const t = r.timeline;
            this.states.set(t.timelineId, this.newState(newManifest(t.timelineId, t.ancestorTimelineId, t.ancestorLsn, t.createdAt), null));
          }
        } else if (r.type === 'delete') {
          this.states.delete(r.timelineId);
          this.replay.delete(r.timelineId);
        } else {
          const list = this.replay.get(r.timelineId) ?? [];
          list.push(r);
          this.replay.set(r.timelineId, list);
        }
      }
      // Timelines with logged batches are loaded now, so that their log can be frozen and trimmed.
      for (const id of [...this.replay.keys()]) if (this.states.has(id)) await this.load(id);
      for (const st of this.states.values()) if (st.etag === null) await this.uploadManifest(st);
    }
    if (this.config.backgroundIntervalMs > 0) {
      this.timer = setInterval(() => void this.background(), this.config.backgroundIntervalMs);
      this.timer.unref();
    }
  }

  private newState(m: Manifest, etag: string | null): TimelineState {
    return {
      id: m.timelineId, manifest: m, etag, timeline: null, loading: null, unfrozen: [], lock: new Mutex(), fenced: null,
      lastWriteMs: 0, durableChain: Promise.resolve(), walObjects: [], deleted: false,
    };
  }

  private state(id: string): TimelineState {
    const st = this.states.get(id);
    if (!st || st.deleted) throw new NotFoundError('timeline_not_found', `timeline ${id} not found`);
    return st;
  }

  /** The timeline's in-memory model: layer indexes read, then the log (local or in the bucket) replayed. */
  private async load(id: string): Promise<Timeline> {
    const st = this.state(id);
    if (st.timeline) return st.timeline;
    if (!st.loading) {
      st.loading = this.doLoad(st).catch((e: unknown) => {
        st.loading = null;
        throw e;
      });
    }
    return st.loading;
  }

  private async doLoad(st: TimelineState): Promise<Timeline> {
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
    const replayBatch = (lsn: number, time: number, bytes: Buffer): void => {
      if (lsn <= t.assignedLsn) return; // already in a layer
      if (lsn !== t.assignedLsn + 1) throw new Error(`timeline ${m.timelineId}: log has LSN ${lsn} after ${t.assignedLsn}; the log is incomplete`);
      const prepared = t.prepare(decodeBatch(bytes), time);
      this.applyPrepared(st, t, prepared);
      t.markDurable(lsn);
    };
    if (this.config.durability === 'object-store') {
      const objs = await this.store.list(keys.walPrefix(m.timelineId));
      for (const o of objs) {
        const res = await this.store.get(o.key);
        if (!res) continue;
        for (const r of decodeRecords(res.body).records) {
          if (r.type !== 'batch') continue;
          if (r.lsn > t.assignedLsn) st.walObjects.push(r.lsn);
          replayBatch(r.lsn, r.time, r.batch);
        }
      }
    }
    for (const r of this.replay.get(m.timelineId) ?? []) if (r.type === 'batch') replayBatch(r.lsn, r.time, r.batch);
    this.replay.delete(m.timelineId);
    st.timeline = t;
    return t;
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
    if (this.states.has(id) && !this.states.get(id)!.deleted) throw new ConflictError('timeline_exists', `timeline ${id} already exists`);
    let ancestorLsn = 0;
    const ancestorId = req.ancestorTimelineId ?? null;
    const points = [req.ancestorLsn, req.ancestorTimestamp, req.ancestorWalLsn].filter((x) => x !== undefined).length;
    if (points > 1) throw new InvalidRequestError('invalid_request', 'give one of ancestorLsn, ancestorTimestamp or ancestorWalLsn, not several');
    if (ancestorId === null && points > 0) {
      throw new InvalidRequestError('invalid_request', 'ancestorLsn, ancestorTimestamp and ancestorWalLsn need ancestorTimelineId');
    }
    if (ancestorId !== null) {
      const parent = await this.load(ancestorId);
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
    const st = this.newState(m, null);
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
      this.states.delete(id);
      throw e;
    }
    st.timeline = new Timeline(id, ancestorId ? await this.load(ancestorId) : null, ancestorLsn, createdAt);
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
    await this.load(id);
    return this.describe(this.state(id));
  }

  listTimelines(): TimelineInfo[] {
    return [...this.states.values()].filter((s) => !s.deleted).map((s) => this.describe(s));
  }

  async deleteTimeline(id: string): Promise<void> {
    const st = this.state(id);
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
    const st = this.state(id);
    const t = await this.load(id);
    if (st.fenced) throw st.fenced;
    if (this.walFailure) throw this.walFailure;
    const prepared = t.prepare(batch, Date.now());
    this.applyPrepared(st, t, prepared);
    st.lastWriteMs = Date.now();
    const { record, encoded } = batchRecord(id, prepared, batch);
    if (this.wal) await this.appendToLog(this.wal, record);
    else {
      await this.putWalObject(st, prepared.lsn, record);
      this.config.events?.upload?.('wal', encoded.length);
    }
    t.markDurable(prepared.lsn);
    this.config.events?.batch?.(encoded.length, Number(process.hrtime.bigint() - started) / 1e9);
    if (t.openBytes >= this.config.freezeBytes) void this.freezeInBackground(st);
    return { lsn: prepared.lsn, time: new Date(prepared.time).toISOString() };
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
   * Object-store mode: the batch is durable once its object is in the bucket and every earlier batch's is too.
   * A failed put fences the timeline: later batches build on the lost one and are never acknowledged.
   */
  private async putWalObject(st: TimelineState, lsn: number, record: LogRecord): Promise<void> {
    const put = this.store.put(keys.walObject(st.id, lsn), encodeRecord(record), { ifNoneMatch: '*' });
    const previous = st.durableChain;
    const mine = (async () => {
      try {
        await put;
      } catch (e) {
        const err = e instanceof PreconditionFailedError
          ? new ConflictError('lsn_conflict', `another storage node already wrote LSN ${lsn} of timeline ${st.id}; this node stopped writing to it`)
          : e;
        st.fenced = err instanceof ConflictError ? err : new ConflictError('write_failed', `writing LSN ${lsn} of timeline ${st.id} to the object store failed: ${(e as Error).message}`);
        throw err;
      }
      await previous;
      if (st.fenced) throw st.fenced; // an earlier batch failed: this one builds on it and cannot be acknowledged
    })();
    st.durableChain = mine.catch(() => {});
    await mine;
    st.walObjects.push(lsn);
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
        st.fenced = new ConflictError(
          'manifest_conflict',
          `timeline ${st.id} was changed in the object store by another storage node (manifest generation ${st.manifest.generation} is stale); this node stopped writing to it`,
        );
        throw st.fenced;
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
    const st = this.state(id);
    await this.load(id);
    const uploadedLsn = await this.freeze(st);
    return { uploadedLsn, layers: st.manifest.layers.length };
  }

  /**
   * Writes an image layer at the timeline's uploaded LSN: every page this timeline wrote that is still part of a
   * live file, plus a full snapshot of file metadata. Reads then never walk more than one image back, and GC
   * can drop the layers before it.
   */
  async compact(id: string): Promise<{ imageLayer: string | null; parts: number; pages: number }> {
    const st = this.state(id);
    const t = await this.load(id);
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
    const st = this.state(id);
    const t = await this.load(id);
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
        if (!t || st.deleted || st.fenced) continue;
        if (st.etag === null) await st.lock.run(() => this.uploadManifest(st)).catch((e: unknown) => this.config.events?.warn?.(`manifest upload of ${st.id} failed`, e));
        if (st.unfrozen.length > 0 && (t.openBytes >= this.config.freezeBytes || now - st.lastWriteMs >= this.config.freezeIdleMs)) {
          await this.freezeInBackground(st);
        }
        const lastImage = Math.max(0, ...st.manifest.layers.filter((l) => l.kind === 'image').map((l) => l.lsnEnd));
        const deltasSince = st.manifest.layers.filter((l) => l.kind === 'delta' && l.lsnEnd > lastImage).length;
        if (deltasSince >= this.config.compactAfterDeltaLayers) {
          await this.compact(st.id).catch((e: unknown) => this.config.events?.warn?.(`compaction of ${st.id} failed`, e));
          await this.gc(st.id).catch((e: unknown) => this.config.events?.warn?.(`GC of ${st.id} failed`, e));
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
        if (st.timeline && !st.fenced && !st.deleted && (st.unfrozen.length > 0 || st.etag === null)) await this.freezeInBackground(st);
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
