// Messages between a compute's parent thread (compute/compute.ts) and its worker (worker.ts).
import type { FileEntry, PageRef } from '../../storage-node/api/types.ts';
import type { StorageFsStats } from './storage-fs.ts';

/**
 * What a worker needs before it knows its timeline: it loads PGlite, instantiates the wasm and sets up the
 * runtime with this alone, then waits for a BootMessage (a pooled worker waits there until it is given a
 * timeline).
 */
export interface WorkerInit {
  memory: SharedArrayBuffer;
  /** Precompiled pglite.wasm; without it the worker reads and compiles the wasm itself. */
  wasmModule?: WebAssembly.Module;
  ioTimeoutMs: number;
  debug: boolean;
}

/** The compute's own settings, sent with its timeline. */
export interface ComputeConfig {
  readOnly: boolean;
  database: string;
  /** Role to SET ROLE to after the start ('postgres', the bootstrap superuser, leaves the role alone). */
  username: string;
  cacheBytes?: number;
  maxUnshippedBytes?: number;
  startParams: string[];
  /** Rewrite the prefetch hint at a clean stop when the pages read at start differ from it. */
  updateHint: boolean;
  /** Most bytes of output a protocol call keeps; a statement whose result passes it fails with 54000 (result-limit.ts). */
  maxResultBytes: number;
}

export interface BootMessage {
  t: 'boot';
  config: ComputeConfig;
  lsn: number;
  files: FileEntry[];
  refs: PageRef[];
  data: Uint8Array;
  hint: PageRef[];
}

export type CallOp = 'query' | 'exec' | 'protocol' | 'flush' | 'stats' | 'startPages' | 'stop';

export interface CallMessage {
  t: 'call';
  id: number;
  op: CallOp;
  sql?: string;
  params?: unknown[];
  bytes?: Uint8Array;
  /**
   * Do not ship this call's changes after it (a later call ships them, 'flush' or one without the flag): the
   * caller holds its reply until then (group commit of several sessions' statements in one batch).
   */
  deferFlush?: boolean;
}

export interface SerializedError {
  name: string;
  message: string;
  [field: string]: string | number | undefined;
}

export interface WorkerStats extends StorageFsStats {
  bridgeRoundTrips: number;
  bridgeWaitMs: number;
  /** Size of the wasm instance's linear memory (Postgres' heap, shared_buffers included). */
  wasmMemoryBytes: number;
  /** Statements interrupted by a cancel request (QueryCancelPending set from a hook). */
  cancels: number;
  /** Statements refused with 54000 because their result passed maxResultBytes. */
  resultsRefused: number;
}

export type WorkerMessage =
  | { t: 'loaded' }
  | { t: 'prestarted'; ms: number }
  | { t: 'ready'; pgliteStartMs: number; stats: WorkerStats }
  | { t: 'fatal'; error: SerializedError }
  /** `unshipped`: changes are waiting for a flush (after a call with deferFlush). */
  | { t: 'reply'; id: number; ok: true; value: unknown; lsn: number; unshipped?: boolean }
  | { t: 'reply'; id: number; ok: false; error: SerializedError; lsn: number };

export function serializeError(e: unknown): SerializedError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const out: SerializedError = { name: e.name, message: e.message };
  for (const [k, v] of Object.entries(e)) {
    if (typeof v === 'string' || typeof v === 'number') out[k] = v;
  }
  return out;
}

/** An error raised inside a compute (a Postgres error keeps its fields: code, detail, hint, position, ...). */
export class ComputeError extends Error {
  code?: string;
  detail?: string;
  hint?: string;
  severity?: string;
  position?: string;
  [field: string]: unknown;
  constructor(s: SerializedError) {
    super(s.message);
    for (const [k, v] of Object.entries(s)) if (k !== 'message' && k !== 'name' && k !== 'stack') this[k] = v;
    this.name = s.name === 'Error' ? 'ComputeError' : s.name;
  }
}
