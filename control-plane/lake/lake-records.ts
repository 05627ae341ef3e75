// What branch changes do to lake records. A deleted branch takes its records with it (lake tables, synced tables,
// exports): their capture and guards lived in the branch's databases. A branch moved to another point (reset,
// restore, rewind) pauses its lake tables: Postgres went back while the lake holds later changes, and following on
// would put a mix of both in the lake. Files already in the bucket stay: they are the lake's.
import type { ControlPlaneState } from '../model.ts';

export function forgetLakeRecords(s: ControlPlaneState, branchIds: ReadonlySet<string>): void {
  for (const map of [s.lake_tables, s.synced_tables, s.lake_exports]) {
    if (!map) continue;
    for (const [id, rec] of Object.entries(map)) if (branchIds.has(rec.branch_id)) delete map[id];
  }
}

export function pauseLakeTables(s: ControlPlaneState, branchId: string, what: string): void {
  for (const t of Object.values(s.lake_tables ?? {})) {
    if (t.branch_id !== branchId || t.status === 'paused') continue;
    t.status = 'paused';
    t.status_message = `the branch was ${what}, so Postgres no longer holds what the lake holds: delete this lake table and create it again to start over`;
  }
}
