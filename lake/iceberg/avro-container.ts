// Avro object container files (the format of Iceberg manifests and manifest lists), encoded and decoded with
// avsc's types. The container is assembled here rather than with avsc's streams for two reasons: the header must
// carry the schema exactly as given (avsc re-exports it without Iceberg's `field-id` attributes), and Iceberg's
// 64-bit ids need a bigint `long`, which avsc only offers as a custom type.
import avsc from 'avsc';
import { randomBytes } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { tableError } from './errors.ts';

const MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]); // 'Obj' 1
const RECORDS_PER_BLOCK = 1000;

/** Avro `long` as a JS bigint, so snapshot ids above 2^53 survive. */
const bigintLong = avsc.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(n);
    return buf;
  },
  fromJSON: (x: unknown) => BigInt(x as string | number),
  toJSON: (n: bigint) => n.toString(),
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
});

const headerType = avsc.Type.forSchema({
  type: 'record',
  name: 'org.apache.avro.file.Header',
  fields: [
    { name: 'magic', type: { type: 'fixed', name: 'Magic', size: 4 } },
    { name: 'meta', type: { type: 'map', values: 'bytes' } },
    { name: 'sync', type: { type: 'fixed', name: 'Sync', size: 16 } },
  ],
});
const countType = avsc.Type.forSchema('long');

/** An avsc type for a schema; each call gets its own registry, as avsc adds every named type to it. */
export function avroType(schema: object): avsc.Type {
  return avsc.Type.forSchema(schema as avsc.Schema, { registry: { long: bigintLong } });
}

/** A container file of `records` under `schema`, with `meta` as file metadata (codec null). */
export function encodeContainer(schema: object, records: object[], meta: Record<string, string>): Buffer {
  const type = avroType(schema);
  const sync = randomBytes(16);
  const metaBytes: Record<string, Buffer> = { 'avro.schema': Buffer.from(JSON.stringify(schema)), 'avro.codec': Buffer.from('null') };
  for (const [k, v] of Object.entries(meta)) metaBytes[k] = Buffer.from(v);
  const parts: Buffer[] = [headerType.toBuffer({ magic: MAGIC, meta: metaBytes, sync })];
  for (let i = 0; i < records.length; i += RECORDS_PER_BLOCK) {
    const block = Buffer.concat(records.slice(i, i + RECORDS_PER_BLOCK).map((r) => type.toBuffer(r)));
    parts.push(countType.toBuffer(Math.min(RECORDS_PER_BLOCK, records.length - i)), countType.toBuffer(block.length), block, sync);
  }
  return Buffer.concat(parts);
}

export interface Container {
  meta: Record<string, string>;
  records: Record<string, unknown>[];
}

interface Header {
  magic: Buffer;
  meta: Record<string, Buffer>;
  sync: Buffer;
}

function decodeAt<T>(type: avsc.Type, buf: Buffer, pos: number, where: string): { value: T; offset: number } {
  const r = type.decode(buf, pos) as { value: T; offset: number };
  if (r.offset < 0) throw tableError('bad_avro', `${where} is truncated`);
  return r;
}

/** The metadata and records of a container file, read with its own (writer) schema. */
export function decodeContainer(buf: Buffer, where: string): Container {
  if (buf.length < 4 || !buf.subarray(0, 4).equals(MAGIC)) throw tableError('bad_avro', `${where} is not an Avro container file`);
  const header = decodeAt<Header>(headerType, buf, 0, where);
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(header.value.meta)) meta[k] = v.toString('utf8');
  const codec = meta['avro.codec'] ?? 'null';
  if (codec !== 'null' && codec !== 'deflate') throw tableError('bad_avro', `${where} uses Avro codec ${codec}, which this reader does not support`);
  const type = avroType(JSON.parse(meta['avro.schema'] ?? 'null') as object);
  const records: Record<string, unknown>[] = [];
  let pos = header.offset;
  while (pos < buf.length) {
    const count = decodeAt<number>(countType, buf, pos, where);
    const size = decodeAt<number>(countType, buf, count.offset, where);
    const start = size.offset;
    let block = buf.subarray(start, start + size.value);
    if (codec === 'deflate') block = inflateRawSync(block);
    let at = 0;
    for (let i = 0; i < count.value; i++) {
      const rec = decodeAt<Record<string, unknown>>(type, block, at, where);
      records.push(rec.value);
      at = rec.offset;
    }
    pos = start + size.value;
    if (!buf.subarray(pos, pos + 16).equals(header.value.sync)) throw tableError('bad_avro', `${where}: a block's sync marker does not match the header`);
    pos += 16;
  }
  return { meta, records };
}
