// What the compute must know about a `COPY ... FROM STDIN` to cut its data into chunks that each run as the same
// statement: its format (text, CSV, binary), whether its first row is a header, its CSV QUOTE and ESCAPE
// characters; and a scanner that finds where rows end in the data as it arrives (a newline outside a CSV quoted
// field, or not escaped by a backslash in text format), byte for byte as Postgres' CopyReadLineText decides it.

export interface CopyFormat {
  kind: 'text' | 'csv' | 'binary';
  /** HEADER true or MATCH: the first row is a header line. */
  header: boolean;
  /** CSV QUOTE and ESCAPE bytes (default `"`; ESCAPE -1 when it is QUOTE, the default). */
  quote: number;
  escape: number;
}

interface Token {
  kind: 'word' | 'string' | 'punct';
  /** Upper-cased for words; the literal's value for strings. */
  value: string;
}

function tokens(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (/\s/.test(c)) i++;
    else if (c === '-' && sql[i + 1] === '-') {
      while (i < sql.length && sql[i] !== '\n') i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (c === "'" || ((c === 'E' || c === 'e') && sql[i + 1] === "'")) {
      const escapes = c !== "'";
      let j = escapes ? i + 2 : i + 1;
      let v = '';
      while (j < sql.length) {
        if (escapes && sql[j] === '\\' && j + 1 < sql.length) {
          v += sql[j + 1];
          j += 2;
        } else if (sql[j] === "'" && sql[j + 1] === "'") {
          v += "'";
          j += 2;
        } else if (sql[j] === "'") break;
        else v += sql[j++];
      }
      out.push({ kind: 'string', value: v });
      i = j + 1;
    } else if (c === '"') {
      const end = sql.indexOf('"', i + 1);
      out.push({ kind: 'word', value: '"' });
      i = end < 0 ? sql.length : end + 1;
    } else if (/[A-Za-z_0-9\u0080-\uffff]/.test(c)) {
      let j = i + 1;
      while (j < sql.length && /[A-Za-z_0-9$\u0080-\uffff]/.test(sql[j])) j++;
      out.push({ kind: 'word', value: sql.slice(i, j).toUpperCase() });
      i = j;
    } else {
      out.push({ kind: 'punct', value: c });
      i++;
    }
  }
  return out;
}

const FALSE_WORDS = new Set(['FALSE', 'OFF', '0', 'NO']);
const BOOL_WORDS = new Set(['TRUE', 'ON', '1', 'YES', 'MATCH', ...FALSE_WORDS]);

/**
 * The format of `sql` when it is exactly one `COPY ... FROM STDIN` statement (a trailing semicolon allowed);
 * null otherwise (several statements: they cannot be repeated per chunk).
 */
export function copyFormat(sql: string): CopyFormat | null {
  const t = tokens(sql);
  while (t.length > 0 && t[t.length - 1].value === ';') t.pop();
  if (t.length === 0 || t[0].value !== 'COPY' || t.some((x) => x.kind === 'punct' && x.value === ';')) return null;
  let depth = 0;
  let from = -1;
  for (let k = 1; k < t.length - 1 && from < 0; k++) {
    if (t[k].value === '(') depth++;
    else if (t[k].value === ')') depth--;
    else if (depth === 0 && t[k].kind === 'word' && t[k].value === 'FROM' && t[k + 1].value === 'STDIN') from = k;
  }
  if (from < 0) return null;
  const fmt: CopyFormat = { kind: t[1].value === 'BINARY' ? 'binary' : 'text', header: false, quote: 0x22, escape: -1 };
  readOptions(t.slice(from + 2), fmt);
  // as Postgres: an ESCAPE equal to QUOTE is no escape (a doubled quote toggles twice)
  if (fmt.escape === fmt.quote) fmt.escape = -1;
  return fmt;
}

