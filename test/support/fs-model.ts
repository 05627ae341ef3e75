// A reference filesystem for tests: applies the same file ops as the storage node, naively, in memory.
// Tests compare what the storage node reads at each LSN with this model's snapshot at that LSN.
import type { FileOp } from '../../storage-node/api/types.ts';

export type ModelEntry = { type: 'dir' } | { type: 'file'; data: Buffer };

export class FsModel {
  entries = new Map<string, ModelEntry>();

  clone(): FsModel {
    const m = new FsModel();
    for (const [k, v] of this.entries) m.entries.set(k, v.type === 'file' ? { type: 'file', data: Buffer.from(v.data) } : v);
    return m;
  }

  apply(op: FileOp): void {
    switch (op.op) {
      case 'mkdir':
        this.entries.set(op.path, { type: 'dir' });
        break;
      case 'create':
        if (!this.entries.has(op.path)) this.entries.set(op.path, { type: 'file', data: Buffer.alloc(0) });
        break;
      case 'write': {
        const e = this.entries.get(op.path) as { type: 'file'; data: Buffer };
        const end = op.offset + op.data.byteLength;
        if (end > e.data.length) {
          const grown = Buffer.alloc(end);
          e.data.copy(grown);
          e.data = grown;
        }
        Buffer.from(op.data).copy(e.data, op.offset);
        break;
      }
      case 'truncate': {
        const e = this.entries.get(op.path) as { type: 'file'; data: Buffer };
        const next = Buffer.alloc(op.size);
        e.data.copy(next, 0, 0, Math.min(op.size, e.data.length));
        e.data = next;
        break;
      }
      case 'unlink':
      case 'rmdir':
        this.entries.delete(op.path);
        break;
      case 'rename': {
        const moved = [...this.entries].filter(([k]) => k === op.from || k.startsWith(op.from + '/'));
        for (const [k] of moved) this.entries.delete(k);
        for (const [k, v] of moved) this.entries.set(op.to + k.slice(op.from.length), v);
        break;
      }
    }
  }

  files(): string[] {
    return [...this.entries].filter(([, v]) => v.type === 'file').map(([k]) => k);
  }
}

/** A small deterministic PRNG, so that failures reproduce. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random but valid batch of ops against the model's current state (the model is not changed). */
export function randomOps(model: FsModel, rand: () => number, n: number, tag: string): FileOp[] {
  const m = model.clone();
  const ops: FileOp[] = [];
  const int = (k: number) => Math.floor(rand() * k);
  for (let i = 0; i < n; i++) {
    const files = m.files();
    const r = rand();
    let op: FileOp;
    if (files.length === 0 || r < 0.12) {
      const path = `d/${tag}-${int(1e9)}`;
      op = { op: 'create', path };
    } else {
      const path = files[int(files.length)];
      const size = (m.entries.get(path) as { data: Buffer }).data.length;
      if (r < 0.65) {
        // Mostly page-aligned whole pages (like Postgres relation files), some partial writes (like WAL or small files).
        const whole = rand() < 0.6;
        const offset = whole ? int(6) * 8192 : int(Math.max(size, 1) + 9000);
        const len = whole ? 8192 * (1 + int(2)) : 1 + int(3000);
        const data = Buffer.alloc(len);
        for (let j = 0; j < len; j += 512) data[j] = 1 + int(255);
        op = { op: 'write', path, offset, data };
      } else if (r < 0.77) {
        op = { op: 'truncate', path, size: int(size + 1) };
      } else if (r < 0.85) {
        op = { op: 'unlink', path };
      } else {
        op = { op: 'rename', from: path, to: `d/${tag}-r${int(1e9)}` };
      }
    }
    m.apply(op);
    ops.push(op);
  }
  return ops;
}
