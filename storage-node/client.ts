// Typed HTTP client of the storage node API (docs/storage-node-api.md). Used by computes, the control plane,
// the CLI and the tests: nothing else talks to a storage node. The transport is lib/internal-client.ts
// (keep-alive node:http, bearer token, deadline, stale-socket retry); every failure is a StorageNodeError.
import { ServiceError } from '../lib/errors.ts';
import type { ErrorStatus, ServiceErrorOptions } from '../lib/errors.ts';
import { InternalClient } from '../lib/internal-client.ts';
import type { RawAnswer, RequestOptions } from '../lib/internal-client.ts';
import { encodeBatch } from './api/batch-codec.ts';
import type { BatchAck, CreateTimelineRequest, FileEntry, PageRef, ReleaseAnswer, TimelineInfo, WriteBatch, WriterAnswer } from './api/types.ts';
import { PAGE_SIZE } from './api/types.ts';

/**
 * An error answered by the storage node, or its absence: `status` is the HTTP status (0: unreachable), `code` a
 * stable machine-readable name, `message` the node's own text (no service prefix).
 */
export class StorageNodeError extends ServiceError {
  constructor(status: ErrorStatus, code: string, message: string, opts: ServiceErrorOptions = {}) {
    super(status, code, message, { kind: 'storage', ...opts });
    this.name = 'StorageNodeError';
  }

  /** The client's view of what InternalClient threw (anything else is passed through). */
  static from(e: unknown, baseUrl: string): unknown {
    if (e instanceof StorageNodeError || !(e instanceof ServiceError)) return e;
    if (e.status === 0) {
      const why = e.cause instanceof Error ? e.cause.message : String(e.cause);
      return new StorageNodeError(0, 'unreachable', `storage node at ${baseUrl} is unreachable: ${why}`, { cause: e.cause });
    }
    return new StorageNodeError(e.status, e.code, e.message, { kind: e.kind, details: e.details, cause: e });
  }
}

/** Long enough for a checkpoint or a compaction of a large timeline. */
const MAINTENANCE_TIMEOUT_MS = 10 * 60_000;

export class StorageClient {
  readonly baseUrl: string;
  private readonly http: InternalClient;

  /** `token`: the storage node's bearer token (LAKEBASE_STORAGE_TOKEN), sent on every request. */
  constructor(baseUrl: string, token?: string) {
    this.http = new InternalClient(baseUrl, { service: 'storage node', kind: 'storage', token, prefixErrors: false });
    this.baseUrl = this.http.baseUrl;
  }

  /** Closes idle keep-alive connections (a process can exit without waiting for them). */
  close(): void {
    this.http.close();
  }

  private async call(method: string, path: string, ro?: RequestOptions): Promise<RawAnswer> {
    try {
      return await this.http.call(method, path, ro);
    } catch (e) {
      throw StorageNodeError.from(e, this.baseUrl);
    }
  }

  private async json<T>(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    try {
      return await this.http.json<T>(method, path, body, { timeoutMs });
    } catch (e) {
      throw StorageNodeError.from(e, this.baseUrl);
    }
  }

  private static timeline(timelineId: string, rest = ''): string {
    return `/v1/timelines/${encodeURIComponent(timelineId)}${rest}`;
  }

  private static lsnQuery(lsn?: number): string {
    return lsn === undefined ? '' : `?lsn=${lsn}`;
  }

  listTimelines(): Promise<TimelineInfo[]> {
    return this.json<{ timelines: TimelineInfo[] }>('GET', '/v1/timelines').then((r) => r.timelines);
  }

  createTimeline(req: CreateTimelineRequest = {}): Promise<TimelineInfo> {
    return this.json<TimelineInfo>('POST', '/v1/timelines', req);
  }

  getTimeline(timelineId: string): Promise<TimelineInfo> {
    return this.json<TimelineInfo>('GET', StorageClient.timeline(timelineId));
  }

  async deleteTimeline(timelineId: string): Promise<void> {
    await this.call('DELETE', StorageClient.timeline(timelineId));
  }

  /**
   * Takes the timeline for a read-write compute: a new writer generation, durable when this resolves, for every
   * batch the compute sends (`writeBatch({ writerGeneration })`); batches of older generations are refused
   * (409 `writer_fenced`). With the timeline as of the takeover (its lastLsn is the head to build on).
   */
  acquireWriter(timelineId: string): Promise<WriterAnswer> {
    return this.json<WriterAnswer>('POST', StorageClient.timeline(timelineId, '/writer'), {});
  }

