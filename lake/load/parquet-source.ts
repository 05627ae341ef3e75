// Parquet files as a synced table's source: one file, or every .parquet file under a folder (Spark's `_SUCCESS`
// and hidden files skipped). Columns are matched by name across files; a column some files lack is null in their
// rows. An incremental refresh reads only the files not loaded before, as long as every file loaded before is still
// there unchanged (same ETag); otherwise, as a file's rows cannot be taken out alone, it loads everything again.
import type { ObjectStore } from '../../storage-node/object-store/object-store.ts';
import { objectUri } from '../iceberg/uri.ts';
import type { LoadColumn } from './columns.ts';
import { loadError } from './errors.ts';
import { type SourceRow, fileColumns, footerOf, readParquetRows } from './parquet-file.ts';
import type { Batch, LoadedFile, LoadedState, Source } from './source.ts';

/** The columns of several files as one table: by name, in order of first appearance; one name, one type. */
function mergeColumns(perFile: { where: string; columns: LoadColumn[] }[]): LoadColumn[] {
  const out: LoadColumn[] = [];
  for (const { where, columns } of perFile) {
    for (const c of columns) {
      const seen = out.find((o) => o.name === c.name);
      if (!seen) out.push({ ...c });
      else if (seen.pgType !== c.pgType) {
        throw loadError(422, 'SOURCE_NOT_LOADABLE', `column ${JSON.stringify(c.name)} is ${seen.pgType} in one file and ${c.pgType} in ${where}; the files of a synced table must agree`);
      } else if (!c.notNull) seen.notNull = false;
    }
  }
  // a column some file lacks is null there
  for (const c of out) if (perFile.some((f) => !f.columns.some((x) => x.name === c.name))) c.notNull = false;
  return out;
}

export class ParquetSource implements Source {
  readonly format = 'parquet';
  private readonly store: ObjectStore;
  private readonly files: LoadedFile[];

  constructor(store: ObjectStore, files: LoadedFile[]) {
    this.store = store;
    this.files = files;
  }

  /** The files to read: only the new ones when nothing loaded before changed, else all of them. */
  private choose(previous: LoadedState | null, incremental: boolean): { mode: Batch['mode']; files: LoadedFile[] } {
    if (!incremental || !previous) return { mode: 'full', files: this.files };
    const now = new Map(this.files.map((f) => [f.key, f.etag]));
    if (!previous.files.every((f) => now.get(f.key) === f.etag)) return { mode: 'full', files: this.files };
    const loaded = new Set(previous.files.map((f) => f.key));
    return { mode: 'incremental', files: this.files.filter((f) => !loaded.has(f.key)) };
  }

  async batch(previous: LoadedState | null, incremental: boolean): Promise<Batch> {
    const { mode, files } = this.choose(previous, incremental);
    const read: { where: string; columns: LoadColumn[]; rows: SourceRow[] }[] = [];
    for (const f of files) {
      const where = objectUri(this.store, f.key);
      const got = await this.store.get(f.key);
      if (!got) throw loadError(404, 'SOURCE_NOT_FOUND', `${where} vanished while the source was read; try again`);
      const bytes = new Uint8Array(got.body.buffer, got.body.byteOffset, got.body.byteLength);
      const footer = footerOf(bytes, where);
      read.push({ where, columns: fileColumns(footer), rows: await readParquetRows(bytes, footer, where) });
    }
    const rows: SourceRow[] = [];
    for (const r of read) for (const row of r.rows) rows.push(row);
    return { mode, columns: mergeColumns(read), rows, files: files.length, state: { snapshotId: null, files: this.files } };
  }
}
