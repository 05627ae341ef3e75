// The difference between two schema snapshots (catalog.ts: object -> DDL): objects added, removed and changed,
// and the whole as a unified-style text diff an agent or a person reads at once.

export interface SchemaDiff {
  identical: boolean;
  added: { object: string; ddl: string }[];
  removed: { object: string; ddl: string }[];
  changed: { object: string; before: string; after: string }[];
  diff: string;
}

export function diffSchemas(before: Map<string, string>, after: Map<string, string>): SchemaDiff {
  const added = [...after].filter(([k]) => !before.has(k)).map(([object, ddl]) => ({ object, ddl }));
  const removed = [...before].filter(([k]) => !after.has(k)).map(([object, ddl]) => ({ object, ddl }));
  const changed = [...after].filter(([k, ddl]) => before.has(k) && before.get(k) !== ddl).map(([object, ddl]) => ({ object, before: before.get(object)!, after: ddl }));
  const text = [
    ...removed.map((x) => `--- ${x.object} (removed)\n${prefix('-', x.ddl)}`),
    ...added.map((x) => `+++ ${x.object} (added)\n${prefix('+', x.ddl)}`),
    ...changed.map((x) => `@@ ${x.object} (changed)\n${lineDiff(x.before, x.after)}`),
  ];
  return { identical: !added.length && !removed.length && !changed.length, added, removed, changed, diff: text.join('\n') };
}

const prefix = (mark: string, s: string) => s.split('\n').map((l) => `${mark}${l}`).join('\n');

/** Lines of `a` and `b` marked ' ', '-' or '+' along their longest common subsequence (DDL texts are short). */
export function lineDiff(a: string, b: string): string {
  const x = a.split('\n');
  const y = b.split('\n');
  const lcs: number[][] = Array.from({ length: x.length + 1 }, () => new Array<number>(y.length + 1).fill(0));
  for (let i = x.length - 1; i >= 0; i--) {
    for (let j = y.length - 1; j >= 0; j--) lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) {
      out.push(` ${x[i]}`);
      i++;
      j++;
    } else if (j < y.length && (i === x.length || lcs[i][j + 1] >= lcs[i + 1][j])) out.push(`+${y[j++]}`);
    else out.push(`-${x[i++]}`);
  }
  return out.join('\n');
}
