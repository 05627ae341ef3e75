// Just enough SQL lexing to classify statements before they reach the shared backend: the statements of a
// string (split at top-level semicolons, skipping quotes, comments and dollar quotes) and their first words.
// Used for the things a multiplexed PGlite cannot take as they come: COPY ... FROM STDIN (PGlite needs the
// data in the same call, or it sees end-of-input and exits), LISTEN (a session-level subscription) and attempts to
// become another role (the backend's authenticated user is the superuser, so Postgres would allow them); and to
// find the text of one PREPARE in a query string (to prepare it again when its session's turn comes back).
import { quoteIdent } from '../../../lib/sql-quote.ts';
import { randomBytes } from 'node:crypto';
import type { ErrorFields } from '../../../lib/pg-wire/index.ts';

/** A lexical token of a statement: a word (upper-cased), a quoted identifier or string, a dollar quote, a paren. */
export interface Token {
  /** Upper-cased for words; `"` for a quoted identifier, `'` for a string, `$$` for a dollar quote, `(`, `)`. */
  kind: string;
  /** The token's value: the word as written, or the unquoted identifier or string. */
  value: string;
}

/** A top-level statement of a SQL string: its text span and first tokens. */
export interface Statement {
  start: number;
  end: number;
  tokens: Token[];
}

/** The statements of `sql` (split at top-level semicolons) with their leading tokens (up to `maxTokens`). */
export function statements(sql: string, maxTokens = 64): Statement[] {
  const out: Statement[] = [];
  let tokens: Token[] = [];
  let start = -1;
  let i = 0;
  const n = sql.length;
  const add = (t: Token, at: number): void => {
    if (start < 0) start = at;
    if (tokens.length < maxTokens) tokens.push(t);
  };
  const flush = (end: number): void => {
    if (tokens.length > 0) out.push({ start, end, tokens });
    tokens = [];
    start = -1;
  };
  while (i < n) {
    const c = sql[i];
    if (c === ';') {
      flush(i);
      i++;
    } else if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      i = skipComment(sql, i);
    } else if (c === "'" || c === '"') {
      const end = skipQuoted(sql, i, c);
      add({ kind: c, value: unquote(sql.slice(i + 1, end - 1), c) }, i);
      i = end;
    } else if (c === '$') {
      const m = /^\$([A-Za-z_][A-Za-z_0-9]*)?\$/.exec(sql.slice(i, i + 64));
      if (m) {
        const end = sql.indexOf(m[0], i + m[0].length);
        add({ kind: '$$', value: sql.slice(i + m[0].length, end < 0 ? n : end) }, i);
        i = end < 0 ? n : end + m[0].length;
      } else i++;
    } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z_0-9$\u0080-\uffff]/.test(sql[j])) j++;
      add({ kind: sql.slice(i, j).toUpperCase(), value: sql.slice(i, j) }, i);
      i = j;
    } else if (c === '(' || c === ')') {
      add({ kind: c, value: c }, i);
      i++;
    } else i++;
  }
  flush(n);
  return out;
}

/** The leading words (upper-cased identifiers/keywords, up to `maxWords`) of each statement in `sql`. */
export function statementWords(sql: string, maxWords = 64): string[][] {
  return statements(sql, maxWords).map((s) => s.tokens.map((t) => t.kind));
}

function skipComment(sql: string, start: number): number {
  // block comments nest in Postgres
  let depth = 1;
  let i = start + 2;
  while (i < sql.length && depth > 0) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth++;
      i += 2;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth--;
      i += 2;
    } else i++;
  }
  return i;
}

function unquote(body: string, q: string): string {
  return body.split(q + q).join(q);
}

