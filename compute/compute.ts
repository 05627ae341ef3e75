// A compute: one PGlite (Postgres in WebAssembly) in a worker thread, whose data directory is a timeline of the
// storage node. This thread owns the storage-node client: it fetches the listing and the prefetch set while the
// worker starts, serves the worker's synchronous page misses and write batches over the bridge (bridge.ts), and
// counts what crosses the network.
import { Worker } from 'node:worker_threads';
import type { Results } from '@electric-sql/pglite';
import { StorageClient } from '../storage-node/client.ts';
import type { PageRef, WriteBatch } from '../storage-node/api/types.ts';
import { PAGE_SIZE } from '../storage-node/api/types.ts';
import { BridgeServer, createBridgeMemory, requestCancel } from './storage-fs/bridge.ts';
import type { BridgeIo } from './storage-fs/bridge.ts';
import { bootstrap } from './storage-fs/prefetch.ts';
import { readCheckedPages, warnBadPages } from './storage-fs/page-check.ts';
import { ComputeError } from './storage-fs/protocol.ts';
import type { BootMessage, CallMessage, CallOp, ComputeConfig, SerializedError, WorkerInit, WorkerMessage, WorkerStats } from './storage-fs/protocol.ts';
import { getPgliteWasmModule } from './wasm.ts';

export { ComputeError } from './storage-fs/protocol.ts';

/** Default bound of the output one protocol call keeps (ComputeOptions.maxResultBytes). */
export const DEFAULT_MAX_RESULT_BYTES = 128 * 1024 * 1024;

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
  /** The storage node's bearer token (LAKEBASE_STORAGE_TOKEN). */
  storageToken?: string;
  timelineId: string;
  /** Start at this LSN (read-only computes only; a read-write compute always starts at the head). */
  lsn?: number;
  /** Never writes to the storage node; SQL writes are refused (default_transaction_read_only). */
  readOnly?: boolean;
  /**
   * The writer generation the timeline was taken with (StorageClient.acquireWriter; the compute host's start):
   * every batch carries it. Undefined: none is sent (a timeline nobody took, e.g. a template being made).
   */
  writerGeneration?: number;
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
  /**
   * Most bytes of output one execProtocolRaw call keeps (default 128 MiB): a statement whose result passes it is
   * stopped and fails with 54000 (storage-fs/result-limit.ts).
   */
  maxResultBytes?: number;
  /** Extra Postgres settings, passed as `-c name=value`. */
  postgresConfig?: Record<string, string | number | boolean>;
  /** Fetch the listing's prefetch set at start (default true). */
  prefetch?: boolean;
  /** Rewrite the data directory's prefetch hint at a clean stop when a start read other pages (default true). */
  updatePrefetchHint?: boolean;
  /** How long a blocked page read or batch may take before Postgres sees an I/O error (default 120 s). */
  ioTimeoutMs?: number;
  debug?: boolean;
  /**
   * A worker spawned earlier by spawnComputeWorker() (a pool): PGlite is already loaded and its wasm
   * instantiated, so the start is the Postgres start-up alone. Its wasmModule/ioTimeoutMs/debug apply.
   */
  worker?: ComputeWorker;
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
    /** From new Worker() until the worker's modules (PGlite's JS included) are loaded (0: a pooled worker). */
    workerLoadMs: number;
    /** From the boot message (the timeline) until Postgres is up, in the worker (wasm instantiation included unless pooled). */
    pgliteStartMs: number;
    /** The worker came from a pool, with PGlite already instantiated and waiting for a timeline. */
    pooled: boolean;
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

/**
 * A compute worker thread, spawned before its timeline is known: its modules load, the wasm is instantiated and
 * PGlite waits for a timeline (startCompute({ worker })). Hold a few in a pool to take that work off a start.
 */
