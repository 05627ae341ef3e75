// The compute host API's wire types (compute/host/api.ts serves them, control-plane/compute-host-client.ts calls
// it): one definition for both sides.

export type ComputeState = 'starting' | 'running' | 'restarting' | 'stopping' | 'stopped' | 'failed';

/** The two compute engines: PGlite (Postgres 18 in WebAssembly) and Debian's PostgreSQL 15 on a FUSE data directory. */
export type EngineName = 'pglite' | 'postgres';
export const ENGINES: readonly EngineName[] = ['pglite', 'postgres'];

/** A role as the control plane keeps it: the compute (postgres engine) must hold the same SCRAM verifier literal. */
export interface RoleVerifier {
  name: string;
  verifier: string;
}

export interface StartRequest {
  computeId: string;
  timelineId: string;
  lsn?: number;
  readOnly?: boolean;
  database?: string;
  username?: string;
  /** The engine of the timeline's project (default pglite). A project's engine never changes. */
  engine?: EngineName;
  /** postgres engine: the roles' verifiers, set in the compute at start when they differ (SCRAM pass-through). */
  roles?: RoleVerifier[];
  /**
   * May the host suspend it, once idle, to make room for starts waiting for memory (default true)? False for an
   * endpoint that never suspends.
   */
  evictable?: boolean;
  /**
   * The storage node serving the timeline (an http(s) URL; several nodes share one bucket, each project's timelines
   * on one): the start's check and the compute's reads and writes go to it. Absent: the host's own --storage-url.
   */
  storageUrl?: string;
}

/** Statements the control plane runs as the compute's superuser (roles, databases, lake sync), in order, in one database. */
export interface AdminSqlRequest {
  database: string;
  statements: string[];
  /** Work the compute's users did not ask for (the lake sync): it never counts as activity, so it keeps no compute awake. */
  background?: boolean;
}

/** One statement's result: column names and rows of Postgres' text values (null for NULL). */
export interface AdminSqlResult {
  fields: string[];
  rows: (string | null)[][];
}

export interface AdminSqlAnswer {
  results: AdminSqlResult[];
}

/** A template timeline made on the host (initdb once): every project of the engine branches from it. */
export interface TemplateAnswer {
  engine: EngineName;
  timelineId: string;
  lsn: number;
  initdbMs: number;
}

export interface StartAnswer {
  computeId: string;
  host: string;
  port: number;
  startMs: number;
  pagesFetched: number;
  pooled: boolean;
  lsn: number | null;
  engine: EngineName;
  /** The start's steps, ms each (the wait for memory and the host's own check first, then the engine's). */
  phases: Record<string, number>;
}

export interface ComputeInfo {
  computeId: string;
  state: ComputeState;
  engine: EngineName;
  host: string;
  port: number;
  timelineId: string;
  /** The storage node the compute reads and writes through (the start's storageUrl, else the host's own). */
  storageUrl: string;
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
  /** postgres engine: the postmaster's pid and the resident memory of its processes and its FUSE server. */
  postmasterPid: number | null;
  rssBytes: number | null;
}
