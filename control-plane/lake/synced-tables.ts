// Synced tables (lake -> Postgres): a Postgres table of a branch loaded from an Iceberg table or Parquet files in the
// project's bucket, refreshed on request (a snapshot reload, or incrementally from Iceberg snapshot differences).
import type { Plane } from '../plane.ts';
import type { LakeSyncer } from './lake-syncer.ts';

/** A synced table as the control plane records it. */
export interface SyncedTableRecord {
  id: string;
  project_id: string;
  branch_id: string;
}

export class SyncedTables {
  private readonly plane: Plane;
  private readonly syncer: LakeSyncer;

  constructor(plane: Plane, syncer: LakeSyncer) {
    this.plane = plane;
    this.syncer = syncer;
  }
}
