// What a client session leaves on the shared PGlite backend, and the SQL that saves it, puts it away and brings it
// back at a hand-off (when the backend runs a batch of another session than the one that ran last): settings it
// changed (pg_settings, source 'session'), its SQL-level prepared statements (pg_prepared_statements, from_sql),
// and its temporary tables, views and sequences (hidden under a name of their own: a temporary relation cannot
// leave the backend's one temporary schema). Identity is never saved: every turn starts from the session's role.
import { messagesIn, parseDataRow } from '../../lib/pg-wire/index.ts';
import { errorsIn } from './wire/backend-output.ts';
import { quoteIdent } from '../../lib/sql-quote.ts';
import { HIDDEN_PREFIX, prepareStatement } from './wire/sql-scan.ts';

/** The backend's authenticated user (PGlite's bootstrap superuser): the hand-off's own SQL runs as it. */
export const SUPERUSER = 'postgres';

export interface TempRelation {
  /** 'r' table, 'p' partitioned table, 'v' view, 'S' sequence, 'c' composite type. */
  kind: string;
  name: string;
  hidden: string;
}

/** A session's state while another session has the backend. */
export interface SavedState {
  settings: [string, string][];
  /** Its SET ROLE, set again after its identity (Postgres checks that its role is a member), or null. */
  role: string | null;
  /** PREPARE statements, to run again when the session's turn comes back. */
  prepared: string[];
  temps: TempRelation[];
  /** The backend epoch the temporary relations live in (a restarted backend lost them). */
  epoch: number;
}

/** What a capture found live on the backend for the session that ran last. */
export interface Captured {
  settings: [string, string][];
  role: string | null;
  /** name -> the PREPARE statement's text (null when it could not be found in the query string). */
  prepared: Map<string, string | null>;
  temps: TempRelation[];
}

/** Settings that are identity or transaction state, never carried from one turn to the next. */
const NOT_SAVED = ['session_authorization', 'role', 'is_superuser', 'transaction_isolation', 'transaction_read_only', 'transaction_deferrable'];

/**
 * Becomes the superuser (the session may have changed role: its temporary relations need their owner or a
 * superuser), reads the session's state (its SET ROLE first), and resets every setting. Fully qualified: the session's search_path is
 * still in force. One implicit transaction: if the capture fails, nothing of it happened (see the caller).
 */
export const CAPTURE_SQL = `SELECT 'role', pg_catalog.current_setting('role'), ''; SET SESSION AUTHORIZATION ${SUPERUSER}; RESET ROLE; `
  + `SELECT 's', s.name, pg_catalog.current_setting(s.name) FROM pg_catalog.pg_settings s WHERE s.source OPERATOR(pg_catalog.=) 'session' `
  + `AND s.name OPERATOR(pg_catalog.<>) ALL (ARRAY[${NOT_SAVED.map((n) => `'${n}'`).join(', ')}]::pg_catalog.text[]) `
  + `UNION ALL SELECT 'p', p.name, p.statement FROM pg_catalog.pg_prepared_statements p WHERE p.from_sql `
  + `UNION ALL SELECT c.relkind::pg_catalog.text, c.oid::pg_catalog.text, c.relname::pg_catalog.text FROM pg_catalog.pg_class c `
  + `WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() AND c.relkind::pg_catalog.text OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p', 'v', 'S', 'c']::pg_catalog.text[]) `
  + `AND NOT c.relname::pg_catalog.text OPERATOR(pg_catalog.^@) '${HIDDEN_PREFIX}'; RESET ALL`;

/**
 * The capture of a stateless session (the proxy's pooled connection for SQL over HTTP: each request stands alone
 * and nothing of it is kept): no settings to save (RESET ALL discards them), only its prepared statements and
 * temporary relations to drop. Skips the pg_settings scan, the costly part of CAPTURE_SQL.
 */
export const STATELESS_CAPTURE_SQL = `SET SESSION AUTHORIZATION ${SUPERUSER}; RESET ROLE; `
  + `SELECT 'p', p.name, p.statement FROM pg_catalog.pg_prepared_statements p WHERE p.from_sql `
  + `UNION ALL SELECT c.relkind::pg_catalog.text, c.oid::pg_catalog.text, c.relname::pg_catalog.text FROM pg_catalog.pg_class c `
  + `WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() AND c.relkind::pg_catalog.text OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p', 'v', 'S', 'c']::pg_catalog.text[]) `
  + `AND NOT c.relname::pg_catalog.text OPERATOR(pg_catalog.^@) '${HIDDEN_PREFIX}'; RESET ALL`;