export interface ComputeWorker {
  readonly worker: Worker;
  readonly memory: SharedArrayBuffer;
  readonly exited: Promise<void>;
  /** ms from spawn until the worker's modules were loaded. */
  readonly loaded: Promise<number>;
  /** ms from spawn until PGlite was instantiated and waiting for a timeline. */
  readonly prestarted: Promise<number>;
  /** Storage I/O requests being served (a replacement must wait for them after a kill). */
  readonly inflight: Set<Promise<void>>;
  /** Where the bridge sends the worker's page reads and write batches (set when it gets a timeline). */
  bind(io: BridgeIo): void;
  /** Ends the thread (an unused pooled worker). */
  terminate(): Promise<void>;
}

export interface SpawnOptions {
  wasmModule?: WebAssembly.Module | null;
  ioTimeoutMs?: number;
  debug?: boolean;
}

/** Spawns a compute worker; it loads PGlite and instantiates the wasm, then waits for startCompute({ worker }). */
export async function spawnComputeWorker(opts: SpawnOptions = {}): Promise<ComputeWorker> {
  const wasmModule = opts.wasmModule === null ? undefined : (opts.wasmModule ?? (await getPgliteWasmModule()));
  const memory = createBridgeMemory();
  let io: BridgeIo | null = null;
  const unbound = (): never => {
    throw new Error('the compute worker has no timeline yet');
  };
  const server = new BridgeServer(memory, {
    readPages: (refs, lsn) => (io ? io.readPages(refs, lsn) : unbound()),
    writeBatch: (batch) => (io ? io.writeBatch(batch) : unbound()),
  });
  const init: WorkerInit = { memory, wasmModule, ioTimeoutMs: opts.ioTimeoutMs ?? 120_000, debug: opts.debug ?? false };
  const spawnedAt = performance.now();
  const worker = new Worker(new URL('./storage-fs/worker.ts', import.meta.url), { workerData: init });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const inflight = new Set<Promise<void>>();
  worker.on('message', (msg: unknown) => {
    if (!BridgeServer.isRequest(msg)) return;
    const p = server.handle(msg);
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  });
  // a worker that dies before it is used must not leave an unhandled rejection behind
  worker.on('error', () => {});
  const phase = (t: 'loaded' | 'prestarted'): Promise<number> => {
    const p = new Promise<number>((resolve, reject) => {
      worker.on('message', (msg: WorkerMessage) => {
        if (msg.t === t) resolve(performance.now() - spawnedAt);
      });
      void exited.then(() => reject(new Error('the compute worker exited')));
    });
    p.catch(() => {});
    return p;
  };
  return {
    worker, memory, exited, inflight,
    loaded: phase('loaded'),
    prestarted: phase('prestarted'),
    bind: (target) => {
      if (io) throw new Error('the compute worker already has a timeline');
      io = target;
    },
    terminate: async () => {
      await worker.terminate();
    },
  };
}

export class Compute {
  readonly timelineId: string;
  readonly readOnly: boolean;
  private readonly worker: Worker;
  private readonly memory: SharedArrayBuffer;
  private readonly inflight: Set<Promise<void>>;
  private readonly calls = new Map<number, Pending>();
  private nextId = 1;
  private lastLsn: number;
  private dead: Error | null = null;
  private exited: Promise<void>;
  private workerStats: WorkerStats;
  private readonly io: IoCounters;
  private readonly startStats: ComputeStats['start'];
  private runningProtocolCall = 0;
  /** The worker said, in its last reply, that it holds changes not shipped yet (deferred calls). */
  private unshipped = false;
  private readonly deathListeners: ((e: Error) => void)[] = [];

  /** Use startCompute(). */
  constructor(args: { cw: ComputeWorker; timelineId: string; readOnly: boolean; lsn: number; io: IoCounters; stats: WorkerStats; start: ComputeStats['start'] }) {
    this.worker = args.cw.worker;
    this.memory = args.cw.memory;
    this.inflight = args.cw.inflight;
    this.timelineId = args.timelineId;
    this.readOnly = args.readOnly;
    this.lastLsn = args.lsn;
    this.io = args.io;
    this.workerStats = args.stats;
    this.startStats = args.start;
    this.exited = args.cw.exited;
    this.worker.on('message', (msg: WorkerMessage) => {
      if (msg.t !== 'reply') return;
      const p = this.calls.get(msg.id);
      if (!p) return;
      this.calls.delete(msg.id);
      this.lastLsn = msg.lsn;
      this.unshipped = msg.ok ? msg.unshipped === true : true;
      if (msg.ok) p.resolve(msg.value);
      else p.reject(new ComputeError(msg.error));
    });
    this.worker.on('error', (e: Error) => this.fail(new Error(`the compute worker failed: ${e.message}`)));
    void this.exited.then(() => this.fail(new Error('the compute worker exited')));
  }

