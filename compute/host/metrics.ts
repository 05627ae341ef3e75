// Prometheus metrics of a compute host (GET /metrics), in the host's own registry.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class HostMetrics {
  readonly registry = new Registry();
  readonly computes = new Gauge({ name: 'compute_host_computes', help: 'Computes on this host, by state', labelNames: ['state'], registers: [this.registry] });
  readonly starts = new Counter({ name: 'compute_host_starts_total', help: 'Compute starts, by outcome and whether a pooled worker was used', labelNames: ['outcome', 'pooled'], registers: [this.registry] });
  readonly startSeconds = new Histogram({
    name: 'compute_host_start_seconds', help: 'From the start request until the compute accepts connections', labelNames: ['pooled'],
    buckets: [0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2, 5], registers: [this.registry],
  });
  readonly startPhaseSeconds = new Histogram({
    name: 'compute_host_start_phase_seconds', help: 'Steps of a compute start (check: the timeline on the storage node; then the engine\'s own), by engine', labelNames: ['engine', 'phase'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5], registers: [this.registry],
  });
  readonly startPagesFetched = new Counter({ name: 'compute_host_start_pages_fetched_total', help: 'Pages fetched from the storage node by compute starts', registers: [this.registry] });
  readonly stops = new Counter({ name: 'compute_host_stops_total', help: 'Computes stopped, by outcome (clean, killed)', labelNames: ['outcome'], registers: [this.registry] });
  readonly restarts = new Counter({ name: 'compute_host_restarts_total', help: 'Compute restarts on their timeline, by reason (cancel, crash)', labelNames: ['reason'], registers: [this.registry] });
  readonly poolIdle = new Gauge({ name: 'compute_host_pool_idle', help: 'Pre-started workers waiting for a timeline', registers: [this.registry] });
  readonly sessions = new Gauge({ name: 'compute_host_sessions', help: 'Authenticated client sessions', registers: [this.registry] });
  readonly logins = new Counter({ name: 'compute_host_logins_total', help: 'Login attempts, by outcome', labelNames: ['outcome'], registers: [this.registry] });
  readonly batches = new Counter({ name: 'compute_host_batches_total', help: 'Client message batches run on a backend', registers: [this.registry] });
  readonly batchSeconds = new Histogram({
    name: 'compute_host_batch_seconds', help: 'Time a batch ran on the backend (its storage acknowledgement included)',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [this.registry],
  });
  readonly queueSeconds = new Histogram({
    name: 'compute_host_batch_wait_seconds', help: 'Time a batch waited for the shared backend (another session in a transaction)',
    buckets: [0.0001, 0.001, 0.01, 0.1, 1, 10], registers: [this.registry],
  });
  readonly cancels = new Counter({ name: 'compute_host_cancels_total', help: 'Cancel requests, by how they were served (interrupt, restart, dropped, idle, unknown_key)', labelNames: ['kind'], registers: [this.registry] });
  readonly memoryReserved = new Gauge({ name: 'compute_host_memory_reserved_bytes', help: 'Memory reserved by computes and pooled workers against the budget', registers: [this.registry] });
  readonly memoryBudget = new Gauge({ name: 'compute_host_memory_budget_bytes', help: 'The host memory budget', registers: [this.registry] });
  readonly startQueueWaiting = new Gauge({ name: 'compute_host_start_queue_waiting', help: 'Starts waiting for memory', registers: [this.registry] });
  readonly startQueueSeconds = new Histogram({
    name: 'compute_host_start_queue_seconds', help: 'Time a start waited for memory (starts that waited)',
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 45, 60], registers: [this.registry],
  });
  readonly startRefusals = new Counter({ name: 'compute_host_start_refusals_total', help: 'Starts refused for memory, by code (memory_budget_exceeded, start_queue_full, start_queue_timeout, host_stopping)', labelNames: ['code'], registers: [this.registry] });
  readonly evictions = new Counter({ name: 'compute_host_idle_suspends_total', help: 'Idle computes suspended to make room for starts waiting for memory', registers: [this.registry] });

  readonly storageBatches = new Counter({ name: 'compute_host_storage_batches_total', help: 'Write batches shipped to the storage node (postgres engine: one per fsync group), by engine', labelNames: ['engine'], registers: [this.registry] });
  readonly storageBatchSeconds = new Histogram({
    name: 'compute_host_storage_batch_seconds', help: 'From shipping a write batch to its acknowledgement (a commit waits for it), by engine', labelNames: ['engine'],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5], registers: [this.registry],
  });
  readonly fuseOps = new Counter({ name: 'compute_host_fuse_operations_total', help: 'FUSE operations served for postgres-engine computes, by operation', labelNames: ['op'], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
