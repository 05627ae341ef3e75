// The SQL of a synced table, run as the compute's superuser: the table made from the source's columns, owned by
// the superuser and readable by everyone; its write guard (one statement trigger that refuses INSERT, UPDATE,
// DELETE and TRUNCATE unless the loader's own transaction set `lakebase.loading` as a superuser); and a load as one
// transaction, so a load that fails changes nothing.
//
// Rows travel as JSON in the statement text (pg-json.ts). A load that fits one admin call (the compute host takes
// 16 MiB) is that one call; a bigger one first stages its JSON chunks in a table of its own, a call at a time, and
// the last call moves them into the target in one transaction.
import { quoteIdent, quoteLiteral } from '../../lib/sql-quote.ts';
import { type LoadColumn, columnDefinition } from './columns.ts';

/** The schema of the guard function and the staging tables: the superuser's, no client owns anything in it. */
export const GUARD_SCHEMA = 'lakebase_synced';
const GUARD_TRIGGER = 'lakebase_synced_guard';
export const LOADING_SETTING = 'lakebase.loading';

/** A JSON chunk of at most this many bytes per INSERT (a statement may be 8 MiB). */
export const CHUNK_BYTES = 4 * 1024 * 1024;
/** Statement text per admin call, under the host's 16 MiB body with room for JSON escaping of the body itself. */
const CALL_BYTES = 6 * 1024 * 1024;
/** Statements per admin call (the host takes 64). */
const CALL_STATEMENTS = 48;

export interface TableName {
  schema: string;
  name: string;
}

export const qualified = (t: TableName): string => `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;

/** Does the schema exist, and the table? One row: (schema_exists, table_exists). */
export function targetStateSql(t: TableName): string {
  return `SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = ${quoteLiteral(t.schema)})::text,
    (pg_catalog.to_regclass(${quoteLiteral(qualified(t))}) IS NOT NULL)::text`;
}

/** The guard function (made once per database; every synced table's trigger calls it with its source's location). */
function guardFunctionSql(): string[] {
  const s = quoteIdent(GUARD_SCHEMA);
  return [
    `CREATE SCHEMA IF NOT EXISTS ${s}`,
    `REVOKE ALL ON SCHEMA ${s} FROM PUBLIC`,
    `GRANT USAGE ON SCHEMA ${s} TO PUBLIC`,
    `CREATE OR REPLACE FUNCTION ${s}.guard() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $guard$
BEGIN
  -- the loader's transaction, as a superuser: a client may set the setting, but is no superuser (postgres engine)
  IF current_setting('${LOADING_SETTING}', true) = 'on' AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION 'cannot change synced table "%": it is loaded from %; change the source instead', TG_TABLE_NAME, TG_ARGV[0]
    USING ERRCODE = '42501', HINT = 'a synced table is read-only; refresh it from its source through the API';
END
$guard$`,
  ];
}

/**
 * Who may do what to the table. `select`: SELECT only (the postgres engine, whose roles write any table through
 * neon_superuser's pg_write_all_data, so INSERT, UPDATE and DELETE still meet the guard, and TRUNCATE is refused by
 * privilege). `guarded`: every write is let through to the guard, whose refusal names the source (the pglite
 * engine: one trust domain, where a privilege alone would only answer "permission denied").
 */
export type Privileges = 'select' | 'guarded';

/** The table, its privileges and its guard (inside the load's transaction). */
export function createTableSql(t: TableName, columns: LoadColumn[], location: string, comment: string, privileges: Privileges): string[] {
  const q = qualified(t);
  return [
    ...guardFunctionSql(),
    `CREATE TABLE ${q} (${columns.map((c) => columnDefinition(c, true)).join(', ')})`,
    `COMMENT ON TABLE ${q} IS ${quoteLiteral(comment)}`,
    `REVOKE ALL ON TABLE ${q} FROM PUBLIC`,
    `GRANT ${privileges === 'select' ? 'SELECT' : 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE'} ON TABLE ${q} TO PUBLIC`,
    `CREATE TRIGGER ${GUARD_TRIGGER} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON ${q} FOR EACH STATEMENT EXECUTE FUNCTION ${quoteIdent(GUARD_SCHEMA)}.guard(${quoteLiteral(location)})`,
    // fires even with session_replication_role = replica
    `ALTER TABLE ${q} ENABLE ALWAYS TRIGGER ${GUARD_TRIGGER}`,
  ];
}

