// Scans of the backend's output for one batch (a run of whole backend messages, as PGlite returns it) that the
// compute host needs: the transaction status of its last ReadyForQuery, its ErrorResponses, and a copy without
// the messages of one type. The status scan runs on every batch, so it walks the length words without
// allocating. (The wire codec itself is lib/pg-wire.)
import { concat, messagesIn, parseErrorFields, ProtocolError, readInt32, type TxStatus } from '../../../lib/pg-wire/index.ts';

/** The length word of the message at `off`, checked to stay inside `out`. */
function lengthAt(out: Uint8Array, off: number): number {
  const len = readInt32(out, off + 1);
  if (len < 4 || off + 1 + len > out.length) throw new ProtocolError(`invalid message length ${len} in backend output`);
  return len;
}

/** The status byte of the last ReadyForQuery in a run of backend messages, or null if there is none. */
export function lastReadyStatus(out: Uint8Array): TxStatus | null {
  let status: TxStatus | null = null;
  let off = 0;
  while (off + 5 <= out.length) {
    const len = lengthAt(out, off);
    if (out[off] === 0x5a /* Z */ && len === 5) status = String.fromCharCode(out[off + 5]) as TxStatus;
    off += 1 + len;
  }
  return status;
}

/** Drops the messages of a type (e.g. the CopyInResponse a session already sent), copying only if needed. */
export function dropMessages(out: Uint8Array, type: string, max = Infinity): Uint8Array {
  const t = type.charCodeAt(0);
  const keep: Uint8Array[] = [];
  let off = 0;
  let dropped = 0;
  let start = 0;
  while (off + 5 <= out.length) {
    const len = lengthAt(out, off);
    if (out[off] === t && dropped < max) {
      keep.push(out.subarray(start, off));
      start = off + 1 + len;
      dropped++;
    }
    off += 1 + len;
  }
  if (dropped === 0) return out;
  keep.push(out.subarray(start));
  return concat(keep);
}

/** The ErrorResponse messages in a run of backend messages: their SQLSTATE codes and texts. */
export function errorsIn(out: Uint8Array): { code: string; message: string; severity: string }[] {
  const errs: { code: string; message: string; severity: string }[] = [];
  for (const m of messagesIn(out)) {
    if (m.type !== 'E') continue;
    const f = parseErrorFields(m.body);
    errs.push({ code: f.C ?? '', message: f.M ?? '', severity: f.V ?? f.S ?? '' });
  }
  return errs;
}
