// What the tools read from Postgres' catalogs: the tables of a database, one table's description, the whole
// user schema as one DDL text per object (for schema diffs), and the tables' primary keys (for data diffs).
// Objects of pg_catalog, information_schema, toast, and those an extension owns are left out; NOT NULL, which
// PostgreSQL 18 (PGlite) also lists as a constraint, is said once, on its column.
import type pg from 'pg';
import { ToolError } from './tool.ts';

const USER_SCHEMA = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'";
const NOT_EXTENSION = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = '${catalog}'::regclass AND dep.objid = ${oid} AND dep.deptype = 'e')`;

export interface TableRow {
  table_schema: string;
  table_name: string;
  table_type: string;
}

export async function listTables(c: pg.Client): Promise<TableRow[]> {
  const r = await c.query<TableRow>(`SELECT table_schema, table_name, table_type FROM information_schema.tables
    WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY table_schema, table_name`);
  return r.rows;
}

interface Column {
  name: string;
  type: string;
  nullable: boolean;
  default: string | null;
}

/** A relation by name as Postgres resolves it (search_path for an unqualified one), or Postgres' own error. */
async function relationOid(c: pg.Client, name: string): Promise<number> {
  const r = await c.query<{ oid: number | null }>('SELECT to_regclass($1)::oid::int AS oid', [name]);
  const oid = r.rows[0]?.oid;
  if (oid == null) throw new ToolError(`relation "${name}" does not exist`);
  return oid;
}

async function columnsOf(c: pg.Client, oid: number): Promise<Column[]> {
  const r = await c.query<Column>(`SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable,
      pg_get_expr(d.adbin, d.adrelid) AS default
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, [oid]);
  return r.rows;
}

export async function describeTable(c: pg.Client, name: string) {
  const oid = await relationOid(c, name);
  const [rel, columns, constraints, indexes] = await Promise.all([
    c.query<{ schema: string; name: string; kind: string; estimated_rows: number; total_bytes: string }>(`SELECT n.nspname AS schema, c.relname AS name,
        CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
          WHEN 'f' THEN 'foreign table' WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index' ELSE c.relkind::text END AS kind,
        greatest(c.reltuples, 0)::bigint::float8 AS estimated_rows, pg_total_relation_size(c.oid)::text AS total_bytes
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1`, [oid]),
    columnsOf(c, oid),
    c.query<{ name: string; type: string; definition: string }>(`SELECT conname AS name,
        CASE contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique' WHEN 'f' THEN 'foreign key' WHEN 'c' THEN 'check'
          WHEN 'x' THEN 'exclusion' ELSE contype::text END AS type, pg_get_constraintdef(oid) AS definition
      FROM pg_constraint WHERE conrelid = $1 AND contype <> 'n' ORDER BY conname`, [oid]),
    c.query<{ name: string; definition: string }>(`SELECT ic.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
      FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = $1 ORDER BY 1`, [oid]),
  ]);
  const r = rel.rows[0];
  return {
    ...r, total_bytes: Number(r.total_bytes), columns, constraints: constraints.rows, indexes: indexes.rows,
    ddl: tableDdl(`${quoteIdent(r.schema)}.${quoteIdent(r.name)}`, columns, constraints.rows.map((x) => `CONSTRAINT ${quoteIdent(x.name)} ${x.definition}`)),
  };
}

function tableDdl(name: string, columns: Column[], constraints: string[]): string {
  const lines = columns.map((col) => `${quoteIdent(col.name)} ${col.type}${col.nullable ? '' : ' NOT NULL'}${col.default !== null ? ` DEFAULT ${col.default}` : ''}`);
  return `CREATE TABLE ${name} (\n${[...lines, ...constraints].map((l) => `  ${l}`).join(',\n')}\n);`;
}

export function quoteIdent(s: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(s) ? s : `"${s.replace(/"/g, '""')}"`;
}