/** Stops guarding the table (the synced table is deleted): it becomes the database owner's ordinary table. */
export function releaseTableSql(t: TableName, owner: string): string {
  const q = qualified(t);
  return `DO $release$
BEGIN
  IF pg_catalog.to_regclass(${quoteLiteral(q)}) IS NOT NULL THEN
    DROP TRIGGER IF EXISTS ${GUARD_TRIGGER} ON ${q};
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = ${quoteLiteral(owner)}) THEN
      ALTER TABLE ${q} OWNER TO ${quoteIdent(owner)};
    END IF;
  END IF;
END
$release$`;
}

export function addColumnsSql(t: TableName, added: LoadColumn[]): string[] {
  return added.map((c) => `ALTER TABLE ${qualified(t)} ADD COLUMN ${columnDefinition(c, false)}`);
}

function insertSql(t: TableName, columns: LoadColumn[], from: string): string {
  const names = columns.map((c) => quoteIdent(c.name)).join(', ');
  return `INSERT INTO ${qualified(t)} (${names}) SELECT ${names} FROM ${from}`;
}

export interface LoadSpec {
  table: TableName;
  columns: LoadColumn[];
  /** Statements before the rows, inside the transaction (CREATE TABLE, ADD COLUMN...). */
  before: string[];
  /** Empty the table first (a full load of an existing table). */
  truncate: boolean;
  chunks: string[];
  /** Names the staging table of a load too big for one call. */
  loadId: string;
}

const bytesOf = (statements: string[]): number => statements.reduce((n, s) => n + Buffer.byteLength(s), 0);

/** Statement lists into admin calls, each under the byte and statement bounds. */
function intoCalls(statements: string[]): string[][] {
  const calls: string[][] = [];
  let bytes = 0;
  for (const s of statements) {
    const last = calls.at(-1);
    const size = Buffer.byteLength(s);
    if (last && last.length < CALL_STATEMENTS && bytes + size <= CALL_BYTES) {
      last.push(s);
      bytes += size;
    } else {
      calls.push([s]);
      bytes = size;
    }
  }
  return calls;
}

const stagingTable = (loadId: string): string => `${quoteIdent(GUARD_SCHEMA)}.${quoteIdent(`load_${loadId}`)}`;

/** Removes what a load too big for one call staged, when it failed before its last call. */
export const dropStagingSql = (loadId: string): string => `DROP TABLE IF EXISTS ${stagingTable(loadId)}`;

/**
 * The admin calls of a load, in order. Only the last one changes the target, in one transaction; the calls before
 * it (a big load) fill a staging table, which the last one empties into the target and drops.
 */
export function loadCalls(spec: LoadSpec): string[][] {
  const begin = ['BEGIN', `SET LOCAL ${LOADING_SETTING} = 'on'`, ...spec.before, ...(spec.truncate ? [`TRUNCATE ${qualified(spec.table)}`] : [])];
  const populate = (json: string) => `pg_catalog.json_populate_recordset(NULL::${qualified(spec.table)}, ${json})`;
  const inline = spec.chunks.map((chunk) => insertSql(spec.table, spec.columns, populate(`${quoteLiteral(chunk)}::json`)));
  const oneCall = [...begin, ...inline, 'COMMIT'];
  if (oneCall.length <= CALL_STATEMENTS && bytesOf(oneCall) <= CALL_BYTES) return [oneCall];
  const stage = stagingTable(spec.loadId);
  const staging = [
    `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(GUARD_SCHEMA)}`,
    `DROP TABLE IF EXISTS ${stage}`,
    `CREATE TABLE ${stage} (n integer PRIMARY KEY, chunk text NOT NULL)`,
    ...spec.chunks.map((chunk, i) => `INSERT INTO ${stage} VALUES (${i}, ${quoteLiteral(chunk)})`),
  ];
  const from = `(SELECT n, chunk FROM ${stage} ORDER BY n) s, LATERAL ${populate('s.chunk::json')} r`;
  const names = spec.columns.map((c) => `r.${quoteIdent(c.name)}`).join(', ');
  const move = `INSERT INTO ${qualified(spec.table)} (${spec.columns.map((c) => quoteIdent(c.name)).join(', ')}) SELECT ${names} FROM ${from}`;
  return [...intoCalls(staging), [...begin, move, `DROP TABLE ${stage}`, 'COMMIT']];
}
