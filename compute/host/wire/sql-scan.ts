// Just enough SQL lexing to classify statements before they reach the shared backend: the statements of a
// string (split at top-level semicolons, skipping quotes, comments and dollar quotes) and their first words.
// Used for the two things a multiplexed PGlite cannot take as they come: COPY ... FROM STDIN (PGlite needs the
// data in the same call, or it sees end-of-input and exits) and LISTEN (a session-level subscription).

/** The leading words (upper-cased identifiers/keywords, up to `maxWords`) of each statement in `sql`. */
export function statementWords(sql: string, maxWords = 64): string[][] {
  const out: string[][] = [];
  let words: string[] = [];
  let i = 0;
  const n = sql.length;
  const flush = (): void => {
    if (words.length > 0) out.push(words);
    words = [];
  };
  while (i < n) {
    const c = sql[i];
    if (c === ';') {
      flush();
      i++;
    } else if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      // block comments nest in Postgres
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth--;
          i += 2;
        } else i++;
      }
    } else if (c === "'" || c === '"') {
      i = skipQuoted(sql, i, c);
      if (words.length < maxWords) words.push(c === '"' ? '"' : "'");
    } else if (c === '$') {
      const m = /^\$([A-Za-z_][A-Za-z_0-9]*)?\$/.exec(sql.slice(i, i + 64));
      if (m) {
        const end = sql.indexOf(m[0], i + m[0].length);
        i = end < 0 ? n : end + m[0].length;
        if (words.length < maxWords) words.push('$$');
      } else i++;
    } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z_0-9$\u0080-\uffff]/.test(sql[j])) j++;
      if (words.length < maxWords) words.push(sql.slice(i, j).toUpperCase());
      i = j;
    } else if (c === '(' || c === ')') {
      if (words.length < maxWords) words.push(c);
      i++;
    } else i++;
  }
  flush();
  return out;
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
}

export function sqlTraits(sql: string): SqlTraits {
  // keywords cannot be quoted or escaped: SQL without these letters has neither (the common case, unlexed)
  if (!/copy|listen/i.test(sql)) return { copyFromStdin: null, listen: false };
  let copyFromStdin: SqlTraits['copyFromStdin'] = null;
  let listen = false;
  for (const w of statementWords(sql)) {
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
  return { copyFromStdin, listen };
}