  private fail(e: Error): void {
    const first = this.dead === null;
    this.dead ??= e;
    for (const p of this.calls.values()) p.reject(e);
    this.calls.clear();
    if (first) for (const l of this.deathListeners) l(e);
  }

  /** Called once if the worker fails or exits (a stop or kill included). */
  onDeath(listener: (e: Error) => void): void {
    if (this.dead) listener(this.dead);
    else this.deathListeners.push(listener);
  }

  /** Why the compute is not running any more, or null. */
  get failure(): Error | null {
    return this.dead;
  }

  private call<T>(op: CallOp, fields: Omit<CallMessage, 't' | 'id' | 'op'> = {}, onId?: (id: number) => void): Promise<T> {
    if (this.dead) return Promise.reject(new Error(`compute for timeline ${this.timelineId} is not running: ${this.dead.message}`));
    const id = this.nextId++;
    onId?.(id);
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
   * they made are durable when this resolves, so a proxy can relay the ReadyForQuery. The output is bounded by
   * maxResultBytes: a statement whose result passes it is stopped and answered with 54000 instead.
   */
  async execProtocolRaw(bytes: Uint8Array, opts: { deferFlush?: boolean } = {}): Promise<Uint8Array> {
    let id = 0;
    const fields: Omit<CallMessage, 't' | 'id' | 'op'> = opts.deferFlush ? { bytes, deferFlush: true } : { bytes };
    try {
      return await this.call<Uint8Array>('protocol', fields, (n) => (id = this.runningProtocolCall = n));
    } finally {
      if (this.runningProtocolCall === id) {
        this.runningProtocolCall = 0;
        requestCancel(this.memory, 0);
      }
    }
  }

  /**
   * Ships the changes of earlier `execProtocolRaw(bytes, { deferFlush: true })` calls as one batch; resolves once
   * the storage node acknowledged it (their replies may then be relayed).
   */
  async flush(): Promise<void> {
    // deferred calls that changed nothing (reads) need no round trip: nothing is waiting to be shipped
    if (!this.unshipped && !this.dead) return;
    await this.call<null>('flush');
  }

  /**
   * Asks the worker to interrupt the execProtocolRaw call in progress (if any): Postgres then fails the running
   * statement with 57014 at its next page I/O or clock read (storage-fs/cancel-hook.ts). Returns false when no
   * protocol call is running. A statement that never reaches such a point is not interrupted: see kill().
   */
  cancelRunning(): boolean {
    if (this.runningProtocolCall === 0 || this.dead) return false;
    requestCancel(this.memory, this.runningProtocolCall);
    return true;
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
      this.fail(new Error('stopped'));
      await this.worker.terminate();
    }
  }