/** Old-style (`CSV HEADER QUOTE AS '"'`) and parenthesized (`(FORMAT csv, HEADER true)`) options alike. */
function readOptions(t: Token[], fmt: CopyFormat): void {
  const value = (k: number): Token | undefined => (t[k]?.value === 'AS' ? t[k + 1] : t[k]);
  const oneByte = (v: Token | undefined): number => (v?.kind === 'string' && v.value.length === 1 && v.value.charCodeAt(0) < 128 ? v.value.charCodeAt(0) : -1);
  for (let k = 0; k < t.length; k++) {
    const w = t[k];
    if (w.kind !== 'word') continue;
    if (w.value === 'WHERE') return;
    if (w.value === 'BINARY') fmt.kind = 'binary';
    else if (w.value === 'CSV') fmt.kind = 'csv';
    else if (w.value === 'FORMAT') {
      const v = t[k + 1]?.value.toUpperCase();
      if (v === 'CSV' || v === 'BINARY' || v === 'TEXT') fmt.kind = v.toLowerCase() as CopyFormat['kind'];
    } else if (w.value === 'HEADER') {
      const v = t[k + 1]?.value.toUpperCase() ?? '';
      fmt.header = !(BOOL_WORDS.has(v) && FALSE_WORDS.has(v));
    } else if (w.value === 'QUOTE' && t[k - 1]?.value !== 'FORCE' && t[k - 1]?.value !== 'FORCE_QUOTE') {
      const q = oneByte(value(k + 1));
      if (q >= 0) fmt.quote = q;
    } else if (w.value === 'ESCAPE') {
      const e = oneByte(value(k + 1));
      if (e >= 0) fmt.escape = e;
    }
  }
}

const NL = 0x0a;
const BACKSLASH = 0x5c;

/**
 * Finds row ends in COPY data fed in pieces. Offsets are absolute (from the first byte of the COPY's data). In
 * binary format no row end is reported (the data runs as one batch).
 */
export class RowScanner {
  private readonly fmt: CopyFormat;
  private pos = 0;
  /** Text: the previous byte was an unescaped backslash. CSV: inside a quoted field; the last byte was ESCAPE. */
  private escaped = false;
  private inQuote = false;
  private lastWasEsc = false;
  /** The end of the first row (just past its newline), -1 until seen. */
  firstEnd = -1;

  constructor(fmt: CopyFormat) {
    this.fmt = fmt;
  }

  /** Scans the next piece; returns the absolute offset just past the last row end in it, or -1. */
  feed(b: Uint8Array): number {
    const base = this.pos;
    this.pos += b.length;
    if (this.fmt.kind === 'binary') return -1;
    const [first, last] = this.fmt.kind === 'text' ? this.feedText(b) : this.feedCsv(b);
    if (first >= 0 && this.firstEnd < 0) this.firstEnd = base + first + 1;
    return last < 0 ? -1 : base + last + 1;
  }

  /** Indexes of the first and last row-ending newlines in `b` (-1: none). */
  private feedText(b: Uint8Array): [number, number] {
    if (!this.escaped && b.indexOf(BACKSLASH) < 0) return [b.indexOf(NL), b.lastIndexOf(NL)];
    let first = -1;
    let last = -1;
    for (let i = 0; i < b.length; i++) {
      const c = b[i];
      if (this.escaped) this.escaped = false;
      else if (c === BACKSLASH) this.escaped = true;
      else if (c === NL) {
        if (first < 0) first = i;
        last = i;
      }
    }
    return [first, last];
  }

  private feedCsv(b: Uint8Array): [number, number] {
    const { quote, escape: esc } = this.fmt;
    if (!this.inQuote && b.indexOf(quote) < 0) return [b.indexOf(NL), b.lastIndexOf(NL)];
    let first = -1;
    let last = -1;
    for (let i = 0; i < b.length; i++) {
      const c = b[i];
      // as Postgres: ESCAPE counts only inside quotes and right before a QUOTE; with QUOTE = ESCAPE, a toggle
      if (this.inQuote && c === esc) this.lastWasEsc = !this.lastWasEsc;
      if (c === quote && !this.lastWasEsc) this.inQuote = !this.inQuote;
      if (c !== esc) this.lastWasEsc = false;
      if (c === NL && !this.inQuote) {
        if (first < 0) first = i;
        last = i;
      }
    }
    return [first, last];
  }
}
