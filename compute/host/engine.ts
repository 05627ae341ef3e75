// What the compute host holds per compute, whatever its engine: PGlite in a worker thread behind the host's own wire
// server (hosted-compute.ts), or a PostgreSQL 15 postmaster on a FUSE view of the timeline
// (../postgres/postgres-compute.ts). The host admits, starts, lists and stops them through this alone.
import type { AdminSqlAnswer, AdminSqlRequest, ComputeInfo, ComputeState, EngineName } from './api-types.ts';

export interface EngineComputeConfig {
  computeId: string;
  timelineId: string;
  readOnly: boolean;
  /**
   * The writer generation the host took the timeline with (read-write computes; set before start()): every batch
   * carries it, and the storage node refuses it (409 `writer_fenced`) once a newer compute took the timeline.
   */
  writerGeneration?: number;
  /** Memory this compute holds against the host's budget. */
  reservedBytes: number;
}

export interface EngineCompute {
  readonly engine: EngineName;
  readonly config: EngineComputeConfig;
  readonly state: ComputeState;
  readonly startMs: number;
  readonly pagesFetched: number;
  readonly pooled: boolean;
  /** The steps of the last start, ms each, in order (the wake's Server-Timing and the host's start histogram). */
  readonly startPhases: Record<string, number>;
  /** Resolves once the compute accepts connections. */
  start(): Promise<void>;
  /**
   * A clean stop: sessions ended, a shutdown checkpoint, the last write batch acknowledged. `immediate`: no
   * checkpoint and no wait, the processes killed (the compute's storage node is gone or its timeline moved on).
   */
  stop(opts?: { immediate?: boolean }): Promise<{ clean: boolean; lsn: number }>;
  /** Fresh counters for describe() (bounded in time). */
  refreshStats(): Promise<void>;
  describe(): ComputeInfo;
  /** Runs statements as the compute's superuser (the control plane's roles and databases). */
  adminSql(req: AdminSqlRequest): Promise<AdminSqlAnswer>;
}
