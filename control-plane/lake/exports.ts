// Snapshot exports: chosen tables of a branch as of an LSN or a time, written to the bucket as Iceberg tables or
// Parquet files from a read-only compute at that point, with progress through the operation.
import type { Plane } from '../plane.ts';
import type { LakeSyncer } from './lake-syncer.ts';

/** An export as the control plane records it. */
export interface ExportRecord {
  id: string;
  project_id: string;
  branch_id: string;
}

export class Exports {
  private readonly plane: Plane;
  private readonly syncer: LakeSyncer;

  constructor(plane: Plane, syncer: LakeSyncer) {
    this.plane = plane;
    this.syncer = syncer;
  }
}
