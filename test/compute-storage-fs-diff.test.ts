// StorageFS ships only the bytes a write changed inside what the storage node already has (Postgres rewrites
// whole pages: the WAL page a commit appends to), and every byte of a write that extends a file. A synchronous
// in-memory backend stands in for the storage node; a second filesystem reads the remote state back.
import { describe, expect, it } from 'vitest';
import { StorageFS } from '../compute/storage-fs/storage-fs.ts';
import type { SyncBackend } from '../compute/storage-fs/storage-fs.ts';
import type { PageRef, WriteBatch } from '../storage-node/api/types.ts';
import { PAGE_SIZE } from '../storage-node/api/types.ts';

class MemoryRemote implements SyncBackend {
  readonly files = new Map<string, Uint8Array>();
  readonly batches: WriteBatch[] = [];
  lsn = 1;

  readPagesSync(refs: PageRef[]): Uint8Array[] {
    return refs.map((r) => {
      const page = new Uint8Array(PAGE_SIZE);
      const f = this.files.get(r.path) ?? new Uint8Array(0);
      page.set(f.subarray(r.page * PAGE_SIZE, (r.page + 1) * PAGE_SIZE));
      return page;
    });
  }

  writeBatchSync(batch: WriteBatch): number {
    expect(batch.expectedLsn).toBe(this.lsn);
    for (const op of batch.ops) {
      if (op.op === 'create') this.files.set(op.path, new Uint8Array(0));
      else if (op.op === 'write') {
        const f = this.files.get(op.path)!;
        const end = Math.max(f.length, op.offset + op.data.length);
        const next = new Uint8Array(end);
        next.set(f);
        next.set(op.data, op.offset);
        this.files.set(op.path, next);
      } else throw new Error(`unexpected op ${op.op}`);
    }
    this.batches.push({ expectedLsn: batch.expectedLsn, ops: batch.ops.map((o) => (o.op === 'write' ? { ...o, data: o.data.slice() } : o)) });
    return ++this.lsn;
  }

  writes(batch: number): { offset: number; length: number }[] {
    return this.batches[batch].ops.flatMap((o) => (o.op === 'write' ? [{ offset: o.offset, length: o.data.length }] : []));
  }
}

function random(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

async function openFs(remote: MemoryRemote, cacheBytes?: number): Promise<StorageFS> {
  const files = [...remote.files].map(([path, data]) => ({ path, type: 'file' as const, size: data.length }));
  const fs = new StorageFS({ backend: remote, snapshot: { lsn: remote.lsn, files }, cacheBytes });
  await fs.loadSnapshot();
  return fs;
}

function readAll(fs: StorageFS, path: string, size: number): Uint8Array {
  const fd = fs.open(path);
  const out = new Uint8Array(size);
  expect(fs.read(fd, out, 0, size, 0)).toBe(size);
  fs.close(fd);
  return out;
}

describe('StorageFS write shipping', () => {
  it('ships only the changed bytes of a rewritten page, nothing for an identical rewrite, everything that extends a file', async () => {
    const remote = new MemoryRemote();
    const fs = await openFs(remote);
    fs.writeFile('/wal', '');
    const fd = fs.open('/wal');
    const content = random(3 * PAGE_SIZE, 7);
    fs.write(fd, content, 0, content.length, 0);
    fs.flush();
    expect(remote.writes(0)).toEqual([{ offset: 0, length: 3 * PAGE_SIZE }]);

    // the whole middle page written again, 10 bytes of it different
    const page = content.slice(PAGE_SIZE, 2 * PAGE_SIZE);
    for (let i = 100; i < 110; i++) page[i] ^= 0xff;
    fs.write(fd, page, 0, PAGE_SIZE, PAGE_SIZE);
    fs.flush();
    expect(remote.writes(1)).toEqual([{ offset: PAGE_SIZE + 100, length: 10 }]);

    // the same bytes again: nothing to ship, no batch
    fs.write(fd, page, 0, PAGE_SIZE, PAGE_SIZE);
    fs.flush();
    expect(remote.batches.length).toBe(2);

    // zeros past the end still extend the remote file
    fs.write(fd, new Uint8Array(PAGE_SIZE), 0, PAGE_SIZE, 3 * PAGE_SIZE);
    fs.flush();
    expect(remote.writes(2)).toEqual([{ offset: 3 * PAGE_SIZE, length: PAGE_SIZE }]);
    fs.close(fd);

    const expected = new Uint8Array(4 * PAGE_SIZE);
    expected.set(content);
    expected.set(page, PAGE_SIZE);
    expect(remote.files.get('wal')).toEqual(expected);
    // a fresh filesystem with a tiny cache reads the same bytes from the remote
    const cold = await openFs(remote, 1);
    expect(readAll(cold, '/wal', 4 * PAGE_SIZE)).toEqual(expected);
  });

  it('a whole-page write over a page that is not resident ships the whole page (its old bytes are unknown)', async () => {
    const remote = new MemoryRemote();
    const first = await openFs(remote);
    first.writeFile('/rel', '');
    const fd1 = first.open('/rel');
    const old = random(2 * PAGE_SIZE, 3);
    first.write(fd1, old, 0, old.length, 0);
    first.flush();

    const fs = await openFs(remote);
    const fd = fs.open('/rel');
    // zeros in the new page where the old one had data: they must reach the remote
    const page = new Uint8Array(PAGE_SIZE);
    page.set(old.subarray(PAGE_SIZE, PAGE_SIZE + 4000));
    fs.write(fd, page, 0, PAGE_SIZE, PAGE_SIZE);
    fs.flush();
    expect(remote.writes(1)).toEqual([{ offset: PAGE_SIZE, length: PAGE_SIZE }]);
    const expected = old.slice();
    expected.set(page, PAGE_SIZE);
    expect(remote.files.get('rel')).toEqual(expected);
  });
});
