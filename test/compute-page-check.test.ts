// The page check the compute runs on every page read from the storage node (compute/storage-fs/page-check.ts):
// every page of a real data directory made by initdb passes it (no false alarm, which would double reads), a
// damaged page fails it, and a damaged answer is read again and healed, or handed on when it stays damaged.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initLocalDataDir } from '../compute/template.ts';
import { pageLooksValid, readCheckedPages } from '../compute/storage-fs/page-check.ts';
import type { PageRef } from '../storage-node/api/types.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lakebase-pagecheck-'));
  await initLocalDataDir(dir, { database: 'neondb' });
}, 120_000);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function files(root: string): string[] {
  return readdirSync(root).flatMap((n) => {
    const p = join(root, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

const page = (fill: (b: Buffer) => void): Uint8Array => {
  const b = Buffer.alloc(8192);
  fill(b);
  return b;
};

describe('the page check', () => {
  it('passes every page of a data directory initdb made, and checks relation files only', () => {
    let checked = 0;
    for (const f of files(dir)) {
      const path = relative(dir, f);
      const bytes = readFileSync(f);
      for (let p = 0; p * 8192 < bytes.length; p++) {
        const ref = { path, page: p };
        expect(pageLooksValid(ref, bytes.subarray(p * 8192, (p + 1) * 8192)), `${path} page ${p}`).toBe(true);
        if (/^(base\/\d+|global)\/\d+/.test(path)) checked++;
      }
    }
    expect(checked).toBeGreaterThan(500);
    const garbage = page((b) => b.fill(0x5a));
    expect(pageLooksValid({ path: 'base/16384/1255', page: 3 }, garbage)).toBe(false);
    expect(pageLooksValid({ path: 'base/16384/1255_fsm', page: 0 }, garbage)).toBe(false);
    expect(pageLooksValid({ path: 'pg_xact/0000', page: 0 }, garbage)).toBe(true); // no page header there
    expect(pageLooksValid({ path: 'base/16384/1255', page: 3 }, page(() => {}))).toBe(true); // a new, all-zero page
    expect(pageLooksValid({ path: 'base/16384/1255', page: 3 }, page((b) => b.writeUInt16LE(9000, 16)))).toBe(false); // pd_special past the page
  });

  it('reads a damaged page again: healed when the second answer is sound, handed on when it is not', async () => {
    const good = page((b) => {
      b.writeUInt16LE(24, 12);
      b.writeUInt16LE(8192, 14);
      b.writeUInt16LE(8192, 16);
      b.writeUInt16LE(0x2004, 18);
    });
    const bad = page((b) => b.fill(0x5a));
    const refs: PageRef[] = [{ path: 'base/5/1259', page: 0 }, { path: 'base/5/1259', page: 1 }];
    const asked: PageRef[][] = [];
    const heard: [PageRef[], boolean][] = [];
    let answers = [[good, bad], [good]];
    const read = async (r: PageRef[]) => {
      asked.push(r);
      return answers.shift()!;
    };
    expect(await readCheckedPages(refs, read, (b, h) => heard.push([b, h]))).toEqual([good, good]);
    expect(asked).toEqual([refs, [refs[1]]]);
    expect(heard).toEqual([[[refs[1]], true]]);
    answers = [[bad, good], [bad]];
    heard.length = 0;
    expect(await readCheckedPages(refs, read, (b, h) => heard.push([b, h]))).toEqual([bad, good]);
    expect(heard).toEqual([[[refs[0]], false]]);
  });
});
