// What one change did to the state, at the grain of records: the records of a keyed collection put or deleted, the
// runs of a list kept from before and the records added, other fields replaced. Computed from the state before and
// after by identity (the state is immutable and shares every record a change did not touch), so it costs one pass
// of pointer comparisons in memory and, in the bucket, only the records that changed, in their order.
import type { ControlPlaneState } from '../model.ts';

/** Collections of records keyed by id. */
const MAPS = ['projects', 'branches', 'endpoints', 'operation_jobs', 'lake_tables', 'synced_tables', 'lake_exports'] as const;
/** Ordered lists of records. */
const LISTS = ['roles', 'databases', 'checkpoints', 'operations'] as const;

type Obj = Record<string, unknown>;
/** A run of the old list kept ([from, to)), or records added there. */
type ListOp = [number, number] | { add: unknown[] };

export interface Delta {
  /** Fields replaced whole (anything that is not a collection, or a collection that appeared or went). */
  set?: Obj;
  maps?: Record<string, { put?: Obj; del?: string[] }>;
  lists?: Record<string, ListOp[]>;
}

function mapDelta(before: Obj, after: Obj): { put?: Obj; del?: string[] } | null {
  const put: Obj = {};
  const del: string[] = [];
  for (const k of Object.keys(after)) if (before[k] !== after[k]) put[k] = after[k];
  for (const k of Object.keys(before)) if (!(k in after)) del.push(k);
  if (del.length === 0 && Object.keys(put).length === 0) return null;
  return { ...(Object.keys(put).length ? { put } : {}), ...(del.length ? { del } : {}) };
}

function listDelta(before: unknown[], after: unknown[]): ListOp[] {
  const at = new Map(before.map((x, i) => [x, i]));
  const ops: ListOp[] = [];
  for (const x of after) {
    const i = at.get(x);
    const last = ops[ops.length - 1];
    if (i === undefined) {
      if (last && !Array.isArray(last)) last.add.push(x);
      else ops.push({ add: [x] });
    } else if (Array.isArray(last) && last[1] === i) last[1] = i + 1;
    else ops.push([i, i + 1]);
  }
  return ops;
}

/** The change from `before` to `after`, or null when they are the same. */
export function diffState(before: ControlPlaneState, after: ControlPlaneState): Delta | null {
  const b = before as unknown as Obj;
  const a = after as unknown as Obj;
  const set: Obj = {};
  const maps: NonNullable<Delta['maps']> = {};
  const lists: NonNullable<Delta['lists']> = {};
  for (const k of new Set([...Object.keys(b), ...Object.keys(a)])) {
    if (b[k] === a[k]) continue;
    const isMap = (MAPS as readonly string[]).includes(k);
    const isList = (LISTS as readonly string[]).includes(k);
    if (isMap && b[k] && a[k]) {
      const m = mapDelta(b[k] as Obj, a[k] as Obj);
      if (m) maps[k] = m;
    } else if (isList && Array.isArray(b[k]) && Array.isArray(a[k])) {
      lists[k] = listDelta(b[k] as unknown[], a[k] as unknown[]);
    } else {
      set[k] = a[k] === undefined ? null : a[k];
    }
  }
  const d: Delta = {
    ...(Object.keys(set).length ? { set } : {}),
    ...(Object.keys(maps).length ? { maps } : {}),
    ...(Object.keys(lists).length ? { lists } : {}),
  };
  return d.set || d.maps || d.lists ? d : null;
}

/** `state` with the change applied, as new plain objects where it changed (the input is not modified). */
export function applyDelta(state: ControlPlaneState, d: Delta): ControlPlaneState {
  const out: Obj = { ...(state as unknown as Obj), ...(d.set ?? {}) };
  for (const [k, m] of Object.entries(d.maps ?? {})) {
    const map: Obj = { ...((out[k] as Obj | undefined) ?? {}), ...(m.put ?? {}) };
    for (const key of m.del ?? []) delete map[key];
    out[k] = map;
  }
  for (const [k, ops] of Object.entries(d.lists ?? {})) {
    const before = (out[k] as unknown[] | undefined) ?? [];
    out[k] = ops.flatMap((op) => (Array.isArray(op) ? before.slice(op[0], op[1]) : op.add));
  }
  return out as unknown as ControlPlaneState;
}
