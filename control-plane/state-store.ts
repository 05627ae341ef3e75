// The control plane's durable state. In memory it is one immutable tree (Immer): a mutation works on a
// copy-on-write draft, so it costs what it touches, and every record it did not change is shared with the state
// before. In the object store it is a log of the records each change touched (state/delta.ts, found by identity),
// one small object per change, with a snapshot now and then (state/change-log.ts): a change costs the same at the
// 10,000th branch as at the first. Mutations are serialised in this process and are
// durable before they return; a second control plane on the same bucket is refused (StateConflictError), never
// silently overwritten.
import { Immer, current, freeze, isDraft } from 'immer';
import type { Draft } from 'immer';
import { ServiceError } from '../lib/errors.ts';
import type { ObjectStore } from '../storage-node/object-store/object-store.ts';
import { PreconditionFailedError } from '../storage-node/object-store/object-store.ts';
import { emptyState } from './model.ts';
import type { ControlPlaneState } from './model.ts';
import { ChangeLog } from './state/change-log.ts';
import { diffState } from './state/delta.ts';

// Frozen: a caller that changes the state outside mutate() fails loudly instead of changing memory only.
const immer = new Immer({ autoFreeze: true });

/** A snapshot every this many changes (or sooner when the changes since outweigh SNAPSHOT_BYTES). */
const SNAPSHOT_EVERY = 1000;
const SNAPSHOT_BYTES = 8 * 1024 * 1024;

/** Another control plane wrote the state: this one's view is stale. A fault of the service (500), kind conflict. */
export class StateConflictError extends ServiceError {
  override name = 'StateConflictError';
  constructor(cause?: unknown) {
    super(500, 'STATE_CONFLICT', 'the control plane state was changed by another control plane; restart this one to reload it', { kind: 'conflict', cause });
  }
}

export class StateStore {
  private readonly log: ChangeLog;
  private state: ControlPlaneState = emptyState();
  private seq = 0;
  private snapshotSeq = 0;
  private bytesSinceSnapshot = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private snapshotting: Promise<void> | null = null;

  constructor(store: ObjectStore) {
    this.log = new ChangeLog(store);
  }

  async load(): Promise<void> {
    const loaded = await this.log.load(emptyState());
    this.state = freeze(loaded.state ?? emptyState(), true);
    this.seq = loaded.seq;
    this.snapshotSeq = loaded.snapshotSeq;
  }

  /** A read-only view of the current state (frozen). */
  get current(): ControlPlaneState {
    return this.state;
  }

  /** The change number the state is at (for tests and the benchmark). */
  get changes(): number {
    return this.seq;
  }

  /**
   * Runs `fn` on a draft of the state and persists what it changed before resolving. If `fn` throws, nothing
   * changes. Records of the draft that `fn` returns are handed back as plain copies.
   */
  mutate<T>(fn: (draft: ControlPlaneState) => T | Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      const draft = immer.createDraft(this.state);
      const result = undraft(await fn(draft as ControlPlaneState));
      const next = immer.finishDraft(draft) as ControlPlaneState;
      const delta = diffState(this.state, next);
      if (!delta) return result;
      try {
        this.bytesSinceSnapshot += await this.log.append(this.seq + 1, delta);
      } catch (e) {
        if (e instanceof PreconditionFailedError) throw new StateConflictError(e);
        throw e;
      }
      this.seq++;
      this.state = next;
      this.maybeSnapshot();
      return result;
    };
    const p = this.tail.then(run, run);
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Writes a snapshot now if any change came since the last (at a clean stop, so that a restart reads little). */
  async flush(): Promise<void> {
    await this.tail;
    await this.snapshotting;
    if (this.seq > this.snapshotSeq) await this.snapshot();
  }

  /** Bytes of the state in the bucket now. */
  bytesInStore(): Promise<number> {
    return this.log.bytes();
  }

  private maybeSnapshot(): void {
    if (this.snapshotting || (this.seq - this.snapshotSeq < SNAPSHOT_EVERY && this.bytesSinceSnapshot < SNAPSHOT_BYTES)) return;
    // the state is immutable: it is written while later changes go on
    this.snapshotting = this.snapshot().catch(() => undefined).finally(() => {
      this.snapshotting = null;
    });
  }

  private async snapshot(): Promise<void> {
    const seq = this.seq;
    await this.log.snapshot(seq, this.state);
    this.snapshotSeq = Math.max(this.snapshotSeq, seq);
    this.bytesSinceSnapshot = 0;
  }
}

/** A result that holds records of the draft: plain copies of them (a draft is unusable once finished). */
function undraft<T>(x: T): T {
  if (isDraft(x)) return current(x as Draft<T>) as T;
  if (Array.isArray(x)) return x.map(undraft) as T;
  if (x !== null && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) {
    const entries = Object.entries(x);
    const plain = entries.map(([k, v]) => [k, undraft(v)] as const);
    return plain.some(([, u], i) => u !== entries[i][1]) ? (Object.fromEntries(plain) as T) : x;
  }
  return x;
}
