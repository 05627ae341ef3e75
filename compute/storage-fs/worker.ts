// The compute worker: PGlite over StorageFS. It starts PGlite at once, before it knows its timeline: the wasm is
// instantiated and the Emscripten runtime set up, then PGlite waits in the filesystem's initialSyncFs() for the
// boot message (timeline listing, prefetched pages, database, settings). A pooled worker waits there; a start
// then costs only the Postgres start-up. Requests from the parent run one at a time; after each one the
// filesystem's pending changes are shipped as one batch and acknowledged before the reply is posted, so a result
// never reaches a client before its writes are durable on the storage node.
import { quoteIdent } from '../../lib/sql-quote.ts';
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { StorageFS } from './storage-fs.ts';
import type { FsSnapshot } from './storage-fs.ts';
import { BridgeClient, cancelView } from './bridge.ts';
import { createCancelHook } from './cancel-hook.ts';
import { OutputCollector } from './result-limit.ts';
import { encodeHint, HINT_PATH, sameRefs } from './prefetch.ts';
import { serializeError } from './protocol.ts';
import type { BootMessage, CallMessage, ComputeConfig, WorkerInit, WorkerMessage, WorkerStats } from './protocol.ts';
import type { PageRef } from '../../storage-node/api/types.ts';

const port = parentPort!;
const init = workerData as WorkerInit;
const t0 = performance.now();
post({ t: 'loaded' });
const bridge = new BridgeClient(init.memory, port, init.ioTimeoutMs);

let resolveBoot!: (m: BootMessage) => void;
const booted = new Promise<BootMessage>((r) => (resolveBoot = r));
let bootedAt = 0;
let config: ComputeConfig | null = null;
let hint: PageRef[] = [];
let startPages: PageRef[] = [];
// PGlite reads its start parameters from the options object only after initialSyncFs(): filled at boot.
const startParams: string[] = [];

class ComputeFS extends StorageFS {
  override async initialSyncFs(): Promise<void> {
    post({ t: 'prestarted', ms: performance.now() - t0 });
    const boot = await booted;
    // the database is an argument of Postgres' main(), which PGlite takes from ENV right after this returns
    const env = this.pg?.ENV as Record<string, string> | undefined;
    if (env) env.PGDATABASE = boot.config.database;
    startParams.splice(0, startParams.length, ...boot.config.startParams);
    await super.initialSyncFs();
  }
}

const fs = new ComputeFS({
  backend: bridge,
  debug: init.debug,
  snapshot: booted.then((b): FsSnapshot => {
    config = b.config;
    hint = b.hint;
    return {
      lsn: b.lsn, files: b.files, pages: { refs: b.refs, data: b.data },
      settings: { readOnly: b.config.readOnly, cacheBytes: b.config.cacheBytes, maxUnshippedBytes: b.config.maxUnshippedBytes },
    };
  }),
});

function post(msg: WorkerMessage, transfer?: ArrayBuffer[]): void {
  port.postMessage(msg, transfer);
}

let pg: PGlite | null = null;
/** Statements refused for the size of their result (result-limit.ts). */
let resultsRefused = 0;
// Postgres' own last words (e.g. `FATAL: database "x" does not exist` at start) explain a failed start
const stderrTail: string[] = [];
function onStderr(text: string): boolean {
  stderrTail.push(text);
  if (stderrTail.length > 20) stderrTail.shift();
  return init.debug;
}
const cancelHook = createCancelHook(cancelView(init.memory), () => pg);

function stats(): WorkerStats {
  const heap = (pg?.Module as { HEAPU8?: Uint8Array } | undefined)?.HEAPU8;
  return {
    ...fs.getStats(), bridgeRoundTrips: bridge.roundTrips, bridgeWaitMs: bridge.waitedMs,
    wasmMemoryBytes: heap?.buffer.byteLength ?? 0, cancels: cancelHook.cancels, resultsRefused,
  };
}

let stopped = false;
let queue: Promise<void> = Promise.resolve();

// The hint records what a start reads and what the first queries after it read (the catalog pages a session's first
// statements need, the hot index pages): the next start prefetches both in its bulk read instead of fetching them
// one by one while clients wait. The window closes after WARM_CALLS calls, WARM_MS, or at a stop.
const WARM_CALLS = 32;
const WARM_MS = 10_000;
let warmCallsLeft = WARM_CALLS;
let warmUntil = Number.POSITIVE_INFINITY;
let warmOpen = true;

function endWarmPhase(): void {
  if (!warmOpen) return;
  warmOpen = false;
  startPages = fs.endStartPhase();
}

