// What the control plane's services share: the durable state, the storage nodes, the computes, the password box
// and the per-project lock. The operation runner of a plane is `operationsOf(plane)` (one per state store, made on
// first use, which also resumes the jobs a previous process left running); `runnerOf(state)?.stop()` when closing.
import type { ComputeSql } from './compute-sql.ts';
import type { EndpointManager } from './endpoints.ts';
import type { EngineName } from './engines.ts';
import type { KeyedLock } from './keyed-lock.ts';
import type { PasswordBox } from './password-box.ts';
import type { StateStore } from './state-store.ts';
import type { StorageNodes } from './storage/storage-nodes.ts';

export { operationsOf, runnerOf } from './operations/index.ts';

export interface Plane {
  state: StateStore;
  /** The storage nodes; a project's timelines are on `storage.of(state, projectId)`. */
  storage: StorageNodes;
  endpoints: EndpointManager;
  box: PasswordBox;
  /** Runs SQL on a branch's compute; null while no compute host is configured (records only). */
  sql: ComputeSql | null;
  lock: KeyedLock;
  /** The engine of a project created without a pg_version (`lakebase start --engine`). */
  defaultEngine: EngineName;
}
