// A compute: one PGlite (Postgres in WebAssembly) in a worker thread, whose data directory is a timeline of the
// storage node. This thread owns the storage-node client: it fetches the listing and the prefetch set while the
// worker starts, serves the worker's synchronous page misses and write batches over the bridge (bridge.ts), and
// counts what crosses the network.
import { Worker } from 'node:worker_threads';
import type { Results } from '@electric-sql/pglite';
import { StorageClient } from '../storage-node/client.ts';
import type { PageRef, WriteBatch } from '../storage-node/api/types.ts';
import { PAGE_SIZE } from '../storage-node/api/types.ts';
import { BridgeServer, createBridgeMemory } from './storage-fs/bridge.ts';
import { bootstrap } from './storage-fs/prefetch.ts';
import { ComputeError } from './storage-fs/protocol.ts';
import type { BootMessage, CallMessage, CallOp, SerializedError, WorkerInit, WorkerMessage, WorkerStats } from './storage-fs/protocol.ts';
import { getPgliteWasmModule } from './wasm.ts';

export { ComputeError } from './storage-fs/protocol.ts';

/** PGlite's own start parameters (PGlite.defaultStartParams in 0.5.16), which a custom list replaces. */
const PGLITE_START_PARAMS = [
  '--single', '-F', '-O', '-j',
  '-c', 'search_path=public',
  '-c', 'exit_on_error=false',
  '-c', 'log_checkpoints=false',
  '-c', 'max_worker_processes=0',
  '-c', 'max_parallel_workers=0',
  '-c', 'max_parallel_workers_per_gather=0',
  '-c', 'io_method=sync',
  '-c', 'max_parallel_maintenance_workers=0',
];

export interface ComputeOptions {
  /** Base URL of the storage node, e.g. http://127.0.0.1:9000 */
  storageUrl: string;
  timelineId: string;
  /** Start at this LSN (read-only computes only; a read-write compute always starts at the head). */
  lsn?: number;
  /** Never writes to the storage node; SQL writes are refused (default_transaction_read_only). */
  readOnly?: boolean;
  /**
   * Compiled pglite.wasm. Default: one module compiled per process (getPgliteWasmModule()). `null`: let the
   * worker read and compile the wasm itself (slow; for comparison).
   */
  wasmModule?: WebAssembly.Module | null;
  /** Database to open (default 'neondb') and role to SET ROLE to (default 'postgres'). */
  database?: string;
  username?: string;
  /** Bound of the page cache (default 64 MiB). */
  cacheBytes?: number;
  /**
   * A statement whose unshipped changes pass this many bytes ships them in the middle of the statement (a batch
   * boundary is crash-consistent wherever it falls); default 32 MiB, under the storage node's 64 MiB batch limit.
   */
  maxUnshippedBytes?: number;
  /** Extra Postgres settings, passed as `-c name=value`. */
  postgresConfig?: Record<string, string | number | boolean>;
  /** Fetch the listing's prefetch set at start (default true). */
  prefetch?: boolean;
  /** Rewrite the data directory's prefetch hint at a clean stop when a start read other pages (default true). */
  updatePrefetchHint?: boolean;
  /** How long a blocked page read or batch may take before Postgres sees an I/O error (default 120 s). */
  ioTimeoutMs?: number;
  debug?: boolean;
}

