// Output: a table for people by default, JSON for scripts (--json).

/** A row of a table: any API object (its fields are read by column name). */
export type Row = object;

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function table(rows: Row[], columns: string[]): string {
  if (rows.length === 0) return '(none)';
  const data = rows.map((r) => columns.map((c) => cell((r as Record<string, unknown>)[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...data.map((d) => d[i].length)));
  const line = (cells: string[]) => cells.map((s, i) => s.padEnd(widths[i])).join('  ').trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...data.map(line)].join('\n');
}

export interface Out {
  json: boolean;
  write(s: string): void;
}

/** Prints `value` as JSON, or `rows` as a table of `columns`. */
export function show(out: Out, value: unknown, rows: Row[], columns: string[]): void {
  out.write(out.json ? JSON.stringify(value, null, 2) : table(rows, columns));
}
