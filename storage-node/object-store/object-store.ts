// The one interface the storage node uses to reach durable storage. Two backends implement it:
// a local folder (the default, single host) and S3-compatible stores (AWS S3, Cloudflare R2, MinIO).

export interface ObjectInfo {
  key: string;
  size: number;
  etag: string;
}

export interface PutOptions {
  /** Write only if the object's current ETag equals this (compare-and-swap on manifests). */
  ifMatch?: string;
  /** `'*'`: write only if no object exists under the key (create-once). */
  ifNoneMatch?: '*';
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, exclusive. */
  end: number;
}

export interface GetResult {
  body: Buffer;
  etag: string;
}

export interface ObjectStore {
  /** A short description for logs, e.g. `file:///var/lib/lakebase` or `s3://bucket/prefix`. */
  readonly description: string;
  /** The URI its keys hang under (`file:///var/lib/lakebase`, `s3://bucket/prefix`): what other engines open. */
  readonly uri: string;
  /** The object's bytes (or a byte range of them), or null when there is no such object. */
  get(key: string, range?: ByteRange): Promise<GetResult | null>;
  head(key: string): Promise<ObjectInfo | null>;
  /** Throws PreconditionFailedError when a condition does not hold; nothing is written then. */
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<{ etag: string }>;
  /** Deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** Every object whose key starts with prefix, sorted by key. */
  list(prefix: string): Promise<ObjectInfo[]>;
  close?(): Promise<void>;
}

/** A conditional write lost: another writer changed (or created) the object first. */
export class PreconditionFailedError extends Error {
  readonly key: string;
  constructor(key: string, detail: string) {
    super(`conditional write to ${key} failed: ${detail}`);
    this.name = 'PreconditionFailedError';
    this.key = key;
  }
}

/** Observability hook: backends report requests and retries here (wired to Prometheus by the server). */
export interface ObjectStoreMetrics {
  request(op: 'get' | 'head' | 'put' | 'delete' | 'list', seconds: number, bytes: number, ok: boolean): void;
  retry(op: string): void;
}
