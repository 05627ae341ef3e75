// Where an exported table's rows go, chunk by chunk: a new Iceberg table (one append snapshot per chunk) or one
// Parquet file (one row group per chunk, written to the bucket when the table is done). Both take rows as the
// Iceberg writer does (lake/iceberg/types.ts Row) and write the same Parquet columns, with Iceberg field ids.
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import type { ObjectStore } from '../../storage-node/object-store/object-store.ts';
import { IcebergTable } from '../iceberg/table.ts';
import { columnData, parquetSchema } from '../iceberg/schema-parquet.ts';
import type { IcebergSchema, Row } from '../iceberg/types.ts';
import { objectUri } from '../iceberg/uri.ts';

export type ExportFormat = 'iceberg' | 'parquet';

export interface ExportSink {
  /** The table root (Iceberg) or the file (Parquet), as an absolute URI. */
  readonly location: string;
  write(rows: Row[]): Promise<void>;
  /** After the last chunk: the table or file is complete. */
  finish(): Promise<void>;
}

/** The key of an exported table: its Iceberg table root, or its Parquet file. */
export function exportKey(prefix: string, format: ExportFormat): string {
  return format === 'parquet' ? `${prefix}.parquet` : prefix;
}

class IcebergSink implements ExportSink {
  readonly location: string;
  private readonly table: IcebergTable;
  private readonly summary: Record<string, string>;
  private committed = false;

  constructor(table: IcebergTable, summary: Record<string, string>) {
    this.table = table;
    this.summary = summary;
    this.location = table.location;
  }

  async write(rows: Row[]): Promise<void> {
    if (rows.length === 0) return;
    await this.table.commit({ rows, summary: this.summary });
    this.committed = true;
  }

  async finish(): Promise<void> {
    // an empty table still gets a snapshot: readers see a table with no rows, not a table with no data yet
    if (!this.committed) await this.table.commit({ rows: [], summary: this.summary });
  }
}

class ParquetSink implements ExportSink {
  readonly location: string;
  private readonly store: ObjectStore;
  private readonly key: string;
  private readonly schema: IcebergSchema;
  private readonly bytes = new ByteWriter();
  private readonly writer: ParquetWriter;

  constructor(store: ObjectStore, key: string, schema: IcebergSchema, metadata: Record<string, string>) {
    this.store = store;
    this.key = key;
    this.schema = schema;
    this.location = objectUri(store, key);
    const kvMetadata = [{ key: 'iceberg.schema', value: JSON.stringify(schema) }, ...Object.entries(metadata).map(([k, value]) => ({ key: k, value }))];
    this.writer = new ParquetWriter({ writer: this.bytes, schema: parquetSchema(schema), codec: 'SNAPPY', kvMetadata, createdBy: 'lakebase export' });
  }

  async write(rows: Row[]): Promise<void> {
    if (rows.length === 0) return;
    await this.writer.write({ columnData: columnData(this.schema, rows), rowGroupSize: rows.length });
  }

  async finish(): Promise<void> {
    await this.writer.finish();
    await this.store.put(this.key, new Uint8Array(this.bytes.getBuffer()), { ifNoneMatch: '*' });
  }
}

/** A sink for one table at `prefix` (lake/exports/.../<schema>.<table>); `properties` go into the table or file. */
export async function openSink(store: ObjectStore, prefix: string, format: ExportFormat, schema: IcebergSchema, properties: Record<string, string>): Promise<ExportSink> {
  if (format === 'parquet') return new ParquetSink(store, exportKey(prefix, format), schema, properties);
  return new IcebergSink(await IcebergTable.create(store, prefix, schema, properties), properties);
}
