// Which SQL-over-HTTP requests the gateway may answer from its cache. Conservative on purpose: anything it
// cannot read with certainty is forwarded unchanged. Two layers stand between a write and the cache:
//   1. this lexical check (one SELECT / VALUES / TABLE / SHOW / WITH statement, no DML or locking keyword,
//      none of the functions that change state), and
//   2. a cache miss runs the query inside a READ ONLY transaction, so PostgreSQL itself refuses a write
//      that slipped through (a user function that inserts, nextval()); the gateway then forwards the
//      request unchanged and does not cache (see gateway/index.ts).

export type CacheDecision = { cacheable: true } | { cacheable: false; reason: string };

const READ_KEYWORDS = new Set(['select', 'values', 'table', 'show', 'with']);

/**
 * Inside one SELECT / VALUES / TABLE / WITH statement, data changes can only come from a data-modifying WITH
 * (INSERT, UPDATE, DELETE, MERGE), SELECT ... INTO (creates a table) or a row lock (FOR UPDATE / SHARE).
 * Matched as words outside literals: a column named `updated_at` is fine, one named `update` is bypassed.
 */
const WRITE_WORDS = /\b(insert|update|delete|merge|into)\b/i;

/** Functions with side effects a read-only transaction does not stop, or whose result must not be shared. */
const SIDE_EFFECT_FUNCTIONS =
  /\b(nextval|setval|currval|lastval|set_config|pg_advisory\w*|pg_try_advisory\w*|pg_notify|pg_sleep\w*|pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile|pg_switch_wal|pg_create\w*|pg_drop\w*|pg_replication\w*|pg_logical\w*|lo_\w+|dblink\w*|txid_current\w*|pg_current_xact_id\w*|pg_export_snapshot|pg_stat_reset\w*|pg_read_\w*|pg_ls_\w*)\s*\(/i;

export function classifyQuery(query: string): CacheDecision {
  if (query.length > 64 * 1024) return { cacheable: false, reason: 'query too long' };
  // Dollar quoting and E'' strings hide quotes from a simple scanner: don't try to read them.
  if (/\$[A-Za-z_]*\$/.test(query)) return { cacheable: false, reason: 'dollar-quoted text' };
  if (/(^|[^A-Za-z0-9_$])[eE]'/.test(query)) return { cacheable: false, reason: 'escape string' };
  let code: string;
  try {
    code = stripLiteralsAndComments(query);
  } catch {
    return { cacheable: false, reason: 'unterminated literal or comment' };
  }
  const text = code.trim().replace(/;\s*$/, '');
  if (text.includes(';')) return { cacheable: false, reason: 'more than one statement' };
  const first = /^\(*\s*([A-Za-z]+)/.exec(text)?.[1]?.toLowerCase();
  if (!first || !READ_KEYWORDS.has(first)) return { cacheable: false, reason: `not a read (${first ?? 'empty'})` };
  if (WRITE_WORDS.test(text)) return { cacheable: false, reason: 'data-modifying keyword' };
  if (/\bfor\s+(update|share|no\s+key|key\s+share)\b/i.test(text)) return { cacheable: false, reason: 'row lock' };
  if (SIDE_EFFECT_FUNCTIONS.test(text)) return { cacheable: false, reason: 'function with side effects' };
  return { cacheable: true };
}

/**
 * Replaces '...' literals and "..." identifiers with placeholders and drops comments, so that keywords
 * inside them neither hide nor fake a statement. Throws on an unterminated literal or comment.
 */
function stripLiteralsAndComments(sql: string): string {
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i];
    const next = sql[i + 1];
    if (ch === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end + 1;
      out += ' ';
    } else if (ch === '/' && next === '*') {
      let depth = 1;
      let j = i + 2;
      while (depth > 0) {
        if (j >= sql.length) throw new Error('unterminated comment');
        if (sql[j] === '/' && sql[j + 1] === '*') {
          depth++;
          j += 2;
        } else if (sql[j] === '*' && sql[j + 1] === '/') {
          depth--;
          j += 2;
        } else j++;
      }
      i = j;
      out += ' ';
    } else if (ch === "'" || ch === '"') {
      let j = i + 1;
      for (;;) {
        if (j >= sql.length) throw new Error('unterminated literal');
        if (sql[j] === ch) {
          if (sql[j + 1] === ch) j += 2;
          else break;
        } else j++;
      }
      i = j + 1;
      out += ch === "'" ? " '' " : ' "x" ';
    } else {
      out += ch;
      i++;
    }
  }
  return out;
}
