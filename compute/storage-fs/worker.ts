// The compute worker: PGlite over StorageFS. Requests from the parent run one at a time; after each one the
// filesystem's pending changes are shipped as one batch and acknowledged before the reply is posted, so a
// result never reaches a client before its writes are durable on the storage node.
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { StorageFS } from './storage-fs.ts';
import type { FsSnapshot } from './storage-fs.ts';
import { BridgeClient } from './bridge.ts';
import { encodeHint, HINT_PATH, sameRefs } from './prefetch.ts';
import { serializeError } from './protocol.ts';
import type { BootMessage, CallMessage, WorkerInit, WorkerMessage, WorkerStats } from './protocol.ts';
import type { PageRef } from '../../storage-node/api/types.ts';

const port = parentPort!;
const init = workerData as WorkerInit;
post({ t: 'loaded' });
const bridge = new BridgeClient(init.memory, port, init.ioTimeoutMs);

let resolveBoot!: (m: BootMessage) => void;
const booted = new Promise<BootMessage>((r) => (resolveBoot = r));
let hint: PageRef[] = [];
let startPages: PageRef[] = [];

const fs = new StorageFS({
  backend: bridge,
  readOnly: init.readOnly,
  cacheBytes: init.cacheBytes,
  maxUnshippedBytes: init.maxUnshippedBytes,
  debug: init.debug,
  snapshot: booted.then((b): FsSnapshot => {
    hint = b.hint;
    return { lsn: b.lsn, files: b.files, pages: { refs: b.refs, data: b.data } };
  }),
});

function post(msg: WorkerMessage): void {
  port.postMessage(msg);
}

function stats(): WorkerStats {
  return { ...fs.getStats(), bridgeRoundTrips: bridge.roundTrips, bridgeWaitMs: bridge.waitedMs };
}

let pg: PGlite | null = null;
let stopped = false;
let queue: Promise<void> = Promise.resolve();

async function handle(msg: CallMessage): Promise<unknown> {
  if (stopped) throw new Error('compute is stopped');
  const db = pg!;
  switch (msg.op) {
    case 'query':
      return await db.query(msg.sql!, msg.params ?? []);
    case 'exec':
      return await db.exec(msg.sql!);
    case 'protocol':
      return await db.execProtocolRaw(msg.bytes!, { syncToFs: false });
    case 'stats':
      return stats();
    case 'startPages':
      return startPages;
    case 'stop': {
      stopped = true;
      await db.close();
      if (init.updateHint && !init.readOnly && startPages.length > 0 && !sameRefs(startPages, hint)) {
        fs.writeFile(HINT_PATH, encodeHint(startPages));
      }
      fs.flush();
      return stats();
    }
  }
}

port.on('message', (msg: BootMessage | CallMessage) => {
  if (msg.t === 'boot') {
    resolveBoot(msg);
    return;
  }
  if (msg.t !== 'call') return;
  queue = queue.then(async () => {
    let value: unknown;
    let error: unknown = null;
    try {
      value = await handle(msg);
    } catch (e) {
      error = e;
    }
    // the durability point: ship this request's changes and wait for the acknowledgement
    try {
      if (!fs.fencedError) fs.flush();
    } catch (e) {
      error ??= new Error(`the write batch was not acknowledged, the compute is fenced: ${(e as Error).message}`);
    }
    if (fs.fencedError && error === null) error = new Error(`the compute is fenced: ${fs.fencedError.message}`);
    if (error === null) post({ t: 'reply', id: msg.id, ok: true, value, lsn: fs.currentLsn });
    else post({ t: 'reply', id: msg.id, ok: false, error: serializeError(error), lsn: fs.currentLsn });
  });
});

try {
  const t0 = performance.now();
  pg = await PGlite.create({
    fs,
    database: init.database,
    username: init.username,
    pgliteWasmModule: init.wasmModule,
    startParams: init.startParams,
    debug: init.debug ? 1 : undefined,
  });
  const pgliteStartMs = performance.now() - t0;
  startPages = fs.endStartPhase();
  fs.flush();
  post({ t: 'ready', pgliteStartMs, stats: stats() });
} catch (e) {
  post({ t: 'fatal', error: serializeError(e) });
}
