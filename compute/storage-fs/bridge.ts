// The synchronous bridge between the compute worker (where PGlite runs and its filesystem must block on a page
// miss) and the thread that owns the storage-node client (the worker's parent). The worker posts a request and
// sleeps in Atomics.wait on a SharedArrayBuffer; the parent serves it asynchronously, copies the answer into the
// shared memory and wakes the worker with Atomics.notify.
//
// Shared memory layout: a 64-byte header, then the data area.
//   Int32 [0] state: 0 = request outstanding, 1 = answered
//   Int32 [1] status: 0 = ok, 1 = error (data area holds a UTF-8 message of [2] bytes)
//   Int32 [2] payload byte length
//   Int32 [3] cancel: the id of a call the parent asks the worker to interrupt (0: none)
//   Float64 at byte 16: the LSN of a write acknowledgement
// Page data is answered in the data area (n * PAGE_SIZE bytes); a read asking for more pages than fit is split.
import type { PageRef, WriteBatch } from '../../storage-node/api/types.ts';
import { PAGE_SIZE } from '../../storage-node/api/types.ts';
import type { SyncBackend } from './storage-fs.ts';

const HEADER_BYTES = 64;
const STATE = 0;
const STATUS = 1;
const LENGTH = 2;
const CANCEL = 3;

/** Parent side: asks the worker to interrupt call `callId` at its next cancel point (0 withdraws the request). */
export function requestCancel(memory: SharedArrayBuffer, callId: number): void {
  Atomics.store(new Int32Array(memory, 0, 4), CANCEL, callId);
}

/** Worker side: the call id whose cancellation was asked for (0: none). Cheap enough for hot paths. */
export function cancelView(memory: SharedArrayBuffer): Int32Array {
  return new Int32Array(memory, CANCEL * 4, 1);
}

export type BridgeRequest =
  | { t: 'io-read'; refs: PageRef[]; lsn: number }
  | { t: 'io-write'; batch: WriteBatch };

/** The side that can post messages to the serving thread (parentPort in the worker). */
export interface RequestPort {
  postMessage(value: unknown, transferList?: readonly ArrayBuffer[]): void;
}

export function createBridgeMemory(dataBytes: number = 4 * 1024 * 1024): SharedArrayBuffer {
  const pages = Math.max(1, Math.floor(dataBytes / PAGE_SIZE));
  return new SharedArrayBuffer(HEADER_BYTES + pages * PAGE_SIZE);
}

export class BridgeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BridgeError';
  }
}

/** Worker side: a SyncBackend whose calls block until the serving thread answers. */
export class BridgeClient implements SyncBackend {
  private readonly ctrl: Int32Array;
  private readonly lsnView: Float64Array;
  private readonly data: Uint8Array;
  private readonly port: RequestPort;
  private readonly timeoutMs: number;
  readonly maxPagesPerRequest: number;
  /** Time spent blocked on the bridge, ms. */
  waitedMs = 0;
  roundTrips = 0;
  private broken: BridgeError | null = null;

  constructor(memory: SharedArrayBuffer, port: RequestPort, timeoutMs: number = 120_000) {
    this.ctrl = new Int32Array(memory, 0, 4);
    this.lsnView = new Float64Array(memory, 16, 1);
    this.data = new Uint8Array(memory, HEADER_BYTES);
    this.port = port;
    this.timeoutMs = timeoutMs;
    this.maxPagesPerRequest = Math.floor(this.data.length / PAGE_SIZE);
  }

  private roundTrip(msg: BridgeRequest, transfer?: ArrayBuffer[]): void {
    // After a timeout the late answer may still land in the shared memory: no later call may take it for its own.
    if (this.broken) throw this.broken;
    const t0 = performance.now();
    Atomics.store(this.ctrl, STATE, 0);
    this.port.postMessage(msg, transfer);
    const r = Atomics.wait(this.ctrl, STATE, 0, this.timeoutMs);
    this.waitedMs += performance.now() - t0;
    this.roundTrips++;
    if (r === 'timed-out') {
      this.broken = new BridgeError(`storage request timed out after ${this.timeoutMs} ms; this compute stopped using the storage node (restart it)`);
      throw this.broken;
    }
    if (Atomics.load(this.ctrl, STATUS) !== 0) {
      const len = Atomics.load(this.ctrl, LENGTH);
      throw new BridgeError(new TextDecoder().decode(this.data.slice(0, len)));
    }
  }

