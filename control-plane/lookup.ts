// Finding records by id, always inside one project: an id of another project is as unknown as a random one.
import { current, isDraft } from 'immer';
import type { Draft } from 'immer';
import { notFound } from './errors.ts';
import type { BranchRecord, CheckpointRecord, ControlPlaneState, DatabaseRecord, EndpointRecord, ProjectRecord, RoleRecord } from './model.ts';

export function getProject(s: ControlPlaneState, projectId: string): ProjectRecord {
  const p = s.projects[projectId];
  if (!p) throw notFound('PROJECT_NOT_FOUND', `project ${projectId} not found`);
  return p;
}

export function getBranch(s: ControlPlaneState, projectId: string, branchId: string): BranchRecord {
  getProject(s, projectId);
  const b = s.branches[branchId];
  if (!b || b.project_id !== projectId) throw notFound('BRANCH_NOT_FOUND', `branch ${branchId} not found in project ${projectId}`);
  return b;
}

export function getEndpoint(s: ControlPlaneState, projectId: string, endpointId: string): EndpointRecord {
  getProject(s, projectId);
  const e = s.endpoints[endpointId];
  if (!e || e.project_id !== projectId) throw notFound('ENDPOINT_NOT_FOUND', `endpoint ${endpointId} not found in project ${projectId}`);
  return e;
}

export function getRole(s: ControlPlaneState, branchId: string, name: string): RoleRecord {
  const r = s.roles.find((x) => x.branch_id === branchId && x.name === name);
  if (!r) throw notFound('ROLE_NOT_FOUND', `role ${name} not found on branch ${branchId}`);
  return r;
}

export function getDatabase(s: ControlPlaneState, branchId: string, name: string): DatabaseRecord {
  const d = s.databases.find((x) => x.branch_id === branchId && x.name === name);
  if (!d) throw notFound('DATABASE_NOT_FOUND', `database ${name} not found on branch ${branchId}`);
  return d;
}

/**
 * A collection of the state, plainly: inside a mutation the state is an Immer draft, and reading every record of a
 * draft makes a draft of each; a scan reads a plain copy instead (records it does not change stay shared), then
 * takes drafts of the matches only. Outside a mutation, the state itself.
 */
export function plain<T>(x: T): T {
  return isDraft(x) ? (current(x as Draft<T>) as T) : x;
}

/** The records of a keyed collection that match, as the caller's state holds them (drafts inside a mutation). */
function matching<T>(records: Record<string, T>, test: (r: T) => boolean): T[] {
  const all = plain(records);
  return Object.keys(all).filter((k) => test(all[k])).map((k) => records[k]);
}

export const branchesOf = (s: ControlPlaneState, projectId: string): BranchRecord[] => matching(s.branches, (b) => b.project_id === projectId);

export const endpointsOfBranch = (s: ControlPlaneState, branchId: string): EndpointRecord[] => matching(s.endpoints, (e) => e.branch_id === branchId);

export const childrenOf = (s: ControlPlaneState, branchId: string): BranchRecord[] => matching(s.branches, (b) => b.parent_id === branchId);

/** A branch's checkpoint by name, or 404. */
export function findCheckpoint(s: ControlPlaneState, branchId: string, name: string): CheckpointRecord {
  const c = (s.checkpoints ?? []).find((x) => x.branch_id === branchId && x.name === name);
  if (!c) throw notFound('CHECKPOINT_NOT_FOUND', `checkpoint ${JSON.stringify(name)} not found on branch ${branchId}; list them with GET .../branches/${branchId}/checkpoints`);
  return c;
}
