// Change capture inside the database, the same on both engines (PGlite has no logical decoding): a row trigger
// writes each change of a synced table into lakebase_lake.changes, in the writer's own transaction. So a change
// exists only once its transaction committed, and an aborted one never does: MVCC decides what the sync sees.
//
// Exactly once without a second commit protocol: the sync first marks the changes it takes with a batch number
// (one UPDATE, itself a commit in Postgres), publishes that batch to the lake, records the batch number in the
// Iceberg snapshot, and only then deletes the batch. After a crash anywhere, a marked batch is published again only
// to the tables whose snapshot does not hold its number yet.
import { TIMELINE_SETTING } from '../../lib/compute-startup.ts';
import { quoteIdent as ident, quoteLiteral as literal } from '../../lib/sql-quote.ts';

export const CAPTURE_SCHEMA = 'lakebase_lake';

/** A table as schema and name (both as Postgres has them, unquoted). */
export interface TableName {
  schema: string;
  name: string;
}

export function qualified(t: TableName): string {
  return `${ident(t.schema)}.${ident(t.name)}`;
}

export function triggerName(lakeTableId: string): string {
  return `lakebase_lake_${lakeTableId.replace(/[^a-z0-9]/gi, '_')}`;
}

/** The change table and the trigger functions (idempotent; run by the superuser, so that writers need no grant). */
export function captureSchemaSql(): string[] {
  const s = ident(CAPTURE_SCHEMA);
  return [
    `CREATE SCHEMA IF NOT EXISTS ${s}`,
    `REVOKE ALL ON SCHEMA ${s} FROM PUBLIC`,
    `CREATE TABLE IF NOT EXISTS ${s}.changes (
       seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       table_id text NOT NULL,
       op "char" NOT NULL,
       xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
       lsn pg_lsn NOT NULL DEFAULT pg_current_wal_insert_lsn(),
       at timestamptz NOT NULL DEFAULT clock_timestamp(),
       batch bigint,
       row jsonb NOT NULL)`,
    `CREATE INDEX IF NOT EXISTS changes_by_table ON ${s}.changes (table_id, batch, seq)`,
    // TG_ARGV: the lake table's id, the timeline it syncs, then its primary key columns. A branch made from this one
    // (another timeline) inherits the trigger but captures nothing: no sync would ever drain it. An UPDATE that
    // changes the key deletes the old row.
    `CREATE OR REPLACE FUNCTION ${s}.capture() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
       SET search_path = pg_catalog, pg_temp AS $fn$
     DECLARE o jsonb; n jsonb; i int;
     BEGIN
       IF current_setting('${TIMELINE_SETTING}', true) IS DISTINCT FROM TG_ARGV[1] THEN RETURN NULL; END IF;
       IF TG_OP = 'DELETE' THEN
         INSERT INTO ${s}.changes (table_id, op, row) VALUES (TG_ARGV[0], 'D', to_jsonb(OLD));
       ELSIF TG_OP = 'INSERT' THEN
         INSERT INTO ${s}.changes (table_id, op, row) VALUES (TG_ARGV[0], 'I', to_jsonb(NEW));
       ELSE
         o := to_jsonb(OLD); n := to_jsonb(NEW);
         FOR i IN 2 .. TG_NARGS - 1 LOOP
           IF o -> TG_ARGV[i] IS DISTINCT FROM n -> TG_ARGV[i] THEN
             INSERT INTO ${s}.changes (table_id, op, row) VALUES (TG_ARGV[0], 'D', o);
             EXIT;
           END IF;
         END LOOP;
         INSERT INTO ${s}.changes (table_id, op, row) VALUES (TG_ARGV[0], 'U', n);
       END IF;
       RETURN NULL;
     END $fn$`,
    `CREATE OR REPLACE FUNCTION ${s}.capture_truncate() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
       SET search_path = pg_catalog, pg_temp AS $fn$
     BEGIN
       IF current_setting('${TIMELINE_SETTING}', true) IS DISTINCT FROM TG_ARGV[1] THEN RETURN NULL; END IF;
       INSERT INTO ${s}.changes (table_id, op, row) VALUES (TG_ARGV[0], 'T', '{}');
       RETURN NULL;
     END $fn$`,
  ];
}

/** The triggers of one synced table. CREATE TRIGGER waits for the table's writers: every later write is captured. */
export function installTriggerSql(lakeTableId: string, timelineId: string, table: TableName, keyColumns: string[]): string[] {
  const s = ident(CAPTURE_SCHEMA);
  const trig = triggerName(lakeTableId);
  const args = [lakeTableId, timelineId, ...keyColumns].map(literal).join(', ');
  return [
    `DROP TRIGGER IF EXISTS ${ident(trig)} ON ${qualified(table)}`,
    `DROP TRIGGER IF EXISTS ${ident(`${trig}_truncate`)} ON ${qualified(table)}`,
    `CREATE TRIGGER ${ident(trig)} AFTER INSERT OR UPDATE OR DELETE ON ${qualified(table)} FOR EACH ROW EXECUTE FUNCTION ${s}.capture(${args})`,
    `CREATE TRIGGER ${ident(`${trig}_truncate`)} AFTER TRUNCATE ON ${qualified(table)} FOR EACH STATEMENT EXECUTE FUNCTION ${s}.capture_truncate(${literal(lakeTableId)}, ${literal(timelineId)})`,
  ];
}

