// The bucket's per-batch WAL objects of a timeline (object-store durability), read back in LSN order by the node
// that loads the timeline: after a restart, or when it adopts a timeline another node wrote. Objects that a fenced
// writer left behind are told apart from the timeline's history: a batch of an older writer generation past the
// point where the current writer took the timeline (manifest `writerSinceLsn`) comes from a node that had not heard
// of the takeover (its node refused it: manifest-watch.ts). It is not the timeline's, nor is anything after it (built
// on it, or refused because of it). Such objects are ignored by whoever loads the timeline and deleted only by the
// writer that needs their LSN (walObjectState): a reader that deleted one could delete the writer's own batch, put
// under the same key between the reader's look and its delete.
import { decodeBatch } from '../api/batch-codec.ts';
import type { WriteBatch } from '../api/types.ts';
import type { ObjectStore } from '../object-store/object-store.ts';
import { keys } from './manifest.ts';
import type { Manifest } from './manifest.ts';
import { decodeRecords } from './write-log.ts';

export interface WalBatch {
  lsn: number;
  time: number;
  batch: WriteBatch;
}

export interface WalObjects {
  /** The timeline's batches after `afterLsn`, in LSN order. */
  batches: WalBatch[];
  /** Keys of a fenced writer's objects and of every object after them: not the timeline's. */
  staleKeys: string[];
  /** LSN of the first of them (null: none). */
  staleFrom: number | null;
}

/** Whether a batch at `lsn` was written by a writer the manifest's takeover fenced. */
export function isStaleWriter(m: Manifest, lsn: number, batch: WriteBatch): boolean {
  if (m.writerSinceLsn === undefined || lsn <= m.writerSinceLsn) return false;
  return (batch.writerGeneration ?? 0) < (m.writerGeneration ?? 0);
}

/** Reads the WAL objects of the manifest's timeline with an LSN after `afterLsn` (the layers hold the rest). */
export async function readWalObjects(store: ObjectStore, m: Manifest, afterLsn: number): Promise<WalObjects> {
  const out: WalObjects = { batches: [], staleKeys: [], staleFrom: null };
  for (const o of await store.list(keys.walPrefix(m.timelineId))) {
    if (out.staleFrom !== null) {
      out.staleKeys.push(o.key);
      continue;
    }
    const named = Number.parseInt(o.key.slice(o.key.lastIndexOf('/') + 1), 16); // <lsn hex>.batch
    if (named <= afterLsn) continue; // in a layer already; its deletion failed or is under way
    const res = await store.get(o.key);
    if (!res) continue;
    for (const r of decodeRecords(res.body).records) {
      if (r.type !== 'batch' || r.lsn <= afterLsn) continue;
      const batch = decodeBatch(r.batch);
      if (isStaleWriter(m, r.lsn, batch)) {
        out.staleFrom = r.lsn;
        out.staleKeys.push(o.key);
        break;
      }
      out.batches.push({ lsn: r.lsn, time: r.time, batch });
    }
  }
  return out;
}

/**
 * The WAL object at `lsn` as the manifest `m` sees it: `stale` when a writer the manifest's takeover fenced put it
 * (its node never acknowledged it), `live` when it is the timeline's, `missing` when there is none.
 */
export async function walObjectState(store: ObjectStore, m: Manifest, lsn: number): Promise<'missing' | 'stale' | 'live'> {
  const res = await store.get(keys.walObject(m.timelineId, lsn));
  if (!res) return 'missing';
  for (const r of decodeRecords(res.body).records) {
    if (r.type === 'batch' && r.lsn === lsn) return isStaleWriter(m, lsn, decodeBatch(r.batch)) ? 'stale' : 'live';
  }
  return 'live'; // not a batch of this LSN: nothing this rule may remove
}
