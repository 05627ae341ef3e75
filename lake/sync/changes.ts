// Captured changes as the drain answers them, and what a batch of them does to the two lake tables: every change
// appended to the history, and the current state's net effect (the last image of each key, and the keys to delete).
import type { Row } from '../iceberg/types.ts';
import type { SyncedColumn } from './columns.ts';
import { icebergValue, rowOf } from './values.ts';

export interface Change {
  seq: bigint;
  /** I, U, D, or T (TRUNCATE: every row goes). */
  op: 'I' | 'U' | 'D' | 'T';
  xid: bigint;
  /** The WAL position when the change was made (pg_lsn text). */
  lsn: string;
  /** Microseconds since the epoch: the commit time where Postgres tracks it, else when the change was made. */
  commitTime: bigint | null;
  row: Row;
}

/** Rows of drainSql/batchSql: seq, op, xid, lsn, commit time, capture time, then one text value per column. */
export function parseChanges(rows: (string | null)[][], columns: SyncedColumn[]): Change[] {
  return rows.map((r) => {
    const row = rowOf(columns, r, 6);
    const at = r[4] ?? r[5];
    return {
      seq: BigInt(r[0] ?? '0'), op: (r[1] ?? 'I') as Change['op'], xid: BigInt(r[2] ?? '0'), lsn: r[3] ?? '',
      commitTime: at === null ? null : (icebergValue('timestamptz', at) as bigint | null), row,
    };
  });
}

function keyOf(row: Row, keys: string[]): string {
  return JSON.stringify(keys.map((k) => {
    const v = row[k];
    return typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v;
  }));
}

function keyRow(row: Row, keys: string[]): Row {
  const out: Row = {};
  for (const k of keys) out[k] = row[k];
  return out;
}

/** History rows: each change with its op, LSN, xid and commit time; a TRUNCATE deletes every row live at that point. */
export function historyRows(changes: Change[], liveBefore: Row[], keys: string[]): Row[] {
  const live = new Map(liveBefore.map((r) => [keyOf(r, keys), r]));
  const out: Row[] = [];
  const meta = (c: Change, op: string): Row => ({ _op: op, _lsn: c.lsn, _xid: c.xid, _commit_time: c.commitTime });
  for (const c of changes) {
    if (c.op === 'T') {
      for (const r of live.values()) out.push({ ...r, ...meta(c, 'D') });
      live.clear();
      continue;
    }
    out.push({ ...c.row, ...meta(c, c.op) });
    if (c.op === 'D') live.delete(keyOf(c.row, keys));
    else live.set(keyOf(c.row, keys), c.row);
  }
  return out;
}

/** The current table's change: delete every key the batch touched, then add the last image of the keys that live. */
export function netEffect(changes: Change[], liveBefore: Row[], keys: string[]): { rows: Row[]; deletes: Row[] } {
  const touched = new Map<string, Row>();
  const last = new Map<string, Row | null>();
  for (const c of changes) {
    if (c.op === 'T') {
      for (const r of liveBefore) touched.set(keyOf(r, keys), keyRow(r, keys));
      for (const k of last.keys()) last.set(k, null);
      continue;
    }
    const k = keyOf(c.row, keys);
    touched.set(k, keyRow(c.row, keys));
    last.set(k, c.op === 'D' ? null : c.row);
  }
  const rows = [...last.values()].filter((r): r is Row => r !== null);
  return { rows, deletes: [...touched.values()] };
}
