// Cancelling a running statement inside PGlite. The worker's thread is busy in WebAssembly for the whole
// statement, so no message can reach it, and PGlite's linear memory is not shared, so the parent cannot set
// Postgres' interrupt flags itself. But a statement keeps calling a few JavaScript imports of the wasm module:
// clock_time_get (pg_sleep, timing, busy waits) and fd_pread/fd_pwrite (every page read or written through the
// filesystem, temp files included). This PGlite "extension" wraps those imports with a check of a cancel slot in
// shared memory; when the slot names the running call, it sets QueryCancelPending and InterruptPending in
// Postgres' memory, and the next CHECK_FOR_INTERRUPTS() raises 57014 "canceling statement due to user request",
// exactly as a signal would in a real backend (it also sets the backend's latch, which ends a wait). A statement that computes without calling any of them (a long
// in-memory loop) is not reached: the host then falls back to terminating the worker (see host/README.md).
// interrupt() does the same from the worker's own code while Postgres runs: the result limit calls it from the
// output callback (result-limit.ts), which Postgres calls from its send path.
import type { Extension, PGlite } from '@electric-sql/pglite';

const HOOKED = ['clock_time_get', 'fd_pread', 'fd_pwrite', 'fd_read', 'fd_write'];

type ImportFn = (...args: unknown[]) => unknown;
type Imports = Record<string, Record<string, unknown>>;
type InstantiateWasm = (imports: Imports, done: (...args: unknown[]) => void) => unknown;

interface PostgresGlobals {
  HEAPU8: Uint8Array;
  _QueryCancelPending: number;
  _InterruptPending: number;
  _MyLatch?: number;
}

export interface CancelHook {
  extension: Extension;
  /** The call now running (0 between calls): only a cancel naming it takes effect. */
  setCurrentCall(id: number): void;
  /** Statements interrupted so far (by a cancel request). */
  readonly cancels: number;
  /**
   * Interrupts the running statement now, from inside Postgres (the output path: the result limit): the next
   * CHECK_FOR_INTERRUPTS() raises 57014. False if Postgres' flags cannot be reached.
   */
  interrupt(): boolean;
  /** Withdraws an interrupt the statement ended before seeing, so that it cannot hit the next call's statement. */
  clearInterrupt(): void;
}

/** `slot[0]` holds the call id the parent wants cancelled (written by requestCancel() in bridge.ts). */
export function createCancelHook(slot: Int32Array, getPg: () => PGlite | null): CancelHook {
  let current = 0;
  let cancels = 0;
  const globals = (): PostgresGlobals | null => {
    const mod = getPg()?.Module as unknown as PostgresGlobals | undefined;
    if (!mod || typeof mod._QueryCancelPending !== 'number' || typeof mod._InterruptPending !== 'number') return null;
    return mod;
  };
  const interrupt = (): boolean => {
    const mod = globals();
    if (!mod) return false;
    // both are `volatile sig_atomic_t` (int32 in wasm32, little-endian); the heap's buffer changes as it grows
    const heap = new DataView(mod.HEAPU8.buffer);
    heap.setInt32(mod._QueryCancelPending, 1, true);
    heap.setInt32(mod._InterruptPending, 1, true);
    // and set the backend's latch, as a signal handler would (SetLatch): a wait (pg_sleep, a lock) spins in
    // WaitLatch re-reading the clock and returns once `is_set`, the Latch's first field, is true
    if (typeof mod._MyLatch === 'number') {
      const latch = heap.getInt32(mod._MyLatch, true);
      if (latch > 0 && latch + 4 <= heap.byteLength) heap.setInt32(latch, 1, true);
    }
    return true;
  };
  const check = (): void => {
    const want = slot[0];
    if (want === 0 || want !== current) return;
    Atomics.compareExchange(slot, 0, want, 0);
    if (interrupt()) cancels++;
  };
  // the same function may be imported under two namespaces (env, wasi_snapshot_preview1): wrap it once
  const wrapNamespace = (ns: Record<string, unknown>, wrappedOf: Map<unknown, ImportFn>): void => {
    for (const name of HOOKED) {
      const f = ns[name];
      if (typeof f !== 'function') continue;
      let wrapped = wrappedOf.get(f);
      if (!wrapped) {
        const orig = f as ImportFn;
        wrapped = function (this: unknown, ...args: unknown[]) {
          check();
          return orig.apply(this, args);
        };
        // Emscripten's dynamic linking reads properties of imports (e.g. `sig`, the wasm signature)
        Object.assign(wrapped, orig);
        wrappedOf.set(f, wrapped);
        wrappedOf.set(wrapped, wrapped);
      }
      ns[name] = wrapped;
    }
  };
  const extension: Extension = {
    name: 'lakebase-cancel',
    setup: async (_pg, emscriptenOpts: { instantiateWasm?: InstantiateWasm }) => {
      const inner = emscriptenOpts.instantiateWasm;
      if (!inner) return {};
      const instantiateWasm: InstantiateWasm = (imports, done) => {
        const wrappedOf = new Map<unknown, ImportFn>();
        for (const ns of Object.values(imports)) wrapNamespace(ns, wrappedOf);
        return inner(imports, done);
      };
      return { emscriptenOpts: { ...emscriptenOpts, instantiateWasm } };
    },
  };
  return {
    extension,
    setCurrentCall: (id) => {
      current = id;
    },
    get cancels() {
      return cancels;
    },
    interrupt,
    clearInterrupt: () => {
      const mod = globals();
      if (mod) new DataView(mod.HEAPU8.buffer).setInt32(mod._QueryCancelPending, 0, true);
    },
  };
}