/** The user schema of a database: object name ("table public.t", "index public.t_pkey", ...) -> its DDL. */
export async function schemaSnapshot(c: pg.Client): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const q = async (sql: string) => (await c.query<{ object: string; ddl: string }>(sql)).rows;
  const rows = [
    ...(await q(`SELECT 'schema ' || quote_ident(nspname) AS object, 'CREATE SCHEMA ' || quote_ident(nspname) || ';' AS ddl
      FROM pg_namespace n WHERE ${USER_SCHEMA} AND nspname <> 'public'`)),
    ...(await q(`SELECT 'extension ' || quote_ident(extname) AS object, 'CREATE EXTENSION ' || quote_ident(extname) || ';' AS ddl
      FROM pg_extension WHERE extname <> 'plpgsql'`)),
    ...(await tableDdls(c)),
    ...(await q(`SELECT 'index ' || quote_ident(n.nspname) || '.' || quote_ident(ic.relname) AS object, pg_get_indexdef(i.indexrelid) || ';' AS ddl
      FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
      WHERE ${USER_SCHEMA} AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))
        AND ${NOT_EXTENSION('pg_class', 'i.indrelid')}`)),
    ...(await q(`SELECT (CASE c.relkind WHEN 'v' THEN 'view ' ELSE 'materialized view ' END) || quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS object,
        'CREATE ' || (CASE c.relkind WHEN 'v' THEN 'VIEW ' ELSE 'MATERIALIZED VIEW ' END) || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' AS' || chr(10) || pg_get_viewdef(c.oid) AS ddl
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') AND ${USER_SCHEMA} AND ${NOT_EXTENSION('pg_class', 'c.oid')}`)),
    ...(await q(`SELECT 'sequence ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS object,
        'CREATE SEQUENCE ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ';' AS ddl
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND ${USER_SCHEMA} AND ${NOT_EXTENSION('pg_class', 'c.oid')}`)),
    ...(await q(`SELECT 'function ' || p.oid::regprocedure::text AS object, pg_get_functiondef(p.oid) AS ddl
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind IN ('f', 'p') AND ${USER_SCHEMA} AND ${NOT_EXTENSION('pg_proc', 'p.oid')}`)),
    ...(await q(`SELECT 'type ' || t.oid::regtype::text AS object,
        'CREATE TYPE ' || t.oid::regtype::text || ' AS ENUM (' || string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) || ');' AS ddl
      FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE ${USER_SCHEMA} AND ${NOT_EXTENSION('pg_type', 't.oid')} GROUP BY t.oid`)),
    ...(await q(`SELECT 'trigger ' || quote_ident(tg.tgname) || ' on ' || tg.tgrelid::regclass::text AS object, pg_get_triggerdef(tg.oid) || ';' AS ddl
      FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE NOT tg.tgisinternal AND ${USER_SCHEMA}`)),
  ];
  for (const r of rows.sort((a, b) => a.object.localeCompare(b.object))) out.set(r.object, r.ddl);
  return out;
}

/** Every user table's CREATE TABLE, columns and constraints, in two catalog reads. */
async function tableDdls(c: pg.Client): Promise<{ object: string; ddl: string }[]> {
  const cols = await c.query<Column & { table: string }>(`SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS table, a.attname AS name,
      format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND ${USER_SCHEMA} AND ${NOT_EXTENSION('pg_class', 'c.oid')}
    ORDER BY 1, a.attnum`);
  const cons = await c.query<{ table: string; def: string }>(`SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS table,
      'CONSTRAINT ' || quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid) AS def
    FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND k.contype <> 'n' AND ${USER_SCHEMA} ORDER BY 1, k.conname`);
  const tables = new Map<string, { columns: Column[]; constraints: string[] }>();
  const of = (t: string) => tables.get(t) ?? tables.set(t, { columns: [], constraints: [] }).get(t)!;
  for (const r of cols.rows) of(r.table).columns.push(r);
  for (const r of cons.rows) if (tables.has(r.table)) of(r.table).constraints.push(r.def);
  return [...tables].map(([t, x]) => ({ object: `table ${t}`, ddl: tableDdl(t, x.columns, x.constraints) }));
}

export interface KeyedTable {
  /** schema.table, quoted for SQL. */
  name: string;
  /** Its primary key columns, quoted; empty when it has none. */
  key: string[];
}

/** The user tables of a database with their primary keys (by quoted name). */
export async function keyedTables(c: pg.Client): Promise<Map<string, KeyedTable>> {
  const r = await c.query<{ name: string; key: string[] | null }>(`SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name,
      (SELECT array_agg(quote_ident(a.attname) ORDER BY k.ord) FROM pg_index i
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
       WHERE i.indrelid = c.oid AND i.indisprimary) AS key
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND ${USER_SCHEMA} AND ${NOT_EXTENSION('pg_class', 'c.oid')} ORDER BY 1`);
  return new Map(r.rows.map((x) => [x.name, { name: x.name, key: x.key ?? [] }]));
}
