// Prometheus metrics of a storage node (GET /metrics).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EngineEvents } from './engine/storage-engine.ts';
import type { ObjectStoreMetrics } from './object-store/object-store.ts';

export class StorageMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'storage_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [this.registry] });
  readonly latency = new Histogram({
    name: 'storage_http_request_seconds', help: 'HTTP request latency by route', labelNames: ['route'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5], registers: [this.registry],
  });
  readonly pageReads = new Counter({ name: 'storage_page_reads_total', help: 'Page versions read, by where their bytes came from', labelNames: ['source'], registers: [this.registry] });
  readonly bytesRead = new Counter({ name: 'storage_read_bytes_total', help: 'Bytes read for pages, by source', labelNames: ['source'], registers: [this.registry] });
  readonly batches = new Counter({ name: 'storage_batches_total', help: 'Write batches acknowledged', registers: [this.registry] });
  readonly batchBytes = new Counter({ name: 'storage_batch_bytes_total', help: 'Bytes of acknowledged write batches', registers: [this.registry] });
  readonly batchSeconds = new Histogram({
    name: 'storage_batch_seconds', help: 'Time from receiving a batch to acknowledging it',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1], registers: [this.registry],
  });
  readonly walSyncs = new Histogram({ name: 'storage_wal_fsync_seconds', help: 'Write-log fsync latency', buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1], registers: [this.registry] });
  readonly walRecordsPerSync = new Histogram({ name: 'storage_wal_records_per_fsync', help: 'Records made durable by one fsync (group commit)', buckets: [1, 2, 4, 8, 16, 64], registers: [this.registry] });
  readonly uploads = new Counter({ name: 'storage_uploads_total', help: 'Objects uploaded, by kind', labelNames: ['kind'], registers: [this.registry] });
  readonly uploadBytes = new Counter({ name: 'storage_upload_bytes_total', help: 'Bytes uploaded, by kind', labelNames: ['kind'], registers: [this.registry] });
  readonly layers = new Gauge({ name: 'storage_layers', help: 'Layer files in manifests, by kind', labelNames: ['kind'], registers: [this.registry] });
  readonly objectStoreRequests = new Histogram({
    name: 'storage_object_store_request_seconds', help: 'Object store requests by operation and outcome', labelNames: ['op', 'ok'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [this.registry],
  });
  readonly objectStoreRetries = new Counter({ name: 'storage_object_store_retries_total', help: 'Object store request retries', labelNames: ['op'], registers: [this.registry] });
  readonly warnings = new Counter({ name: 'storage_background_errors_total', help: 'Failures of background work (freeze, compaction, GC, uploads)', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  engineEvents(warn: (msg: string, err?: unknown) => void): EngineEvents {
    return {
      pageRead: (source, bytes) => {
        this.pageReads.inc({ source });
        this.bytesRead.inc({ source }, bytes);
      },
      batch: (bytes, seconds) => {
        this.batches.inc();
        this.batchBytes.inc(bytes);
        this.batchSeconds.observe(seconds);
      },
      walSync: (seconds, records) => {
        this.walSyncs.observe(seconds);
        this.walRecordsPerSync.observe(records);
      },
      upload: (kind, bytes) => {
        this.uploads.inc({ kind });
        this.uploadBytes.inc({ kind }, bytes);
      },
      layerCount: (delta, image) => {
        this.layers.set({ kind: 'delta' }, delta);
        this.layers.set({ kind: 'image' }, image);
      },
      warn: (msg, err) => {
        this.warnings.inc();
        warn(msg, err);
      },
    };
  }

  objectStore(): ObjectStoreMetrics {
    return {
      request: (op, seconds, _bytes, ok) => this.objectStoreRequests.observe({ op, ok: String(ok) }, seconds),
      retry: (op) => this.objectStoreRetries.inc({ op }),
    };
  }
}
