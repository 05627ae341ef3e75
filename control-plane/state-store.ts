// The control plane's durable state: one JSON document in the object store, replaced only by conditional writes
// (If-Match), so that a second control plane on the same bucket can never silently overwrite it. Mutations are
// serialised in this process and are durable before they return.
import { ServiceError } from '../lib/errors.ts';
import type { ObjectStore } from '../storage-node/object-store/object-store.ts';
import { PreconditionFailedError } from '../storage-node/object-store/object-store.ts';
import { emptyState } from './model.ts';
import type { ControlPlaneState } from './model.ts';

const KEY = 'control-plane/state.json';

/** Another control plane wrote the state: this one's view is stale. A fault of the service (500), kind conflict. */
export class StateConflictError extends ServiceError {
  override name = 'StateConflictError';
  constructor(cause?: unknown) {
    super(500, 'STATE_CONFLICT', 'the control plane state was changed by another control plane; restart this one to reload it', { kind: 'conflict', cause });
  }
}

export class StateStore {
  private readonly store: ObjectStore;
  private state: ControlPlaneState = emptyState();
  private etag: string | null = null;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(store: ObjectStore) {
    this.store = store;
  }

  async load(): Promise<void> {
    const res = await this.store.get(KEY);
    if (res) {
      this.state = JSON.parse(res.body.toString('utf8')) as ControlPlaneState;
      this.etag = res.etag;
    }
  }

  /** A read-only view of the current state. Callers must not mutate it. */
  get current(): ControlPlaneState {
    return this.state;
  }

  /**
   * Runs `fn` on a copy of the state and persists the result before resolving. If `fn` throws, nothing changes.
   */
  mutate<T>(fn: (draft: ControlPlaneState) => T | Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      const draft = structuredClone(this.state);
      const result = await fn(draft);
      const body = Buffer.from(JSON.stringify(draft));
      try {
        const { etag } = await this.store.put(KEY, body, this.etag === null ? { ifNoneMatch: '*' } : { ifMatch: this.etag });
        this.etag = etag;
      } catch (e) {
        if (e instanceof PreconditionFailedError) throw new StateConflictError(e);
        throw e;
      }
      this.state = draft;
      return result;
    };
    const p = this.tail.then(run, run);
    this.tail = p.catch(() => undefined);
    return p;
  }
}
