// An ObjectStore wrapper for fault-injection tests (after Neon's `UnreliableWrapper` in remote_storage): chosen
// operations fail with a given error, or hang until the test releases them, and everything else reaches the real
// store underneath. Faults are picked by the Nth operation counted from now, or by a predicate over the operation.
import type { ByteRange, GetResult, ObjectInfo, ObjectStore, PutOptions } from '../../storage-node/object-store/object-store.ts';

export type StoreOp = 'get' | 'head' | 'put' | 'delete' | 'list';

/** One operation as the wrapper saw it. */
export interface StoreCall {
  op: StoreOp;
  /** The object's key (the prefix, for list). */
  key: string;
  /** 1 for the first operation since the wrapper was made. */
  seq: number;
}

export type CallMatcher = (call: StoreCall) => boolean;

/** A hang set up by `hang()`: operations it caught wait until it is released (or failed). */
export interface Hang {
  /** Resolves with the first operation caught. */
  readonly reached: Promise<StoreCall>;
  /** Operations caught so far. */
  readonly caught: StoreCall[];
  /** Lets every caught operation (and any later one) go on to the real store. */
  release(): void;
  /** Fails every caught operation (and any later one) with `error` instead. */
  fail(error: Error): void;
}

interface Fault {
  match: CallMatcher;
  /** How many more operations it applies to (Infinity: until cleared). */
  remaining: number;
  act: (call: StoreCall) => Promise<void>;
}

export class UnreliableStore implements ObjectStore {
  readonly inner: ObjectStore;
  readonly description: string;
  readonly uri: string;
  /** Every operation, in the order they were started. */
  readonly calls: StoreCall[] = [];
  private seq = 0;
  private faults: Fault[] = [];

  constructor(inner: ObjectStore) {
    this.inner = inner;
    this.description = `unreliable(${inner.description})`;
    this.uri = inner.uri;
  }

  /** Makes the `n`th operation from now (1 = the next) that matches `match` (default: any) fail with `error`. */
  failNth(n: number, error: Error, match: CallMatcher = () => true): void {
    let seen = 0;
    this.failWhen((call) => match(call) && ++seen === n, error, 1);
  }

  /** Makes operations matching `match` fail with `error`, the next `times` of them (default: every one). */
  failWhen(match: CallMatcher, error: Error, times = Infinity): void {
    this.faults.push({ match, remaining: times, act: () => Promise.reject(error) });
  }

  /** Makes operations matching `match` (the next `times` of them; default every one) wait for the Hang's release. */
  hang(match: CallMatcher, times = Infinity): Hang {
    let settle!: (outcome: Error | null) => void;
    const gate = new Promise<Error | null>((resolve) => (settle = resolve));
    let reach!: (call: StoreCall) => void;
    const reached = new Promise<StoreCall>((resolve) => (reach = resolve));
    const caught: StoreCall[] = [];
    this.faults.push({
      match,
      remaining: times,
      act: async (call) => {
        caught.push(call);
        reach(call);
        const error = await gate;
        if (error) throw error;
      },
    });
    return { reached, caught, release: () => settle(null), fail: (e) => settle(e) };
  }

  /** Removes every fault: from now on operations reach the real store (hung ones stay hung until released). */
  heal(): void {
    this.faults = [];
  }

  /** The operations so far that match. */
  count(match: CallMatcher = () => true): number {
    return this.calls.filter(match).length;
  }

  private async gate(op: StoreOp, key: string): Promise<void> {
    const call: StoreCall = { op, key, seq: ++this.seq };
    this.calls.push(call);
    const fault = this.faults.find((f) => f.remaining > 0 && f.match(call));
    if (!fault) return;
    fault.remaining--;
    await fault.act(call);
  }

  async get(key: string, range?: ByteRange): Promise<GetResult | null> {
    await this.gate('get', key);
    return this.inner.get(key, range);
  }

  async head(key: string): Promise<ObjectInfo | null> {
    await this.gate('head', key);
    return this.inner.head(key);
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<{ etag: string }> {
    await this.gate('put', key);
    return this.inner.put(key, body, options);
  }

  async delete(key: string): Promise<void> {
    await this.gate('delete', key);
    return this.inner.delete(key);
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    await this.gate('list', prefix);
    return this.inner.list(prefix);
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}

/** Matchers for the engine's objects. */
export const isPut = (suffix: RegExp): CallMatcher => (c) => c.op === 'put' && suffix.test(c.key);
export const manifestPut: CallMatcher = isPut(/\/manifest\.json$/);
export const layerPut: CallMatcher = isPut(/\/layers\/[^/]+\.layer$/);
export const walPut: CallMatcher = isPut(/\/wal\/[0-9a-f]{16}\.batch$/);
