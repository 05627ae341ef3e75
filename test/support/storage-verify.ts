// Checks a storage-node timeline at an LSN against a reference FsModel, byte for byte.
import { expect } from 'vitest';
import { PAGE_SIZE } from '../../storage-node/api/types.ts';
import type { FileEntry, PageRef } from '../../storage-node/api/types.ts';
import type { FsModel } from './fs-model.ts';

export interface PageReader {
  listFiles(tl: string, lsn?: number): Promise<{ lsn: number; files: FileEntry[] }>;
  readPages(tl: string, refs: PageRef[], lsn?: number): Promise<Buffer[]>;
}

export async function expectTimelineEquals(reader: PageReader, tl: string, lsn: number, model: FsModel, label = ''): Promise<void> {
  const { files } = await reader.listFiles(tl, lsn);
  const expected = [...model.entries]
    .map(([path, e]) => ({ path, type: e.type, size: e.type === 'file' ? e.data.length : 0 }))
    .sort((a, b) => (a.path < b.path ? -1 : 1));
  expect(files, `listing of ${tl} at LSN ${lsn} ${label}`).toEqual(expected);
  for (const f of files) {
    if (f.type !== 'file' || f.size === 0) continue;
    const n = Math.ceil(f.size / PAGE_SIZE);
    const refs = Array.from({ length: n }, (_, page) => ({ path: f.path, page }));
    const pages = await reader.readPages(tl, refs, lsn);
    const got = Buffer.concat(pages).subarray(0, f.size);
    const want = (model.entries.get(f.path) as { data: Buffer }).data;
    if (!got.equals(want)) {
      let i = 0;
      while (got[i] === want[i]) i++;
      expect.fail(`${f.path} of ${tl} at LSN ${lsn} ${label}: first differing byte at ${i} (page ${Math.floor(i / PAGE_SIZE)})`);
    }
  }
}

/** Adapts an in-process StorageEngine to the PageReader shape of the HTTP client. */
export function engineReader(engine: {
  listFiles(tl: string, lsn?: number): Promise<{ lsn: number; files: FileEntry[] }>;
  readPages(tl: string, refs: PageRef[], lsn?: number): Promise<{ pages: Buffer[] }>;
}): PageReader {
  return {
    listFiles: (tl, lsn) => engine.listFiles(tl, lsn),
    readPages: async (tl, refs, lsn) => (await engine.readPages(tl, refs, lsn)).pages,
  };
}
