// The compute host API's wire types (compute/host/api.ts serves them, control-plane/compute-host-client.ts calls
// it): one definition for both sides.

export type ComputeState = 'starting' | 'running' | 'restarting' | 'stopping' | 'stopped' | 'failed';

export interface StartRequest {
  computeId: string;
  timelineId: string;
  lsn?: number;
  readOnly?: boolean;
  database?: string;
  username?: string;
}

export interface StartAnswer {
  computeId: string;
  host: string;
  port: number;
  startMs: number;
  pagesFetched: number;
  pooled: boolean;
  lsn: number | null;
}

export interface ComputeInfo {
  computeId: string;
  state: ComputeState;
  host: string;
  port: number;
  timelineId: string;
  lsn: number | null;
  readOnly: boolean;
  database: string;
  createdAt: string;
  /** When a batch (a query) last finished on the compute. */
  lastActivityAt: string;
  activeSessions: number;
  /** A session holds the backend inside a transaction. */
  inTransaction: boolean;
  waitingBatches: number;
  startMs: number;
  /** Pages read from the storage node by the start (prefetch and misses). */
  pagesFetched: number;
  /** Pages and bytes read from the storage node since the (last re)start, and the data directory's size then. */
  pagesFetchedTotal: number;
  bytesFetchedTotal: number;
  dataDirBytes: number;
  pooled: boolean;
  restarts: number;
  failure: string | null;
  memory: { estimatedBytes: number; wasmBytes: number; pageCacheBytes: number; reservedBytes: number };
}
