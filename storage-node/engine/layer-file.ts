// Layer files: immutable, self-describing files holding the versions of one timeline over an LSN range.
// Format (docs/storage-format.md):
//   "LKBLAYR1" | blobs ... | index (JSON, UTF-8) | footer (32 bytes)
//   footer = u64 BE index offset | u64 BE index length | u32 BE crc32(index) | u32 0 | "LKBLEND1"
import { crc32 } from 'node:zlib';
import { ServiceError } from '../../lib/errors.ts';
import { encodeDelta, trimImage } from './page.ts';
import type { PageData } from './page.ts';
import type { NsEntry, SizeValue } from './timeline.ts';

export const LAYER_MAGIC = Buffer.from('LKBLAYR1');
export const LAYER_END = Buffer.from('LKBLEND1');
export const FOOTER_SIZE = 32;

export type LayerKind = 'delta' | 'image';

export interface LayerIndex {
  format: 'lakebase-layer';
  version: 1;
  timelineId: string;
  kind: LayerKind;
  lsnStart: number;
  lsnEnd: number;
  /** [path, lsn, entry or null when removed] */
  ns: [string, number, NsEntry | null][];
  /** [inode, lsn, size, cut] */
  sizes: [string, number, number, number][];
  /** [page key "inode/page", lsn, "i" image | "d" delta, blob offset, blob length] */
  pages: [string, number, 'i' | 'd', number, number][];
  /** [lsn, commit time ms, Postgres' WAL position (absent in layers written before it was kept)] */
  times: LayerTime[];
}

export interface LayerContent {
  timelineId: string;
  kind: LayerKind;
  lsnStart: number;
  lsnEnd: number;
  ns: [string, number, NsEntry | null][];
  sizes: [string, number, SizeValue][];
  pages: [string, number, PageData][];
  times: LayerTime[];
}

export type LayerTime = [number, number] | [number, number, number];

export function encodeLayer(c: LayerContent): { bytes: Buffer; index: LayerIndex } {
  const blobs: Buffer[] = [LAYER_MAGIC];
  let offset = LAYER_MAGIC.length;
  const pages: LayerIndex['pages'] = [];
  for (const [key, lsn, data] of c.pages) {
    const blob = data.kind === 'image' ? trimImage(data.bytes) : encodeDelta(data.ranges);
    pages.push([key, lsn, data.kind === 'image' ? 'i' : 'd', offset, blob.length]);
    blobs.push(blob);
    offset += blob.length;
  }
  const index: LayerIndex = {
    format: 'lakebase-layer',
    version: 1,
    timelineId: c.timelineId,
    kind: c.kind,
    lsnStart: c.lsnStart,
    lsnEnd: c.lsnEnd,
    ns: c.ns,
    sizes: c.sizes.map(([ino, lsn, v]) => [ino, lsn, v.size, v.cut]),
    pages,
    times: c.times,
  };
  const json = Buffer.from(JSON.stringify(index));
  const footer = Buffer.alloc(FOOTER_SIZE);
  footer.writeBigUInt64BE(BigInt(offset), 0);
  footer.writeBigUInt64BE(BigInt(json.length), 8);
  footer.writeUInt32BE(crc32(json), 16);
  LAYER_END.copy(footer, 24);
  return { bytes: Buffer.concat([...blobs, json, footer]), index };
}

/** A layer file that fails its checks: a storage fault, answered as the API's 500 `internal_error`. */
export class CorruptLayerError extends ServiceError {
  constructor(name: string, why: string) {
    super(500, 'internal_error', `layer ${name} is corrupt: ${why}`, { kind: 'storage' });
    this.name = 'CorruptLayerError';
  }
}

export function parseFooter(name: string, footer: Buffer): { indexOffset: number; indexLength: number; crc: number } {
  if (footer.length !== FOOTER_SIZE || !footer.subarray(24).equals(LAYER_END)) throw new CorruptLayerError(name, 'bad footer');
  return {
    indexOffset: Number(footer.readBigUInt64BE(0)),
    indexLength: Number(footer.readBigUInt64BE(8)),
    crc: footer.readUInt32BE(16),
  };
}

export function parseIndex(name: string, json: Buffer, crc: number): LayerIndex {
  if (crc32(json) !== crc) throw new CorruptLayerError(name, 'index checksum mismatch');
  const index = JSON.parse(json.toString('utf8')) as LayerIndex;
  if (index.format !== 'lakebase-layer' || index.version !== 1) throw new CorruptLayerError(name, 'unknown format or version');
  return index;
}
