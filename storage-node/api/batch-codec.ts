// Binary framing of a write batch on the wire and in the write log:
//   "LKB1" | u32 BE header length | header JSON | data bytes of the write ops, concatenated in op order.
// The header lists the ops; a write op carries `len` instead of its bytes.
import { ServiceError } from '../../lib/errors.ts';
import type { FileOp, WriteBatch } from './types.ts';
import { normaliseDataPath } from './paths.ts';

const MAGIC = Buffer.from('LKB1');

/** A body that is not a well-formed write batch (400 `malformed_batch`). */
export class BatchDecodeError extends ServiceError {
  constructor(message: string) {
    super(400, 'malformed_batch', message, { kind: 'protocol' });
    this.name = 'BatchDecodeError';
  }
}

type HeaderOp =
  | { op: 'write'; path: string; offset: number; len: number }
  | Exclude<FileOp, { op: 'write' }>;

interface Header {
  expectedLsn?: number;
  writerGeneration?: number;
  ops: HeaderOp[];
}

export function encodeBatch(batch: WriteBatch): Buffer {
  const datas: Uint8Array[] = [];
  const ops: HeaderOp[] = batch.ops.map((op) => {
    if (op.op !== 'write') return op;
    datas.push(op.data);
    return { op: 'write', path: op.path, offset: op.offset, len: op.data.byteLength };
  });
  const header: Header = { ops };
  if (batch.expectedLsn !== undefined) header.expectedLsn = batch.expectedLsn;
  if (batch.writerGeneration !== undefined) header.writerGeneration = batch.writerGeneration;
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  return Buffer.concat([MAGIC, len, json, ...datas]);
}

function isInt(v: unknown, min = 0): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
}

/** Decodes and validates a batch; every path is normalised. Throws BatchDecodeError with a clear reason. */
export function decodeBatch(buf: Uint8Array): WriteBatch {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 8 || !b.subarray(0, 4).equals(MAGIC)) throw new BatchDecodeError('not a write batch (bad magic)');
  const hlen = b.readUInt32BE(4);
  if (8 + hlen > b.length) throw new BatchDecodeError('batch header is truncated');
  let header: unknown;
  try {
    header = JSON.parse(b.subarray(8, 8 + hlen).toString('utf8'));
  } catch (e) {
    throw new BatchDecodeError(`batch header is not JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || !Array.isArray((header as Header).ops)) {
    throw new BatchDecodeError('batch header must be an object with an "ops" array');
  }
  const h = header as { expectedLsn?: unknown; writerGeneration?: unknown; ops: unknown[] };
  if (h.expectedLsn !== undefined && !isInt(h.expectedLsn)) throw new BatchDecodeError('expectedLsn must be a non-negative integer');
  if (h.writerGeneration !== undefined && !isInt(h.writerGeneration)) throw new BatchDecodeError('writerGeneration must be a non-negative integer');
  let pos = 8 + hlen;
  const ops: FileOp[] = [];
  h.ops.forEach((raw, i) => {
    if (typeof raw !== 'object' || raw === null) throw new BatchDecodeError(`op ${i} is not an object`);
    const o = raw as Record<string, unknown>;
    const where = `op ${i} (${String(o.op)})`;
    try {
      switch (o.op) {
        case 'write': {
          if (!isInt(o.offset)) throw new BatchDecodeError(`${where}: offset must be a non-negative integer`);
          if (!isInt(o.len)) throw new BatchDecodeError(`${where}: len must be a non-negative integer`);
          if (pos + o.len > b.length) throw new BatchDecodeError(`${where}: data runs past the end of the batch`);
          ops.push({ op: 'write', path: normaliseDataPath(o.path), offset: o.offset, data: b.subarray(pos, pos + o.len) });
          pos += o.len;
          break;
        }
        case 'truncate':
          if (!isInt(o.size)) throw new BatchDecodeError(`${where}: size must be a non-negative integer`);
          ops.push({ op: 'truncate', path: normaliseDataPath(o.path), size: o.size });
          break;
        case 'rename':
          ops.push({ op: 'rename', from: normaliseDataPath(o.from), to: normaliseDataPath(o.to) });
          break;
        case 'create':
        case 'unlink':
        case 'mkdir':
        case 'rmdir':
          ops.push({ op: o.op, path: normaliseDataPath(o.path) });
          break;
        default:
          throw new BatchDecodeError(`${where}: unknown operation; expected write, create, truncate, unlink, rename, mkdir or rmdir`);
      }
    } catch (e) {
      if (e instanceof BatchDecodeError) throw e;
      throw new BatchDecodeError(`${where}: ${(e as Error).message}`);
    }
  });
  if (pos !== b.length) throw new BatchDecodeError(`batch has ${b.length - pos} bytes of data not claimed by any write op`);
  const batch: WriteBatch = { ops };
  if (h.expectedLsn !== undefined) batch.expectedLsn = h.expectedLsn as number;
  if (h.writerGeneration !== undefined) batch.writerGeneration = h.writerGeneration as number;
  return batch;
}
