// Page versions: a version is a whole page image or a delta (byte ranges written over the previous version).
import { PAGE_SIZE } from '../api/types.ts';

export interface DeltaRange {
  offset: number;
  bytes: Buffer;
}

export type PageData =
  | { kind: 'image'; bytes: Buffer } // up to PAGE_SIZE bytes; the rest of the page is zeros
  | { kind: 'delta'; ranges: DeltaRange[] };

export const ZERO_PAGE: Buffer = Buffer.alloc(PAGE_SIZE);

/** Applies deltas, oldest first, over a base image (or zeros). Returns a fresh PAGE_SIZE buffer. */
export function reconstructPage(base: Buffer | null, deltasNewestFirst: DeltaRange[][]): Buffer {
  const page = Buffer.alloc(PAGE_SIZE);
  if (base) base.copy(page, 0, 0, Math.min(base.length, PAGE_SIZE));
  for (let i = deltasNewestFirst.length - 1; i >= 0; i--) {
    for (const r of deltasNewestFirst[i]) r.bytes.copy(page, r.offset);
  }
  return page;
}

/** Merges a later write (at the same LSN) into an existing version. An image stays an image. */
export function mergeWrite(prev: PageData | undefined, offset: number, bytes: Buffer): PageData {
  if (offset === 0 && bytes.length === PAGE_SIZE) return { kind: 'image', bytes: Buffer.from(bytes) };
  if (prev?.kind === 'image') {
    const img = Buffer.alloc(PAGE_SIZE);
    prev.bytes.copy(img);
    bytes.copy(img, offset);
    return { kind: 'image', bytes: img };
  }
  const ranges = prev?.kind === 'delta' ? prev.ranges.slice() : [];
  ranges.push({ offset, bytes: Buffer.from(bytes) });
  return { kind: 'delta', ranges };
}

/** An image without its trailing zeros, as stored in layer files. */
export function trimImage(bytes: Buffer): Buffer {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return bytes.subarray(0, end);
}

// Delta blob: repeated [u16 offset][u16 length][bytes].
export function encodeDelta(ranges: DeltaRange[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of ranges) {
    const h = Buffer.alloc(4);
    h.writeUInt16BE(r.offset, 0);
    h.writeUInt16BE(r.bytes.length, 2);
    parts.push(h, r.bytes);
  }
  return Buffer.concat(parts);
}

export function decodeDelta(blob: Buffer): DeltaRange[] {
  const out: DeltaRange[] = [];
  let pos = 0;
  while (pos < blob.length) {
    const offset = blob.readUInt16BE(pos);
    const len = blob.readUInt16BE(pos + 2);
    out.push({ offset, bytes: blob.subarray(pos + 4, pos + 4 + len) });
    pos += 4 + len;
  }
  return out;
}
