// One table of a snapshot export: its rows read range of heap blocks by range (read-sql.ts), converted as the lake
// sync converts them (lake/sync/values.ts rowOf) and handed to the sink in chunks, so memory holds one chunk, not
// the table. A range whose result is too large for the compute (SQLSTATE 54000: wide or TOASTed rows) is read
// again in halves, down to one block.
import type { Row } from '../iceberg/types.ts';
import { rowOf } from '../sync/values.ts';
import { blockCountSql, rowsSql } from './read-sql.ts';
import type { ExportSink } from './sinks.ts';
import type { SourceTable, SqlExec } from './source.ts';

export interface ExportTableOptions {
  /** Heap blocks one query reads at first (8 KiB each). */
  blocksPerRead?: number;
  /** Rows per chunk handed to the sink (an Iceberg data file, a Parquet row group). */
  chunkRows?: number;
  /** After each chunk written: rows of this table written so far. */
  onProgress?: (rowsWritten: number) => Promise<void> | void;
}

const DEFAULT_BLOCKS_PER_READ = 256;
const DEFAULT_CHUNK_ROWS = 100_000;

/** The compute refused a result past its size limit (compute/storage-fs/result-limit.ts). */
const isTooLarge = (e: unknown): boolean => /SQLSTATE 54000/.test(String((e as Error)?.message ?? e));

/** The text rows of blocks [from, to), halving the range while the result is too large. */
async function readRange(exec: SqlExec, source: SourceTable, from: number, to: number): Promise<(string | null)[][]> {
  const names = source.columns.map((c) => c.name);
  try {
    return (await exec([rowsSql(source.table, names, from, to)]))[0]?.rows ?? [];
  } catch (e) {
    if (!isTooLarge(e) || to - from <= 1) throw e;
    const mid = from + Math.floor((to - from) / 2);
    return [...(await readRange(exec, source, from, mid)), ...(await readRange(exec, source, mid, to))];
  }
}

/** Writes every row of the table to the sink and finishes it; answers the rows written. */
export async function exportTable(exec: SqlExec, source: SourceTable, sink: ExportSink, opts: ExportTableOptions = {}): Promise<number> {
  const step = opts.blocksPerRead ?? DEFAULT_BLOCKS_PER_READ;
  const chunkRows = opts.chunkRows ?? DEFAULT_CHUNK_ROWS;
  const blocks = Number((await exec([blockCountSql(source.table)]))[0]?.rows[0]?.[0] ?? 0);
  let pending: Row[] = [];
  let written = 0;
  const flush = async (): Promise<void> => {
    await sink.write(pending);
    written += pending.length;
    pending = [];
    await opts.onProgress?.(written);
  };
  for (let from = 0; from < blocks; from += step) {
    const texts = await readRange(exec, source, from, Math.min(blocks, from + step));
    for (const t of texts) pending.push(rowOf(source.columns, t, 0));
    if (pending.length >= chunkRows) await flush();
  }
  if (pending.length > 0) await flush();
  await sink.finish();
  return written;
}