  /**
   * Hands the timeline over to another node: what it acknowledged is put in the bucket (everything, its write log
   * included), then it forgets the timeline, and its branches loaded there (`descendants`), so that any node can
   * adopt it from the bucket. Suspend its writers first: a batch sent meanwhile is taken by the node again.
   */
  releaseTimeline(timelineId: string): Promise<ReleaseAnswer> {
    return this.json('POST', StorageClient.timeline(timelineId, '/release'), {}, MAINTENANCE_TIMEOUT_MS);
  }

  /** One write batch; `batch.writerGeneration` (from acquireWriter) is carried as is. */
  async writeBatch(timelineId: string, batch: WriteBatch): Promise<BatchAck> {
    const res = await this.call('POST', StorageClient.timeline(timelineId, '/batches'), { body: encodeBatch(batch), contentType: 'application/octet-stream' });
    return JSON.parse(res.body.toString('utf8')) as BatchAck;
  }

  /** One page (PAGE_SIZE bytes; zeros past the end of the file). */
  async readPage(timelineId: string, path: string, page: number, lsn?: number): Promise<Buffer> {
    const q = new URLSearchParams({ path, page: String(page) });
    if (lsn !== undefined) q.set('lsn', String(lsn));
    return (await this.call('GET', StorageClient.timeline(timelineId, `/page?${q}`))).body;
  }

  /** Many pages in one round trip, in the order asked. */
  async readPages(timelineId: string, pages: PageRef[], lsn?: number): Promise<Buffer[]> {
    const path = StorageClient.timeline(timelineId, `/pages${StorageClient.lsnQuery(lsn)}`);
    const all = (await this.call('POST', path, { body: JSON.stringify({ pages }), contentType: 'application/json' })).body;
    // a short answer must never be taken for pages: the missing bytes would be read as another page's
    if (all.length !== pages.length * PAGE_SIZE) {
      throw new StorageNodeError(502, 'bad_answer', `storage node at ${this.baseUrl} answered ${all.length} bytes for ${pages.length} pages (${pages.length * PAGE_SIZE} expected)`);
    }
    const out: Buffer[] = [];
    for (let i = 0; i < pages.length; i++) out.push(all.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
    return out;
  }

  listFiles(timelineId: string, lsn?: number): Promise<{ lsn: number; files: FileEntry[] }> {
    return this.json('GET', StorageClient.timeline(timelineId, `/files${StorageClient.lsnQuery(lsn)}`));
  }

  lsnAt(timelineId: string, timestamp: string): Promise<{ lsn: number; time: string | null; walLsn: number | null }> {
    return this.json('GET', StorageClient.timeline(timelineId, `/lsn?timestamp=${encodeURIComponent(timestamp)}`));
  }

  /** The timeline's LSN where Postgres' WAL reached `walLsn` (what pg_current_wal_lsn() printed). */
  lsnAtWal(timelineId: string, walLsn: number): Promise<{ lsn: number; time: string | null; walLsn: number | null }> {
    return this.json('GET', StorageClient.timeline(timelineId, `/lsn?walLsn=${walLsn}`));
  }

  timeOf(timelineId: string, lsn: number): Promise<{ lsn: number; time: string | null }> {
    return this.json('GET', StorageClient.timeline(timelineId, `/time?lsn=${lsn}`));
  }

  /** Freeze the timeline's recent writes into a layer and upload it with the manifest. */
  checkpoint(timelineId: string): Promise<{ uploadedLsn: number; layers: number }> {
    return this.json('POST', StorageClient.timeline(timelineId, '/checkpoint'), {}, MAINTENANCE_TIMEOUT_MS);
  }

  compact(timelineId: string): Promise<{ imageLayer: string | null; parts: number; pages: number }> {
    return this.json('POST', StorageClient.timeline(timelineId, '/compact'), {}, MAINTENANCE_TIMEOUT_MS);
  }

  gc(timelineId: string): Promise<{ cutoffLsn: number; layersRemoved: number }> {
    return this.json('POST', StorageClient.timeline(timelineId, '/gc'), {}, MAINTENANCE_TIMEOUT_MS);
  }
}