export interface ComputeStats extends WorkerStats {
  /** Pages and bytes fetched from the storage node (prefetch at start and misses), and the round trips. */
  pagesFetched: number;
  bytesFetched: number;
  readRequests: number;
  /** Write batches acknowledged, and their encoded size. */
  batchesWritten: number;
  bytesWritten: number;
  /** What the start cost. */
  start: {
    totalMs: number;
    /** From new Worker() until the worker's modules (PGlite's JS included) are loaded. */
    workerLoadMs: number;
    /** PGlite.create() in the worker: wasm instantiation, Postgres start-up on the timeline. */
    pgliteStartMs: number;
    bootstrapMs: number;
    prefetchedPages: number;
    bootstrapRoundTrips: number;
    /** Read requests, pages and bytes fetched by the end of the start (prefetch + misses); data directory size. */
    readRequests: number;
    pagesFetched: number;
    bytesFetched: number;
    dataDirBytes: number;
  };
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class Compute {
  readonly timelineId: string;
  readonly readOnly: boolean;
  private readonly worker: Worker;
  private readonly calls = new Map<number, Pending>();
  private nextId = 1;
  private lastLsn: number;
  private dead: Error | null = null;
  private exited: Promise<void>;
  private workerStats: WorkerStats;
  private readonly io: IoCounters;
  private readonly startStats: ComputeStats['start'];

  /** Use startCompute(). */
  constructor(args: { worker: Worker; timelineId: string; readOnly: boolean; lsn: number; io: IoCounters; stats: WorkerStats; start: ComputeStats['start']; exited: Promise<void> }) {
    this.worker = args.worker;
    this.timelineId = args.timelineId;
    this.readOnly = args.readOnly;
    this.lastLsn = args.lsn;
    this.io = args.io;
    this.workerStats = args.stats;
    this.startStats = args.start;
    this.exited = args.exited;
    this.worker.on('message', (msg: WorkerMessage) => {
      if (msg.t !== 'reply') return;
      const p = this.calls.get(msg.id);
      if (!p) return;
      this.calls.delete(msg.id);
      this.lastLsn = msg.lsn;
      if (msg.ok) p.resolve(msg.value);
      else p.reject(new ComputeError(msg.error));
    });
    this.worker.on('error', (e: Error) => this.fail(new Error(`the compute worker failed: ${e.message}`)));
    void this.exited.then(() => this.fail(new Error('the compute worker exited')));
  }

  private fail(e: Error): void {
    this.dead ??= e;
    for (const p of this.calls.values()) p.reject(e);
    this.calls.clear();
  }

  private call<T>(op: CallOp, fields: Omit<CallMessage, 't' | 'id' | 'op'> = {}): Promise<T> {
    if (this.dead) return Promise.reject(new Error(`compute for timeline ${this.timelineId} is not running: ${this.dead.message}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const msg: CallMessage = { t: 'call', id, op, ...fields };
      this.worker.postMessage(msg);
    });
  }

  /** One statement, extended protocol (parameters $1..). Resolves after the writes it made are durable. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<Results<T>> {
    return this.call<Results<T>>('query', { sql, params: params ?? [] });
  }

  /** One or more statements, simple protocol. Resolves after the writes they made are durable. */
  exec(sql: string): Promise<Results[]> {
    return this.call<Results[]>('exec', { sql });
  }

  /**
   * Raw Postgres wire protocol messages in, raw backend messages out (PGlite's execProtocolRaw). The writes
   * they made are durable when this resolves, so a proxy can relay the ReadyForQuery.
   */
  execProtocolRaw(bytes: Uint8Array): Promise<Uint8Array> {
    return this.call<Uint8Array>('protocol', { bytes });
  }

  /** The LSN of the last batch this compute had acknowledged (or its start LSN). */
  get lsn(): number {
    return this.lastLsn;
  }

  /** Counters as of the last reply; stats() asks the worker for fresh ones. */
  get counters(): ComputeStats {
    return { ...this.workerStats, ...this.io, start: this.startStats };
  }

  async stats(): Promise<ComputeStats> {
    this.workerStats = await this.call<WorkerStats>('stats');
    return this.counters;
  }

  /** The pages (as of the start LSN) that this compute's start read. */
  startPages(): Promise<PageRef[]> {
    return this.call<PageRef[]>('startPages');
  }

  /** Clean stop: Postgres shuts down (a checkpoint), the last batch is shipped and acknowledged, the worker ends. */
  async stop(): Promise<void> {
    if (this.dead) {
      await this.worker.terminate();
      return;
    }
    try {
      this.workerStats = await this.call<WorkerStats>('stop');
    } finally {
      this.dead ??= new Error('stopped');
      await this.worker.terminate();
    }
  }

  /** Ends the worker at once, like a crash: nothing more is shipped. */
  async kill(): Promise<void> {
    this.fail(new Error('killed'));
    await this.worker.terminate();
  }
}

interface IoCounters {
  pagesFetched: number;
  bytesFetched: number;
  readRequests: number;
  batchesWritten: number;
  bytesWritten: number;
}

function startParams(readOnly: boolean, config: Record<string, string | number | boolean> | undefined): string[] {
  const settings: Record<string, string | number | boolean> = {
    // a new WAL segment is one 1-byte write, not 16 MiB of zeros shipped to the storage node
    wal_init_zero: 'off',
    ...(readOnly ? { default_transaction_read_only: 'on' } : {}),
    ...config,
  };
  const out = [...PGLITE_START_PARAMS];
  for (const [k, v] of Object.entries(settings)) out.push('-c', `${k}=${typeof v === 'boolean' ? (v ? 'on' : 'off') : v}`);
  return out;
}

/** Starts a compute on a timeline: resolves once Postgres is up and its start-up writes are durable. */
export async function startCompute(opts: ComputeOptions): Promise<Compute> {
  const t0 = performance.now();
  const readOnly = opts.readOnly ?? false;
  const client = new StorageClient(opts.storageUrl);
  if (!readOnly && opts.lsn !== undefined) {
    const info = await client.getTimeline(opts.timelineId);
    if (info.lastLsn !== opts.lsn) {
      throw new Error(`a read-write compute starts at the head of timeline ${opts.timelineId} (LSN ${info.lastLsn}), not at LSN ${opts.lsn}: start a read-only compute or branch at that LSN`);
    }
  }
  const io: IoCounters = { pagesFetched: 0, bytesFetched: 0, readRequests: 0, batchesWritten: 0, bytesWritten: 0 };

  // the listing and prefetch travel while the worker boots
  const tb = performance.now();
  let bootstrapMs = 0;
  const booting = bootstrap(client, opts.timelineId, opts.lsn, { prefetch: opts.prefetch }).then((b) => {
    bootstrapMs = performance.now() - tb;
    io.pagesFetched += b.refs.length;
    io.bytesFetched += b.refs.length * PAGE_SIZE;
    io.readRequests += b.roundTrips - 1;
    return b;
  });
  booting.catch(() => {});

  const wasmModule = opts.wasmModule === null ? undefined : (opts.wasmModule ?? (await getPgliteWasmModule()));
  const memory = createBridgeMemory();
  const server = new BridgeServer(memory, {
    readPages: async (refs, at) => {
      const pages = await client.readPages(opts.timelineId, refs, at);
      io.pagesFetched += refs.length;
      io.bytesFetched += refs.length * PAGE_SIZE;
      io.readRequests++;
      return pages;
    },
    writeBatch: async (batch: WriteBatch) => {
      if (readOnly) throw new Error('a read-only compute never writes to the storage node');
      const ack = await client.writeBatch(opts.timelineId, batch);
      io.batchesWritten++;
      for (const op of batch.ops) io.bytesWritten += op.op === 'write' ? op.data.byteLength : 0;
      return ack.lsn;
    },
  });
  const init: WorkerInit = {
    memory,
    readOnly,
    database: opts.database ?? 'neondb',
    username: opts.username ?? 'postgres',
    wasmModule,
    cacheBytes: opts.cacheBytes,
    maxUnshippedBytes: opts.maxUnshippedBytes,
    startParams: startParams(readOnly, opts.postgresConfig),
    ioTimeoutMs: opts.ioTimeoutMs ?? 120_000,
    updateHint: opts.updatePrefetchHint ?? true,
    debug: opts.debug ?? false,
  };
  const spawnedAt = performance.now();
  let workerLoadMs = 0;
  const worker = new Worker(new URL('./storage-fs/worker.ts', import.meta.url), { workerData: init });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.on('message', (msg: unknown) => {
    if (BridgeServer.isRequest(msg)) void server.handle(msg);
  });

  const ready = new Promise<Extract<WorkerMessage, { t: 'ready' }>>((resolve, reject) => {
    worker.on('message', (msg: WorkerMessage) => {
      if (msg.t === 'loaded') workerLoadMs = performance.now() - spawnedAt;
      else if (msg.t === 'ready') resolve(msg);
      else if (msg.t === 'fatal') reject(new ComputeError(msg.error as SerializedError));
    });
    worker.once('error', reject);
    void exited.then(() => reject(new Error('the compute worker exited during start')));
  });
  try {
    const boot = await booting;
    const msg: BootMessage = { t: 'boot', lsn: boot.lsn, files: boot.files, refs: boot.refs, data: boot.data, hint: boot.hint };
    worker.postMessage(msg, [boot.data.buffer as ArrayBuffer]);
    const r = await ready;
    const dataDirBytes = boot.files.reduce((n, f) => n + f.size, 0);
    return new Compute({
      worker, timelineId: opts.timelineId, readOnly, lsn: r.stats.lsn, io, stats: r.stats, exited,
      start: {
        totalMs: performance.now() - t0,
        workerLoadMs,
        pgliteStartMs: r.pgliteStartMs,
        bootstrapMs,
        prefetchedPages: boot.refs.length,
        bootstrapRoundTrips: boot.roundTrips,
        readRequests: io.readRequests,
        pagesFetched: io.pagesFetched,
        bytesFetched: io.bytesFetched,
        dataDirBytes,
      },
    });
  } catch (e) {
    await worker.terminate();
    throw e;
  }
}