  /**
   * Ends the worker at once, like a crash: nothing more is shipped. Resolves once the storage requests the
   * worker had in flight are settled, so a compute started next on the timeline sees its final head.
   */
  async kill(reason = 'killed'): Promise<void> {
    this.fail(new Error(reason));
    await this.worker.terminate();
    await Promise.allSettled([...this.inflight]);
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

/** A read-write compute only starts at the head of its timeline (it would fork history otherwise). */
async function checkStartLsn(client: StorageClient, opts: ComputeOptions): Promise<void> {
  if (opts.readOnly || opts.lsn === undefined) return;
  const info = await client.getTimeline(opts.timelineId);
  if (info.lastLsn !== opts.lsn) {
    throw new Error(`a read-write compute starts at the head of timeline ${opts.timelineId} (LSN ${info.lastLsn}), not at LSN ${opts.lsn}: start a read-only compute or branch at that LSN`);
  }
}

/** The worker's page reads and batch writes go to the storage node, counted in `io`. */
function bindStorage(cw: ComputeWorker, client: StorageClient, opts: ComputeOptions, io: IoCounters): void {
  cw.bind({
    readPages: async (refs, at) => {
      const pages = await readCheckedPages(refs, (r) => client.readPages(opts.timelineId, r, at), (bad, healed) => warnBadPages(opts.timelineId, at, bad, healed));
      io.pagesFetched += refs.length;
      io.bytesFetched += refs.length * PAGE_SIZE;
      io.readRequests++;
      return pages;
    },
    writeBatch: async (batch: WriteBatch) => {
      if (opts.readOnly) throw new Error('a read-only compute never writes to the storage node');
      const ack = await client.writeBatch(opts.timelineId, opts.writerGeneration === undefined ? batch : { ...batch, writerGeneration: opts.writerGeneration });
      io.batchesWritten++;
      for (const op of batch.ops) io.bytesWritten += op.op === 'write' ? op.data.byteLength : 0;
      return ack.lsn;
    },
  });
}

function computeConfig(opts: ComputeOptions): ComputeConfig {
  const readOnly = opts.readOnly ?? false;
  return {
    readOnly,
    database: opts.database ?? 'neondb',
    username: opts.username ?? 'postgres',
    cacheBytes: opts.cacheBytes,
    maxUnshippedBytes: opts.maxUnshippedBytes,
    startParams: startParams(readOnly, opts.postgresConfig),
    updateHint: opts.updatePrefetchHint ?? true,
    maxResultBytes: opts.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES,
  };
}

/** The worker's `ready`, or why it will never come (a fatal error, a crash, an exit). */
function workerReady(cw: ComputeWorker): Promise<Extract<WorkerMessage, { t: 'ready' }>> {
  return new Promise((resolve, reject) => {
    cw.worker.on('message', (msg: WorkerMessage) => {
      if (msg.t === 'ready') resolve(msg);
      else if (msg.t === 'fatal') reject(new ComputeError(msg.error as SerializedError));
    });
    cw.worker.once('error', reject);
    void cw.exited.then(() => reject(new Error('the compute worker exited during start')));
  });
}

/** Starts a compute on a timeline: resolves once Postgres is up and its start-up writes are durable. */
export async function startCompute(opts: ComputeOptions): Promise<Compute> {
  const t0 = performance.now();
  const readOnly = opts.readOnly ?? false;
  const client = new StorageClient(opts.storageUrl, opts.storageToken);
  const pooled = opts.worker !== undefined;
  // spawned first, so the worker loads while the storage node is asked for the timeline
  const cw = opts.worker ?? (await spawnComputeWorker({ wasmModule: opts.wasmModule, ioTimeoutMs: opts.ioTimeoutMs, debug: opts.debug }));
  try {
    await checkStartLsn(client, opts);
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

    bindStorage(cw, client, opts, io);
    const ready = workerReady(cw);
    const boot = await booting;
    const msg: BootMessage = { t: 'boot', config: computeConfig(opts), lsn: boot.lsn, files: boot.files, refs: boot.refs, data: boot.data, hint: boot.hint };
    cw.worker.postMessage(msg, [boot.data.buffer as ArrayBuffer]);
    const r = await ready;
    const dataDirBytes = boot.files.reduce((n, f) => n + f.size, 0);
    // a pooled worker was loaded before this start: its load is not part of it
    const workerLoadMs = pooled ? 0 : await cw.loaded;
    return new Compute({
      cw, timelineId: opts.timelineId, readOnly, lsn: r.stats.lsn, io, stats: r.stats,
      start: {
        totalMs: performance.now() - t0,
        workerLoadMs,
        pgliteStartMs: r.pgliteStartMs,
        pooled,
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
    await cw.terminate();
    throw e;
  }
}
