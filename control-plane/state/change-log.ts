// Where the control plane's state lives in the object store: snapshots of the whole state now and then, and between
// them one small object per change (its records, delta.ts), so that a change costs the same whatever the number of
// projects and branches. Every object is created with If-None-Match: a second control plane on the same bucket that
// tries to write change N after this one did is refused, and never overwrites anything.
//
//   control-plane/snapshot/<seq>.json   {"seq", "state"}     the state after change <seq>
//   control-plane/log/<seq>.json        {"seq", "delta"}     change <seq>
//   control-plane/state.json            the single document of older versions: read as change 0 when no snapshot exists
import { PreconditionFailedError } from '../../storage-node/object-store/object-store.ts';
import type { ObjectStore } from '../../storage-node/object-store/object-store.ts';
import type { ControlPlaneState } from '../model.ts';
import { applyDelta } from './delta.ts';
import type { Delta } from './delta.ts';

const LOG = 'control-plane/log/';
const SNAPSHOT = 'control-plane/snapshot/';
export const LEGACY_KEY = 'control-plane/state.json';

/** Fixed width, so that the store's key order is the change order. */
const keyOf = (prefix: string, seq: number) => `${prefix}${String(seq).padStart(12, '0')}.json`;
const seqOf = (key: string) => Number(key.slice(key.lastIndexOf('/') + 1, -'.json'.length));

export interface LoadedState {
  state: ControlPlaneState | null;
  /** The last change applied; the snapshot it started from. */
  seq: number;
  snapshotSeq: number;
}

/** Parallel reads of many small objects (a restart replays up to a snapshot interval of changes). */
async function getAll(store: ObjectStore, keys: string[], parallel = 16): Promise<Buffer[]> {
  const out: Buffer[] = new Array(keys.length);
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const i = next++;
      const r = await store.get(keys[i]);
      if (!r) throw new Error(`control-plane state: ${keys[i]} was listed but is gone; another control plane is collecting it`);
      out[i] = r.body;
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, keys.length) }, worker));
  return out;
}

export class ChangeLog {
  private readonly store: ObjectStore;

  constructor(store: ObjectStore) {
    this.store = store;
  }

  /** The newest snapshot (or the legacy document) and the changes after it, applied by `apply`. */
  async load(empty: ControlPlaneState): Promise<LoadedState> {
    const snapshots = await this.store.list(SNAPSHOT);
    let state: ControlPlaneState | null = null;
    let snapshotSeq = 0;
    const newest = snapshots.at(-1);
    if (newest) {
      const r = await this.store.get(newest.key);
      if (r) {
        state = (JSON.parse(r.body.toString('utf8')) as { state: ControlPlaneState }).state;
        snapshotSeq = seqOf(newest.key);
      }
    } else {
      const legacy = await this.store.get(LEGACY_KEY);
      if (legacy) state = JSON.parse(legacy.body.toString('utf8')) as ControlPlaneState;
    }
    const logs = (await this.store.list(LOG)).map((o) => o.key).filter((k) => seqOf(k) > snapshotSeq);
    let seq = snapshotSeq;
    const bodies = await getAll(this.store, logs);
    for (const [i, key] of logs.entries()) {
      if (seqOf(key) !== seq + 1) throw new Error(`control-plane state: change ${seq + 1} is missing (found ${key}); the log in the bucket is damaged`);
      const { delta } = JSON.parse(bodies[i].toString('utf8')) as { delta: Delta };
      state = applyDelta(state ?? empty, delta); // changes from the very first start on: from the empty state
      seq++;
    }
    return { state, seq, snapshotSeq };
  }

  /**
   * Writes change `seq`; PreconditionFailedError when another control plane wrote it first. A change whose key a
   * newer snapshot already collected would be created again unnoticed, so the write is checked against the
   * snapshots after it lands: a snapshot at or past `seq` means this writer is stale (its change is withdrawn).
   * Snapshots are written before the changes they supersede are deleted, so one of the two checks always sees it.
   */
  async append(seq: number, delta: Delta): Promise<number> {
    const key = keyOf(LOG, seq);
    const body = Buffer.from(JSON.stringify({ seq, delta }));
    await this.store.put(key, body, { ifNoneMatch: '*' });
    const newer = (await this.store.list(SNAPSHOT)).find((o) => seqOf(o.key) >= seq);
    if (newer) {
      await this.store.delete(key);
      throw new PreconditionFailedError(key, `snapshot ${newer.key} already holds change ${seq}`);
    }
    return body.length;
  }

  /** Writes the state after change `seq`, then removes what it supersedes (older snapshots and changes, the legacy document). */
  async snapshot(seq: number, state: ControlPlaneState): Promise<number> {
    const body = Buffer.from(JSON.stringify({ seq, state }));
    await this.store.put(keyOf(SNAPSHOT, seq), body, { ifNoneMatch: '*' });
    const old = [
      ...(await this.store.list(SNAPSHOT)).map((o) => o.key).filter((k) => seqOf(k) < seq),
      ...(await this.store.list(LOG)).map((o) => o.key).filter((k) => seqOf(k) <= seq),
      LEGACY_KEY,
    ];
    for (let i = 0; i < old.length; i += 16) await Promise.all(old.slice(i, i + 16).map((k) => this.store.delete(k)));
    return body.length;
  }

  /** Bytes the state takes in the bucket now (for the benchmark). */
  async bytes(): Promise<number> {
    const all = [...(await this.store.list(SNAPSHOT)), ...(await this.store.list(LOG))];
    return all.reduce((n, o) => n + o.size, 0);
  }
}
