// Worker for test/compute-fs-model.test.ts: drives StorageFS (without PGlite) through random file operations,
// checking every read against a reference model, and reports the model at each acknowledged flush.
import { parentPort, workerData } from 'node:worker_threads';
import { StorageFS } from '../../compute/storage-fs/storage-fs.ts';
import { BridgeClient } from '../../compute/storage-fs/bridge.ts';
import type { FileEntry } from '../../storage-node/api/types.ts';
import { FsModel, randomOps, rng } from './fs-model.ts';

export interface FsWorkerInit {
  memory: SharedArrayBuffer;
  mode: 'random' | 'verify';
  seed: number;
  steps: number;
  lsn: number;
  files: FileEntry[];
  /** verify mode: the expected contents. */
  expected?: [string, Uint8Array | null][];
  cacheBytes: number;
  maxUnshippedBytes: number;
}

export type FsWorkerMessage =
  | { t: 'flushed'; lsn: number; entries: [string, Uint8Array | null][] }
  | { t: 'done'; stats: ReturnType<StorageFS['getStats']> }
  | { t: 'failed'; message: string };

const init = workerData as FsWorkerInit;
const port = parentPort!;
const fs = new StorageFS({
  backend: new BridgeClient(init.memory, port, 30_000),
  snapshot: { lsn: init.lsn, files: init.files },
  cacheBytes: init.cacheBytes,
  maxUnshippedBytes: init.maxUnshippedBytes,
});

function readWhole(path: string, size: number): Buffer {
  const fd = fs.open('/' + path);
  const buf = Buffer.alloc(size + 100);
  const n = fs.read(fd, buf, 0, size + 100, 0);
  fs.close(fd);
  if (n !== size) throw new Error(`${path}: read ${n} bytes, expected ${size}`);
  return buf.subarray(0, n);
}

function check(model: FsModel, path: string, rand: () => number): void {
  const e = model.entries.get(path);
  if (e?.type !== 'file') return;
  const st = fs.lstat('/' + path);
  if (st.size !== e.data.length) throw new Error(`${path}: size ${st.size}, model ${e.data.length}`);
  if (rand() < 0.5) {
    const got = readWhole(path, e.data.length);
    if (!got.equals(e.data)) throw new Error(`${path}: contents differ from the model`);
  } else if (e.data.length > 0) {
    const off = Math.floor(rand() * e.data.length);
    const len = 1 + Math.floor(rand() * 20000);
    const buf = new Uint8Array(len + 16);
    const fd = fs.open('/' + path);
    const n = fs.read(fd, buf, 16, len, off);
    fs.close(fd);
    const want = e.data.subarray(off, off + len);
    if (n !== want.length || !Buffer.from(buf.subarray(16, 16 + n)).equals(want)) throw new Error(`${path}: range ${off}+${len} differs`);
  }
}

function entries(model: FsModel): [string, Uint8Array | null][] {
  return [...model.entries].map(([k, v]) => [k, v.type === 'file' ? new Uint8Array(v.data) : null]);
}

try {
  await fs.loadSnapshot();
  if (init.mode === 'random') {
    const rand = rng(init.seed);
    const model = new FsModel();
    fs.mkdir('/d');
    model.apply({ op: 'mkdir', path: 'd' });
    for (let step = 0; step < init.steps; step++) {
      for (const op of randomOps(model, rand, 1 + Math.floor(rand() * 4), `s${step}`)) {
        switch (op.op) {
          case 'create':
            fs.writeFile('/' + op.path, '');
            break;
          case 'write': {
            const fd = fs.open('/' + op.path);
            // EMFS hands write() the wasm memory's ArrayBuffer plus an offset: do the same half of the time
            if (rand() < 0.5) {
              const mem = new Uint8Array(op.data.byteLength + 40);
              mem.set(op.data, 40);
              fs.write(fd, mem.buffer as unknown as Uint8Array, 40, op.data.byteLength, op.offset);
            } else {
              fs.write(fd, op.data, 0, op.data.byteLength, op.offset);
            }
            fs.close(fd);
            break;
          }
          case 'truncate':
            fs.truncate('/' + op.path, op.size);
            break;
          case 'unlink':
            fs.unlink('/' + op.path);
            break;
          case 'rename':
            fs.rename('/' + op.from, '/' + op.to);
            break;
          default:
            throw new Error(`unexpected op ${op.op}`);
        }
        model.apply(op);
        check(model, op.op === 'rename' ? op.to : op.path, rand);
      }
      const files = model.files();
      if (files.length > 0 && rand() < 0.3) check(model, files[Math.floor(rand() * files.length)], rand);
      if (rand() < 0.2 || step === init.steps - 1) {
        const lsn = fs.flush();
        const msg: FsWorkerMessage = { t: 'flushed', lsn, entries: entries(model) };
        port.postMessage(msg);
      }
    }
    // the directory listing matches too
    const listed = fs.readdir('/d').sort();
    const want = [...model.entries.keys()].filter((k) => k.startsWith('d/')).map((k) => k.slice(2)).sort();
    if (JSON.stringify(listed) !== JSON.stringify(want)) throw new Error(`readdir differs: ${listed} vs ${want}`);
  } else {
    const rand = rng(init.seed);
    const model = new FsModel();
    for (const [k, v] of init.expected!) model.entries.set(k, v ? { type: 'file', data: Buffer.from(v) } : { type: 'dir' });
    for (let round = 0; round < 3; round++) for (const path of model.files()) check(model, path, rand);
  }
  port.postMessage({ t: 'done', stats: fs.getStats() } satisfies FsWorkerMessage);
} catch (e) {
  port.postMessage({ t: 'failed', message: (e as Error).stack ?? String(e) } satisfies FsWorkerMessage);
}