/** The backend's answer to one simple Query of a multi-Query exec: its rows (as text) and its first error. */
export interface QueryResult {
  rows: string[][];
  error: { code: string; message: string } | null;
}

/** Splits a multi-Query exec's output at each ReadyForQuery. */
export function resultsOf(out: Uint8Array): QueryResult[] {
  const results: QueryResult[] = [];
  let cur: QueryResult = { rows: [], error: null };
  for (const m of messagesIn(out)) {
    if (m.type === 'D') cur.rows.push(dataRow(m.body));
    else if (m.type === 'E') cur.error ??= errorsIn(m.bytes)[0] ?? null;
    else if (m.type === 'Z') {
      results.push(cur);
      cur = { rows: [], error: null };
    }
  }
  return results;
}

/** A row's values as text, SQL NULL as ''. */
function dataRow(body: Uint8Array): string[] {
  return parseDataRow(body).map((v) => v ?? '');
}

export function parseCapture(rows: string[][]): Captured {
  const c: Captured = { settings: [], role: null, prepared: new Map(), temps: [] };
  for (const [kind, a, b] of rows) {
    // kinds: 'role', 's' setting, 'p' prepared statement, else a relkind (one letter)
    if (kind === 'role') c.role = a === 'none' ? null : a;
    else if (kind === 's') c.settings.push([a, b]);
    else if (kind === 'p') c.prepared.set(a, prepareStatement(b, a));
    else c.temps.push({ kind, name: b, hidden: HIDDEN_PREFIX + a });
  }
  return c;
}

function alterKeyword(kind: string): string {
  return kind === 'v' ? 'VIEW' : kind === 'S' ? 'SEQUENCE' : kind === 'c' ? 'TYPE' : 'TABLE';
}

function rename(from: string, to: string, kind: string): string {
  return `ALTER ${alterKeyword(kind)} pg_temp.${quoteIdent(from)} RENAME TO ${quoteIdent(to)}`;
}

export function dropSql(t: TempRelation, hidden: boolean): string {
  return `DROP ${alterKeyword(t.kind)} IF EXISTS pg_temp.${quoteIdent(hidden ? t.hidden : t.name)} CASCADE`;
}

/** Statements that hide (or, for a departed session, drop) what the capture found. */
export function putAwaySql(c: Captured, keep: boolean): string[] {
  const out = [...c.prepared.keys()].map((name) => `DEALLOCATE ${quoteIdent(name)}`);
  for (const t of c.temps) out.push(keep ? rename(t.name, t.hidden, t.kind) : dropSql(t, false));
  return out;
}

/** Statements that give a session its hidden temporary relations back. */
export function bringBackSql(temps: TempRelation[]): string[] {
  return temps.map((t) => rename(t.hidden, t.name, t.kind));
}

/** One statement that restores saved settings (run before the identity: superuser-only ones were the session's). */
export function settingsSql(settings: [string, string][]): string {
  const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`;
  return 'SELECT ' + settings.map(([n, v]) => `pg_catalog.set_config(${lit(n)}, ${lit(v)}, false)`).join(', ');
}

/**
 * The proxy's session reset (SESSION_RESET_SQL) as Postgres' own DISCARD ALL, for when no other session has anything
 * on the backend it would touch (named statements, hidden temporary relations): the session-scoped forms the
 * client's text is rewritten to are PL/pgSQL loops over the catalogs, ~1 ms per request. DISCARD ALL is the reset's
 * CLOSE ALL, RESET ALL, DEALLOCATE ALL, UNLISTEN *, pg_advisory_unlock_all(), DISCARD TEMP and DISCARD SEQUENCES in
 * one statement (plus DISCARD PLANS: cached plans are only marked for re-planning), and far cheaper than those as a
 * multi-statement Query. It must be a Query of its own (it refuses an implicit transaction block) and fails inside a
 * transaction: `rollback` puts a ROLLBACK first when one is known to be open (outside one, ROLLBACK costs a WARNING
 * sent and logged). Its `SET SESSION AUTHORIZATION DEFAULT` is the backend's superuser: the session's identity follows.
 */
export function nativeResetQueries(user: string, rollback: boolean): string[] {
  return [...(rollback ? ['ROLLBACK'] : []), 'DISCARD ALL', identitySql(user)];
}

export function identitySql(user: string): string {
  return `SET SESSION AUTHORIZATION ${quoteIdent(user)}`;
}

/** Run as the session's role, after identitySql: Postgres refuses (42501) a role the session's is not a member of. */
export function roleSql(role: string): string {
  return `SELECT pg_catalog.set_config('role', '${role.replace(/'/g, "''")}', false)`;
}
