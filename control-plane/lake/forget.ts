// A deleted branch takes its lake records with it (lake tables, synced tables, exports): their capture and guards
// lived in the branch's databases, which are gone. The files already in the bucket stay: they are the lake's.
import type { ControlPlaneState } from '../model.ts';

export function forgetLakeRecords(s: ControlPlaneState, branchIds: ReadonlySet<string>): void {
  for (const map of [s.lake_tables, s.synced_tables, s.lake_exports]) {
    if (!map) continue;
    for (const [id, rec] of Object.entries(map)) if (branchIds.has(rec.branch_id)) delete map[id];
  }
}
