// Typed HTTP client of the storage node API (docs/storage-node-api.md). Used by computes, the control plane,
// the CLI and the tests: nothing else talks to a storage node.
import { Agent, request } from 'node:http';
import { encodeBatch } from './api/batch-codec.ts';
import type {
  ApiErrorBody, BatchAck, CreateTimelineRequest, FileEntry, PageRef, TimelineInfo, WriteBatch,
} from './api/types.ts';
import { PAGE_SIZE } from './api/types.ts';

/** An error answered by the storage node: `status` is the HTTP status, `code` a stable machine-readable name. */
export class StorageNodeError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'StorageNodeError';
    this.status = status;
    this.code = code;
  }
}

interface RawResponse {
  status: number;
  body: Buffer;
}

export class StorageClient {
  readonly baseUrl: string;
  private readonly url: URL;
  // node:http with keep-alive: about half the per-request cost of fetch on loopback, which page reads feel.
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private readonly authorization: string | undefined;

  /** `token`: the storage node's bearer token (LAKEBASE_STORAGE_TOKEN), sent on every request. */
  constructor(baseUrl: string, token?: string) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.url = new URL(this.baseUrl);
    this.authorization = token ? `Bearer ${token}` : undefined;
  }

  private send(method: string, path: string, body?: string | Uint8Array, contentType?: string): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = {};
      if (this.authorization) headers.authorization = this.authorization;
      if (contentType) headers['content-type'] = contentType;
      if (body !== undefined) headers['content-length'] = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
      const req = request({ host: this.url.hostname, port: this.url.port, method, path, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', (e) => reject(new StorageNodeError(0, 'unreachable', `storage node at ${this.baseUrl} is unreachable: ${e.message}`)));
      req.end(body);
    });
  }

  private async call(method: string, path: string, body?: string | Uint8Array, contentType?: string): Promise<RawResponse> {
    const res = await this.send(method, path, body, contentType);
    if (res.status < 200 || res.status >= 300) {
      const text = res.body.toString('utf8');
      let code = 'http_' + res.status;
      let message = text;
      try {
        const parsed = JSON.parse(text) as ApiErrorBody;
        code = parsed.error.code;
        message = parsed.error.message;
      } catch {
        // not our JSON error shape; keep the raw text
      }
      throw new StorageNodeError(res.status, code, message);
    }
    return res;
  }

  /** Closes idle keep-alive connections (a process can exit without waiting for them). */
  close(): void {
    this.agent.destroy();
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.call(method, path, body === undefined ? undefined : JSON.stringify(body), body === undefined ? undefined : 'application/json');
    return JSON.parse(res.body.toString('utf8')) as T;
  }

  private static lsnQuery(lsn?: number): string {
    return lsn === undefined ? '' : `lsn=${lsn}`;
  }

  listTimelines(): Promise<TimelineInfo[]> {
    return this.json<{ timelines: TimelineInfo[] }>('GET', '/v1/timelines').then((r) => r.timelines);
  }

  createTimeline(req: CreateTimelineRequest = {}): Promise<TimelineInfo> {
    return this.json<TimelineInfo>('POST', '/v1/timelines', req);
  }

  getTimeline(timelineId: string): Promise<TimelineInfo> {
    return this.json<TimelineInfo>('GET', `/v1/timelines/${encodeURIComponent(timelineId)}`);
  }

  async deleteTimeline(timelineId: string): Promise<void> {
    await this.call('DELETE', `/v1/timelines/${encodeURIComponent(timelineId)}`);
  }

  async writeBatch(timelineId: string, batch: WriteBatch): Promise<BatchAck> {
    const res = await this.call('POST', `/v1/timelines/${encodeURIComponent(timelineId)}/batches`, encodeBatch(batch), 'application/octet-stream');
    return JSON.parse(res.body.toString('utf8')) as BatchAck;
  }

  /** One page (PAGE_SIZE bytes; zeros past the end of the file). */
  async readPage(timelineId: string, path: string, page: number, lsn?: number): Promise<Buffer> {
    const q = new URLSearchParams({ path, page: String(page) });
    if (lsn !== undefined) q.set('lsn', String(lsn));
    const res = await this.call('GET', `/v1/timelines/${encodeURIComponent(timelineId)}/page?${q}`);
    return res.body;
  }

  /** Many pages in one round trip, in the order asked. */
  async readPages(timelineId: string, pages: PageRef[], lsn?: number): Promise<Buffer[]> {
    const q = StorageClient.lsnQuery(lsn);
    const res = await this.call('POST', `/v1/timelines/${encodeURIComponent(timelineId)}/pages${q ? '?' + q : ''}`, JSON.stringify({ pages }), 'application/json');
    const all = res.body;
    const out: Buffer[] = [];
    for (let i = 0; i < pages.length; i++) out.push(all.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
    return out;
  }

  listFiles(timelineId: string, lsn?: number): Promise<{ lsn: number; files: FileEntry[] }> {
    const q = StorageClient.lsnQuery(lsn);
    return this.json('GET', `/v1/timelines/${encodeURIComponent(timelineId)}/files${q ? '?' + q : ''}`);
  }

  lsnAt(timelineId: string, timestamp: string): Promise<{ lsn: number; time: string | null }> {
    return this.json('GET', `/v1/timelines/${encodeURIComponent(timelineId)}/lsn?timestamp=${encodeURIComponent(timestamp)}`);
  }

  timeOf(timelineId: string, lsn: number): Promise<{ lsn: number; time: string | null }> {
    return this.json('GET', `/v1/timelines/${encodeURIComponent(timelineId)}/time?lsn=${lsn}`);
  }

  /** Freeze the timeline's recent writes into a layer and upload it with the manifest. */
  checkpoint(timelineId: string): Promise<{ uploadedLsn: number; layers: number }> {
    return this.json('POST', `/v1/timelines/${encodeURIComponent(timelineId)}/checkpoint`, {});
  }

  compact(timelineId: string): Promise<{ imageLayer: string | null; parts: number; pages: number }> {
    return this.json('POST', `/v1/timelines/${encodeURIComponent(timelineId)}/compact`, {});
  }

  gc(timelineId: string): Promise<{ cutoffLsn: number; layersRemoved: number }> {
    return this.json('POST', `/v1/timelines/${encodeURIComponent(timelineId)}/gc`, {});
  }
}