  readPagesSync(refs: PageRef[], lsn: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = 0; i < refs.length; i += this.maxPagesPerRequest) {
      const chunk = refs.slice(i, i + this.maxPagesPerRequest);
      this.roundTrip({ t: 'io-read', refs: chunk, lsn });
      for (let j = 0; j < chunk.length; j++) out.push(this.data.slice(j * PAGE_SIZE, (j + 1) * PAGE_SIZE));
    }
    return out;
  }

  writeBatchSync(batch: WriteBatch): number {
    const transfer: ArrayBuffer[] = [];
    const seen = new Set<ArrayBufferLike>();
    for (const op of batch.ops) {
      if (op.op !== 'write') continue;
      const buf = op.data.buffer;
      // only buffers that the op owns whole can be moved; the rest are copied by postMessage
      if (!seen.has(buf) && buf instanceof ArrayBuffer && op.data.byteOffset === 0 && op.data.byteLength === buf.byteLength) {
        seen.add(buf);
        transfer.push(buf);
      }
    }
    this.roundTrip({ t: 'io-write', batch }, transfer);
    return this.lsnView[0];
  }
}

/** What the serving side does with the requests. */
export interface BridgeIo {
  readPages(refs: PageRef[], lsn: number): Promise<Uint8Array[]>;
  writeBatch(batch: WriteBatch): Promise<number>;
}

/** Serving side (the worker's parent): answers bridge requests into the shared memory. */
export class BridgeServer {
  private readonly ctrl: Int32Array;
  private readonly lsnView: Float64Array;
  private readonly data: Uint8Array;
  private readonly io: BridgeIo;

  constructor(memory: SharedArrayBuffer, io: BridgeIo) {
    this.ctrl = new Int32Array(memory, 0, 4);
    this.lsnView = new Float64Array(memory, 16, 1);
    this.data = new Uint8Array(memory, HEADER_BYTES);
    this.io = io;
  }

  static isRequest(msg: unknown): msg is BridgeRequest {
    const t = (msg as { t?: unknown } | null)?.t;
    return t === 'io-read' || t === 'io-write';
  }

  async handle(msg: BridgeRequest): Promise<void> {
    try {
      if (msg.t === 'io-read') {
        const pages = await this.io.readPages(msg.refs, msg.lsn);
        if (pages.length !== msg.refs.length) throw new BridgeError(`read answered ${pages.length} pages for ${msg.refs.length}`);
        if (pages.length * PAGE_SIZE > this.data.length) throw new BridgeError('read answer larger than the bridge');
        if (pages.some((p) => p.length !== PAGE_SIZE)) throw new BridgeError('read answered a page that is not a whole page');
        for (let i = 0; i < pages.length; i++) this.data.set(pages[i].subarray(0, PAGE_SIZE), i * PAGE_SIZE);
        Atomics.store(this.ctrl, LENGTH, pages.length * PAGE_SIZE);
      } else {
        this.lsnView[0] = await this.io.writeBatch(msg.batch);
        Atomics.store(this.ctrl, LENGTH, 0);
      }
      Atomics.store(this.ctrl, STATUS, 0);
    } catch (e) {
      const text = new TextEncoder().encode(String((e as Error)?.message ?? e)).subarray(0, this.data.length);
      this.data.set(text);
      Atomics.store(this.ctrl, LENGTH, text.length);
      Atomics.store(this.ctrl, STATUS, 1);
    }
    Atomics.store(this.ctrl, STATE, 1);
    Atomics.notify(this.ctrl, STATE);
  }
}