function countWarmCall(): void {
  if (warmOpen && (--warmCallsLeft <= 0 || performance.now() > warmUntil)) endWarmPhase();
}


/**
 * execProtocolRaw without PGlite's default output handler, which copies every chunk twice and parses every
 * backend message into result objects that a raw call never reads (and keeps: they pile up between query()s).
 * The output is copied once, into a buffer bounded by the result limit (result-limit.ts): a statement whose
 * result passes it is interrupted from the output callback, which Postgres calls from its send path.
 */
async function execRaw(db: PGlite, bytes: Uint8Array): Promise<Uint8Array> {
  const out = new OutputCollector({ limitBytes: config!.maxResultBytes, onExceeded: () => cancelHook.interrupt() });
  try {
    await db.execProtocolRawStream(bytes, {
      syncToFs: false,
      // a view of the wasm memory: copied before Postgres writes there again
      onRawData: (chunk: Uint8Array) => out.write(chunk),
    });
  } catch (e) {
    out.finish(); // gives the scratch buffer back
    throw e;
  } finally {
    // a statement that ended before it saw the interrupt must not take it into the next call
    if (out.refused > 0) cancelHook.clearInterrupt();
    resultsRefused += out.refused;
  }
  return out.finish();
}

async function handle(msg: CallMessage): Promise<unknown> {
  if (stopped) throw new Error('compute is stopped');
  const db = pg!;
  switch (msg.op) {
    case 'query':
      return await db.query(msg.sql!, msg.params ?? []);
    case 'exec':
      return await db.exec(msg.sql!);
    case 'protocol': {
      const out = await execRaw(db, msg.bytes!);
      countWarmCall();
      return out;
    }
    case 'flush':
      return null; // the changes of earlier deferred calls are shipped below, as after every call
    case 'stats':
      return stats();
    case 'startPages':
      endWarmPhase();
      return startPages;
    case 'stop': {
      stopped = true;
      await db.close();
      endWarmPhase();
      if (config?.updateHint && !fs.readOnly && startPages.length > 0 && !sameRefs(startPages, hint)) {
        fs.writeFile(HINT_PATH, encodeHint(startPages));
      }
      fs.flush();
      return stats();
    }
  }
}

port.on('message', (msg: BootMessage | CallMessage) => {
  if (msg.t === 'boot') {
    bootedAt = performance.now();
    resolveBoot(msg);
    return;
  }
  if (msg.t !== 'call') return;
  queue = queue.then(async () => {
    let value: unknown;
    let error: unknown = null;
    cancelHook.setCurrentCall(msg.id);
    try {
      value = await handle(msg);
    } catch (e) {
      error = e;
    }
    cancelHook.setCurrentCall(0);
    // the durability point: ship this request's changes and wait for the acknowledgement
    try {
      if (!fs.fencedError && !msg.deferFlush) fs.flush();
    } catch (e) {
      error ??= new Error(`the write batch was not acknowledged, the compute is fenced: ${(e as Error).message}`);
    }
    if (fs.fencedError && error === null) error = new Error(`the compute is fenced: ${fs.fencedError.message}`);
    // a protocol call's output owns its buffer (execRaw): moved, not copied
    const moved = value instanceof Uint8Array && value.buffer instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength ? [value.buffer] : undefined;
    if (error === null) post({ t: 'reply', id: msg.id, ok: true, value, lsn: fs.currentLsn, unshipped: fs.hasUnshippedChanges }, moved);
    else post({ t: 'reply', id: msg.id, ok: false, error: serializeError(error), lsn: fs.currentLsn });
  });
});

try {
  pg = new PGlite({
    fs,
    pgliteWasmModule: init.wasmModule,
    startParams,
    extensions: { lakebaseCancel: cancelHook.extension },
    debug: init.debug ? 1 : undefined,
    onStderr,
  });
  await pg.waitReady;
  const username = config!.username;
  if (username !== 'postgres') await pg.exec(`SET ROLE ${quoteIdent(username)}`);
  const pgliteStartMs = performance.now() - bootedAt;
  warmUntil = performance.now() + WARM_MS;
  fs.flush();
  post({ t: 'ready', pgliteStartMs, stats: stats() });
} catch (e) {
  const error = serializeError(e);
  const said = stderrTail.filter((l) => /FATAL|ERROR|PANIC/.test(l)).join('; ');
  if (said) error.message += ` (Postgres: ${said.trim()})`;
  post({ t: 'fatal', error });
}
