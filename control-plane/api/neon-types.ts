// Neon's API v2 response types (from @neondatabase/api-client, a dev dependency used for types only: erased at
// run time), with its enum-typed fields restated as the string literals they carry on the wire.
import type {
  Branch, ConnectionDetails, Database, Endpoint, Operation, Project, ProjectListItem, Role,
} from '@neondatabase/api-client';
import type { OperationAction, OperationStatus } from '../model.ts';

export type NeonProject = Project;
export type NeonProjectListItem = ProjectListItem;
export type NeonBranch = Branch;
export type NeonRole = Role;
export type NeonDatabase = Database;
export type NeonConnectionDetails = ConnectionDetails;

export type NeonEndpoint = Omit<Endpoint, 'type' | 'current_state' | 'pending_state' | 'pooler_mode'> & {
  type: 'read_write' | 'read_only';
  current_state: 'init' | 'active' | 'idle';
  pending_state?: 'init' | 'active' | 'idle';
  pooler_mode: 'transaction';
};

/** Beyond Neon: a failed operation's stable `error_code` next to its `error` text. */
export type NeonOperation = Omit<Operation, 'action' | 'status'> & { action: OperationAction; status: OperationStatus; error_code?: string };
