// The rows that differ between two states of a database, per table: added, removed and changed, with a sample of
// each. Rows are matched by primary key (a table without one is compared as a multiset of whole rows); each side
// sends one md5 per row, so a table is compared in one pass over each side, up to MAX_ROWS rows.
import type pg from 'pg';
import { keyedTables } from './catalog.ts';
import type { KeyedTable } from './catalog.ts';

/** Rows per table and side compared at most; a larger table is reported as not compared. */
export const MAX_ROWS = 100_000;

export interface TableDiff {
  table: string;
  /** The primary key it was matched by; empty: whole rows. */
  key: string[];
  status: 'same' | 'changed' | 'added' | 'removed' | 'too large';
  added: number;
  removed: number;
  changed: number;
  sample?: { added: unknown[]; removed: unknown[]; changed: { before: unknown; after: unknown }[] };
}

type Hashes = Map<string, string>;

/** key (JSON of the key columns, or the row's md5 plus a counter) -> md5 of the row; null if over MAX_ROWS. */
async function hashes(c: pg.Client, t: KeyedTable): Promise<Hashes | null> {
  const key = t.key.length ? `json_build_array(${t.key.map((k) => `t.${k}`).join(', ')})::text` : 'md5(t::text)';
  const r = await c.query<{ k: string; h: string }>(`SELECT ${key} AS k, md5(t::text) AS h FROM ${t.name} t LIMIT ${MAX_ROWS + 1}`);
  if (r.rows.length > MAX_ROWS) return null;
  const out: Hashes = new Map();
  for (const row of r.rows) {
    let k = row.k;
    for (let n = 1; !t.key.length && out.has(k); n++) k = `${row.k}#${n}`; // duplicates of a key-less row
    out.set(k, row.h);
  }
  return out;
}

async function rowsByKey(c: pg.Client, t: KeyedTable, keys: string[]): Promise<Map<string, unknown>> {
  if (!keys.length) return new Map();
  const key = t.key.length ? `json_build_array(${t.key.map((k) => `t.${k}`).join(', ')})::text` : 'md5(t::text)';
  const plain = keys.map((k) => k.replace(/#\d+$/, ''));
  const r = await c.query<{ k: string; row: unknown }>(`SELECT ${key} AS k, to_jsonb(t) AS row FROM ${t.name} t WHERE ${key} = ANY($1)`, [plain]);
  return new Map(r.rows.map((x) => [x.k, x.row]));
}

async function tableDiff(base: pg.Client, branch: pg.Client, t: KeyedTable, sampleSize: number): Promise<TableDiff> {
  const [a, b] = await Promise.all([hashes(base, t), hashes(branch, t)]);
  const d: TableDiff = { table: t.name, key: t.key, status: 'same', added: 0, removed: 0, changed: 0 };
  if (!a || !b) return { ...d, status: 'too large' };
  const added = [...b.keys()].filter((k) => !a.has(k));
  const removed = [...a.keys()].filter((k) => !b.has(k));
  const changed = [...b.keys()].filter((k) => a.has(k) && a.get(k) !== b.get(k));
  Object.assign(d, { added: added.length, removed: removed.length, changed: changed.length });
  if (!added.length && !removed.length && !changed.length) return d;
  const pick = (ks: string[]) => ks.slice(0, sampleSize);
  const [after, before] = await Promise.all([
    rowsByKey(branch, t, [...pick(added), ...pick(changed)]),
    rowsByKey(base, t, [...pick(removed), ...pick(changed)]),
  ]);
  const plain = (k: string) => k.replace(/#\d+$/, '');
  d.status = 'changed';
  d.sample = {
    added: pick(added).map((k) => after.get(plain(k))),
    removed: pick(removed).map((k) => before.get(plain(k))),
    changed: pick(changed).map((k) => ({ before: before.get(k), after: after.get(k) })),
  };
  return d;
}

/** Every user table of either side; `only` limits it to one table (quoted schema.table as catalog.ts names it). */
export async function diffData(base: pg.Client, branch: pg.Client, opts: { sampleSize: number; only?: string }): Promise<TableDiff[]> {
  const [a, b] = await Promise.all([keyedTables(base), keyedTables(branch)]);
  const names = [...new Set([...a.keys(), ...b.keys()])].filter((n) => opts.only === undefined || n === opts.only).sort();
  const out: TableDiff[] = [];
  for (const name of names) {
    const inA = a.get(name);
    const inB = b.get(name);
    if (inA && inB) out.push(await tableDiff(base, branch, inB, opts.sampleSize));
    else {
      const side = (inB ?? inA)!;
      const n = Number((await (inB ? branch : base).query<{ n: string }>(`SELECT count(*) AS n FROM ${side.name}`)).rows[0].n);
      out.push({ table: name, key: side.key, status: inB ? 'added' : 'removed', added: inB ? n : 0, removed: inB ? 0 : n, changed: 0 });
    }
  }
  return out;
}