/** Stops capturing and forgets what was captured (the lake table is gone). Works when the table is gone too. */
export function uninstallSql(lakeTableId: string, table: TableName): string[] {
  const trig = triggerName(lakeTableId);
  const drop = (name: string): string =>
    `DO $d$ BEGIN IF to_regclass(${literal(qualified(table))}) IS NOT NULL THEN EXECUTE ${literal(`DROP TRIGGER IF EXISTS ${ident(name)} ON ${qualified(table)}`)}; END IF; END $d$`;
  return [
    drop(trig),
    drop(`${trig}_truncate`),
    `DO $d$ BEGIN IF to_regclass('${CAPTURE_SCHEMA}.changes') IS NOT NULL THEN DELETE FROM ${ident(CAPTURE_SCHEMA)}.changes WHERE table_id = ${literal(lakeTableId)}; END IF; END $d$`,
  ];
}

/** Columns, key and trigger state of a table: one row per column (attnum, name, type name, formatted type, element type, not null, key position, trigger state). */
export function describeTableSql(lakeTableId: string | null, table: TableName): string {
  const trig = lakeTableId ? literal(triggerName(lakeTableId)) : 'NULL';
  return `SELECT a.attnum::text, a.attname, t.typname, format_type(a.atttypid, a.atttypmod), et.typname,
            a.attnotnull::text, (SELECT k.n FROM unnest(pk.indkey::int2[]) WITH ORDINALITY k(att, n) WHERE k.att = a.attnum)::text, c.oid::text,
            (SELECT tgenabled::text FROM pg_trigger WHERE tgrelid = c.oid AND tgname = ${trig})
     FROM pg_class c
     JOIN pg_namespace n ON n.oid = c.relnamespace
     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     JOIN pg_type t ON t.oid = a.atttypid
     LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
     LEFT JOIN pg_index pk ON pk.indrelid = c.oid AND pk.indisprimary
     WHERE n.nspname = ${literal(table.schema)} AND c.relname = ${literal(table.name)} AND c.relkind IN ('r', 'p')
     ORDER BY a.attnum`;
}

/** The WAL insert position now: taken before a drain, it bounds what the drain is sure to see. */
export const WAL_POSITION_SQL = 'SELECT pg_current_wal_insert_lsn()::text';

/** Each column's value as text (jsonb's ->>: exact numbers, JSON text for arrays and documents). */
function columnsOf(jsonExpr: string, columns: string[]): string {
  return columns.map((c) => `${jsonExpr} ->> ${literal(c)}`).join(', ');
}

/**
 * The first copy, in ONE statement (one snapshot): the changes already captured and visible are marked batch 0
 * (the copy holds them), and every row of the table is read. Answers a header row ('h', marked count), then one
 * row per table row ('r', then the column values).
 */
export function initialCopySql(lakeTableId: string, table: TableName, columns: string[]): string {
  const s = ident(CAPTURE_SCHEMA);
  const nulls = columns.map(() => 'NULL').join(', ');
  return `WITH marked AS (UPDATE ${s}.changes SET batch = 0 WHERE table_id = ${literal(lakeTableId)} AND batch IS NULL RETURNING 1)
    SELECT 'h', (SELECT count(*) FROM marked)::text, ${nulls}
    UNION ALL
    SELECT 'r', NULL, ${columnsOf('j', columns)} FROM (SELECT to_jsonb(t) AS j FROM ${qualified(table)} t) s`;
}

/** The change columns every drain answers before the table's columns (text: order by the source's c.seq, never by these). */
const CHANGE_COLUMNS = `seq::text, op::text, xid::text, lsn::text,
  (CASE WHEN current_setting('track_commit_timestamp')::bool
        THEN pg_xact_commit_timestamp(((xid::text::numeric % 4294967296)::text)::xid) END)::text,
  at::text`;

/** Marks up to `limit` committed, unmarked changes (oldest first) as batch `batch` and answers them. */
export function drainSql(lakeTableId: string, batch: number, limit: number, columns: string[]): string {
  const s = ident(CAPTURE_SCHEMA);
  const id = literal(lakeTableId);
  return `WITH b AS (
      UPDATE ${s}.changes SET batch = ${batch}
      WHERE seq IN (SELECT seq FROM ${s}.changes WHERE table_id = ${id} AND batch IS NULL ORDER BY seq LIMIT ${limit})
      RETURNING *)
    SELECT ${CHANGE_COLUMNS}, ${columnsOf('row', columns)} FROM b ORDER BY b.seq`;
}

/** The changes of a batch already marked (published again after a crash, to the tables that lack it). */
export function batchSql(lakeTableId: string, batch: number, columns: string[]): string {
  return `SELECT ${CHANGE_COLUMNS}, ${columnsOf('row', columns)} FROM ${ident(CAPTURE_SCHEMA)}.changes c
    WHERE table_id = ${literal(lakeTableId)} AND batch = ${batch} ORDER BY c.seq`;
}

export function pendingBatchesSql(lakeTableId: string): string {
  return `SELECT DISTINCT batch FROM ${ident(CAPTURE_SCHEMA)}.changes WHERE table_id = ${literal(lakeTableId)} AND batch IS NOT NULL ORDER BY batch`;
}

export function finishBatchSql(lakeTableId: string, batch: number): string {
  return `DELETE FROM ${ident(CAPTURE_SCHEMA)}.changes WHERE table_id = ${literal(lakeTableId)} AND batch = ${batch}`;
}
