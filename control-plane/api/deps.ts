// What the route modules share.
import type { BranchAdmin } from '../branch-admin.ts';
import type { CheckpointAdmin } from '../checkpoints.ts';
import type { EndpointAdmin } from '../endpoint-admin.ts';
import type { Plane } from '../plane.ts';
import type { ProjectAdmin } from '../project-admin.ts';
import type { RoleAdmin } from '../role-admin.ts';
import type { Views } from './views.ts';
import type { LakeSyncer } from '../lake/lake-syncer.ts';
import type { LakeTables } from '../lake/lake-tables.ts';
import type { Exports } from '../lake/exports.ts';
import type { SyncedTables } from '../lake/synced-tables.ts';

export interface ApiDeps {
  plane: Plane;
  views: Views;
  projects: ProjectAdmin;
  branches: BranchAdmin;
  checkpoints: CheckpointAdmin;
  endpoints: EndpointAdmin;
  roles: RoleAdmin;
  /** Lake tables and the syncer (and its bucket) behind them. */
  lake: { tables: LakeTables; synced: SyncedTables; exports: Exports; store: LakeSyncer['store'] };
}
