// Quoting of SQL identifiers and string literals for statements the services build themselves (roles, databases,
// session state). One definition for every service; standard_conforming_strings is on everywhere we send them.

/** A Postgres identifier, double-quoted: `a"b` -> `"a""b"`. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A Postgres string literal: `it's` -> `'it''s'`. */
export function quoteLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}
