// The SQL a snapshot export reads a table with, on a read-only compute at a fixed point (nothing changes under it,
// so pages read one after another are one consistent snapshot). Rows are read by ranges of heap blocks (a TID range
// scan: each page costs its own blocks, not a sort of the whole table), and each column comes as jsonb ->> text,
// the form lake/sync/values.ts converts without loss, as the lake sync's first copy reads it.
import { quoteLiteral as literal } from '../../lib/sql-quote.ts';
import { type TableName, qualified } from '../capture/capture-sql.ts';

/**
 * Heap blocks to read: the largest of the table's own and, for a partitioned table, its leaf partitions' (all
 * scanned by the same block range). pg_partition_tree has no rows for a table that is not partitioned.
 */
export function blockCountSql(table: TableName): string {
  const rel = `${literal(qualified(table))}::regclass`;
  return `SELECT coalesce(max(pg_relation_size(r)), 0) / current_setting('block_size')::bigint
     FROM (SELECT ${rel} AS r UNION ALL SELECT p.relid FROM pg_partition_tree(${rel}) p WHERE p.isleaf) s`;
}

/** The rows in heap blocks [fromBlock, toBlock), each column's value as text (null for NULL). */
export function rowsSql(table: TableName, columns: string[], fromBlock: number, toBlock: number): string {
  const values = columns.length > 0 ? columns.map((c) => `j ->> ${literal(c)}`).join(', ') : 'NULL';
  return `SELECT ${values} FROM (SELECT to_jsonb(t) AS j FROM ${qualified(table)} t
     WHERE t.ctid >= '(${fromBlock},0)'::tid AND t.ctid < '(${toBlock},0)'::tid) s`;
}