function skipQuoted(sql: string, start: number, q: string): number {
  let i = start + 1;
  // E'...' strings allow backslash escapes; treat any backslash-quote as escaped (harmless for plain strings
  // with standard_conforming_strings, where a trailing backslash before a quote is rare)
  const escapes = q === "'" && start > 0 && /[eE]/.test(sql[start - 1]);
  while (i < sql.length) {
    if (escapes && sql[i] === '\\') {
      i += 2;
      continue;
    }
    if (sql[i] === q) {
      if (sql[i + 1] === q) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return i;
}

export interface SqlTraits {
  /** A statement is COPY ... FROM STDIN; `binary` when it asks for the binary format. */
  copyFromStdin: { binary: boolean } | null;
  /** A statement is LISTEN. */
  listen: boolean;
  /** A statement tries to become another role: the error to refuse the batch with (42501). */
  identity: ErrorFields | null;
  /** The SQL to run instead (see guardSession), or null. */
  rewritten: string | null;
}

/** The session a statement comes from: its role and the prefix of its protocol-level statement names. */
export interface SessionNames {
  user: string;
  prefix: string;
}

/** `session`: for the identity checks and the rewrites of guardSession (without it, none are made). */
export function sqlTraits(sql: string, session?: SessionNames): SqlTraits {
  // keywords cannot be quoted or escaped: SQL without these letters has none of them (the common case, unlexed)
  if (!/copy|listen|authorization|discard|deallocate/i.test(sql)) return { copyFromStdin: null, listen: false, identity: null, rewritten: null };
  let copyFromStdin: SqlTraits['copyFromStdin'] = null;
  let listen = false;
  const all = statements(sql);
  for (const st of all) {
    const w = st.tokens.map((t) => t.kind);
    if (w[0] === 'LISTEN') listen = true;
    if (w[0] !== 'COPY') continue;
    // COPY target [(cols)] FROM STDIN: FROM outside parentheses followed by STDIN
    let depth = 0;
    for (let k = 1; k < w.length - 1; k++) {
      if (w[k] === '(') depth++;
      else if (w[k] === ')') depth--;
      else if (depth === 0 && w[k] === 'FROM' && w[k + 1] === 'STDIN') {
        copyFromStdin = { binary: w.includes('BINARY') };
      }
    }
  }
  const guarded = session === undefined ? { identity: null, rewritten: null } : guardSession(sql, all, session);
  return { copyFromStdin, listen, ...guarded };
}

/**
 * The session's identity is its login role. The backend's authenticated user is the superuser, so Postgres lets
 * any session SET SESSION AUTHORIZATION to anyone: the compute refuses it (as Postgres refuses a role that is not
 * superuser, 42501) unless it names the session's own role. RESET SESSION AUTHORIZATION and ... DEFAULT mean
 * "back to the role I logged in as" to a client (and are no-ops in PGlite's single-user backend, whose
 * authenticated user has no reset value): they are rewritten to SET SESSION AUTHORIZATION <own role>.
 * SET ROLE needs nothing here: Postgres checks it against the session user, the session's role.
 */
function guardSession(sql: string, all: Statement[], session: SessionNames): Pick<SqlTraits, 'identity' | 'rewritten'> {
  const { user } = session;
  let out = '';
  let at = 0;
  for (const st of all) {
    const target = authorizationTarget(st.tokens);
    let instead = sessionScoped(st.tokens, session);
    if (target !== null && target !== 'DEFAULT') {
      if (target === user) continue;
      return { identity: { severity: 'ERROR', code: '42501', message: `permission denied to set session authorization "${target}"`, detail: `This session's role is "${user}".` }, rewritten: null };
    }
    if (target === 'DEFAULT') instead = `SET ${st.tokens[1]?.kind === 'LOCAL' ? 'LOCAL ' : ''}SESSION AUTHORIZATION ${quoteIdent(user)}`;
    if (instead === null) continue;
    out += sql.slice(at, st.start) + instead;
    at = st.end;
  }
  return { identity: null, rewritten: at === 0 ? null : out + sql.slice(at) };
}

/**
 * DEALLOCATE ALL, DISCARD TEMP and DISCARD ALL act on the whole backend, so on the shared one they would also drop
 * other sessions' statements and (hidden) temporary relations: they are rewritten to act on the session's own.
 * (The one statement becomes several for DISCARD ALL, which the extended protocol refuses with 42601.)
 */
function sessionScoped(tokens: Token[], session: SessionNames): string | null {
  const k = tokens.map((t) => t.kind);
  if (k[0] === 'DEALLOCATE' && (k[1] === 'ALL' || (k[1] === 'PREPARE' && k[2] === 'ALL'))) return deallocateAllSql(session.prefix);
  if (k[0] !== 'DISCARD') return null;
  if (k[1] === 'TEMP' || k[1] === 'TEMPORARY') return DISCARD_TEMP_SQL;
  if (k[1] !== 'ALL') return null;
  return `CLOSE ALL; SET SESSION AUTHORIZATION ${quoteIdent(session.user)}; RESET ALL; ${deallocateAllSql(session.prefix)}; UNLISTEN *; `
    + `DO $lakebase$BEGIN PERFORM pg_catalog.pg_advisory_unlock_all(); END$lakebase$; DISCARD PLANS; ${DISCARD_TEMP_SQL}; DISCARD SEQUENCES`;
}

function deallocateAllSql(prefix: string): string {
  return `DO $lakebase$DECLARE r record; BEGIN FOR r IN SELECT name FROM pg_catalog.pg_prepared_statements `
    + `WHERE from_sql OR name OPERATOR(pg_catalog.^@) '${prefix}' LOOP EXECUTE pg_catalog.format('DEALLOCATE %I', r.name); END LOOP; END$lakebase$`;
}

/**
 * Temporary relations of sessions that are not running are renamed to this prefix + their oid. Random per host
 * process, so that a client cannot name a table of its own so that captures pass it over.
 */
export const HIDDEN_PREFIX = `lb_hidden_${randomBytes(4).toString('hex')}_`;

/** Drops the session's own temporary relations: the live ones (other sessions' are hidden, `lb_hidden_<oid>`). */
const DISCARD_TEMP_SQL = `DO $lakebase$DECLARE r record; BEGIN FOR r IN SELECT c.relname, c.relkind FROM pg_catalog.pg_class c `
  + `WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() AND c.relkind::pg_catalog.text OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p', 'v', 'S', 'c']) `
  + `AND NOT c.relname::pg_catalog.text OPERATOR(pg_catalog.^@) '${HIDDEN_PREFIX}' LOOP EXECUTE pg_catalog.format('DROP %s IF EXISTS pg_temp.%I CASCADE', `
  + `CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END, r.relname); END LOOP; END$lakebase$`;

/**
 * The role a statement sets the session authorization to (`DEFAULT` for RESET and DEFAULT), or null when it does
 * not: SET [SESSION|LOCAL] SESSION AUTHORIZATION x, SET [SESSION|LOCAL] session_authorization {=|TO} x, RESET
 * SESSION AUTHORIZATION, RESET session_authorization.
 */
function authorizationTarget(tokens: Token[]): string | null {
  const k = tokens.map((t) => t.kind);
  if (k[0] === 'RESET') return (k[1] === 'SESSION' && k[2] === 'AUTHORIZATION') || k[1] === 'SESSION_AUTHORIZATION' ? 'DEFAULT' : null;
  if (k[0] !== 'SET') return null;
  let i = k[1] === 'SESSION' && (k[2] === 'SESSION' || k[2] === 'SESSION_AUTHORIZATION') ? 2 : k[1] === 'LOCAL' ? 2 : 1;
  if (k[i] === 'SESSION' && k[i + 1] === 'AUTHORIZATION') i += 2;
  else if (k[i] === 'SESSION_AUTHORIZATION') i += 1;
  else return null;
  if (k[i] === 'TO') i++;
  const t = tokens[i];
  if (!t) return 'DEFAULT';
  if (t.kind === 'DEFAULT') return 'DEFAULT';
  // an unquoted name is folded to lower case, as Postgres does
  return t.kind === '"' || t.kind === "'" ? t.value : t.value.toLowerCase();
}

/** The text of the statement `PREPARE <name> ...` in `sql` (a query string may hold several statements). */
export function prepareStatement(sql: string, name: string): string | null {
  if (!/prepare/i.test(sql)) return null;
  for (const st of statements(sql, 2)) {
    const [kw, id] = st.tokens;
    if (kw?.kind !== 'PREPARE' || !id) continue;
    const n = id.kind === '"' ? id.value : id.value.toLowerCase();
    if (n === name) return sql.slice(st.start, st.end);
  }
  return null;
}
