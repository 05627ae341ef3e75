// What a compute fetches before Postgres asks for it: the listing, the small files every start reads, the WAL
// page of the last checkpoint (found through pg_control), and the pages named by the prefetch hint, a file in
// the data directory that records which pages the last start read. Three round trips in all, made by the
// parent thread while the worker is still being spawned and the wasm instantiated.
import type { StorageClient } from '../../storage-node/client.ts';
import type { FileEntry, PageRef } from '../../storage-node/api/types.ts';
import { PAGE_SIZE } from '../../storage-node/api/types.ts';
import { readCheckedPages, warnBadPages } from './page-check.ts';

/** The prefetch hint: `{"v":1,"files":{"base/5/1259":[[0,3],[7,1]],...}}` (runs of [first page, count]). */
export const HINT_PATH = 'lakebase.prefetch';

/** Small files that every start reads whole. */
const ALWAYS = /^(PG_VERSION|postgresql\.conf|postgresql\.auto\.conf|pg_hba\.conf|pg_ident\.conf|global\/pg_control|global\/pg_filenode\.map|base\/\d+\/PG_VERSION|base\/\d+\/pg_filenode\.map|pg_logical\/replorigin_checkpoint)$/;

export function encodeHint(refs: PageRef[]): Uint8Array {
  const byFile = new Map<string, number[]>();
  for (const r of refs) {
    if (!inHint(r)) continue;
    const arr = byFile.get(r.path);
    if (arr) arr.push(r.page);
    else byFile.set(r.path, [r.page]);
  }
  const files: Record<string, [number, number][]> = {};
  for (const path of [...byFile.keys()].sort()) {
    const pages = [...new Set(byFile.get(path))].sort((a, b) => a - b);
    const runs: [number, number][] = [];
    for (const p of pages) {
      const last = runs[runs.length - 1];
      if (last && last[0] + last[1] === p) last[1]++;
      else runs.push([p, 1]);
    }
    files[path] = runs;
  }
  return new TextEncoder().encode(JSON.stringify({ v: 1, files }));
}

/** The hint's pages, or [] when the bytes are not a hint (a bad hint only costs speed). */
export function decodeHint(bytes: Uint8Array): PageRef[] {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  try {
    const parsed = JSON.parse(new TextDecoder().decode(bytes.subarray(0, end))) as { v?: unknown; files?: unknown };
    if (parsed.v !== 1 || typeof parsed.files !== 'object' || parsed.files === null) return [];
    const out: PageRef[] = [];
    for (const [path, runs] of Object.entries(parsed.files as Record<string, unknown>)) {
      if (!Array.isArray(runs)) continue;
      for (const run of runs) {
        if (!Array.isArray(run) || !Number.isSafeInteger(run[0]) || !Number.isSafeInteger(run[1])) continue;
        for (let i = 0; i < Math.min(run[1] as number, 1 << 20); i++) out.push({ path, page: (run[0] as number) + i });
      }
    }
    return out;
  } catch {
    return [];
  }
}

/** A table or index file of at most this many pages (1 MiB) that the hint names at all is prefetched whole. */
const SMALL_FILE_PAGES = 128;
/** Most pages a hint grows to that way (16 MiB). */
const MAX_EXPANDED_PAGES = 2048;
/**
 * A user table's or index's file: base/<database>/<relfilenode>[.<segment>] with a relfilenode of
 * FirstNormalObjectId (16384) or more. Catalogs are below it: their hinted pages are the ones a start needs.
 */
const USER_RELATION = /^base\/\d+\/(\d+)$/;

/**
 * The hint's pages, and every page of the small user tables and indexes it names: the first queries after a wake
 * read other pages of them than the last run's did (point lookups at other keys), and 1 MiB comes in the same
 * bulk read for a few ms, against a round trip per page later.
 */
export function wholeSmallFiles(hint: PageRef[], pagesOf: (path: string) => number): PageRef[] {
  const out = [...hint];
  const seen = new Set(hint.map((r) => `${r.path}\0${r.page}`));
  for (const path of new Set(hint.map((r) => r.path))) {
    const n = pagesOf(path);
    if (n > SMALL_FILE_PAGES || Number(USER_RELATION.exec(path)?.[1] ?? 0) < 16384) continue;
    for (let page = 0; page < n && out.length < MAX_EXPANDED_PAGES; page++) {
      if (seen.has(`${path}\0${page}`)) continue;
      seen.add(`${path}\0${page}`);
      out.push({ path, page });
    }
  }
  return out;
}

/** WAL pages are not worth a hint (the checkpoint moves; bootstrap finds it through pg_control), nor is the hint. */
function inHint(r: PageRef): boolean {
  return r.path !== HINT_PATH && !r.path.startsWith('pg_wal/');
}

/** Would these pages make the same hint? (order-insensitive) */
export function sameRefs(a: PageRef[], b: PageRef[]): boolean {
  const key = (r: PageRef): string => `${r.path}\0${r.page}`;
  const sa = new Set(a.filter(inHint).map(key));
  const sb = new Set(b.filter(inHint).map(key));
  if (sa.size !== sb.size) return false;
  for (const k of sa) if (!sb.has(k)) return false;
  return true;
}

/**
 * The WAL pages holding the last checkpoint record and its redo point, from page 0 of global/pg_control.
 * ControlFileData: checkPoint (u64) at byte 32; checkPointCopy.redo (u64) at 40, .ThisTimeLineID (u32) at 48.
 * The segment size is taken from the WAL segments in the listing.
 */
export function checkpointWalRefs(control: Uint8Array, files: FileEntry[]): PageRef[] {
  if (control.length < 56) return [];
  const view = new DataView(control.buffer, control.byteOffset, control.byteLength);
  const checkPoint = Number(view.getBigUint64(32, true));
  const redo = Number(view.getBigUint64(40, true));
  const tli = view.getUint32(48, true);
  const segment = files.find((f) => f.type === 'file' && /^pg_wal\/[0-9A-F]{24}$/.test(f.path));
  if (!segment || segment.size <= 0 || tli === 0) return [];
  const segSize = segment.size;
  const segsPerXlogId = Math.floor(0x100000000 / segSize);
  const hex = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');
  const refs: PageRef[] = [];
  for (const lsn of new Set([redo, checkPoint])) {
    const segNo = Math.floor(lsn / segSize);
    const name = `pg_wal/${hex(tli)}${hex(Math.floor(segNo / segsPerXlogId))}${hex(segNo % segsPerXlogId)}`;
    const page = Math.floor((lsn % segSize) / PAGE_SIZE);
    const size = files.find((f) => f.path === name)?.size ?? 0;
    for (const p of [page, page + 1]) if (p * PAGE_SIZE < size) refs.push({ path: name, page: p });
  }
  return refs;
}

export interface Bootstrap {
  lsn: number;
  files: FileEntry[];
  refs: PageRef[];
  /** refs.length pages, concatenated. */
  data: Uint8Array;
  /** The pages the hint named and the rest of the small tables and indexes among them (see wholeSmallFiles). */
  hint: PageRef[];
  roundTrips: number;
}

export class NoDataDirectoryError extends Error {
  constructor(timelineId: string, lsn: number) {
    super(`timeline ${timelineId} holds no Postgres data directory at LSN ${lsn} (no PG_VERSION): create it as a branch of a template timeline`);
    this.name = 'NoDataDirectoryError';
  }
}

/** Fetches the listing and the prefetch set of a timeline at `lsn` (default: head). */
export async function bootstrap(
  client: StorageClient,
  timelineId: string,
  lsn?: number,
  opts: { maxPagesPerRequest?: number; prefetch?: boolean } = {},
): Promise<Bootstrap> {
  const listing = await client.listFiles(timelineId, lsn);
  const files = listing.files;
  const at = listing.lsn;
  const sizes = new Map<string, number>();
  for (const f of files) if (f.type === 'file') sizes.set(f.path, f.size);
  if (!sizes.has('PG_VERSION')) throw new NoDataDirectoryError(timelineId, at);
  const pagesOf = (path: string): number => Math.ceil((sizes.get(path) ?? 0) / PAGE_SIZE);
  const exists = (r: PageRef): boolean => r.page >= 0 && r.page < pagesOf(r.path);
  let roundTrips = 1;
  const refs: PageRef[] = [];
  const chunks: Uint8Array[] = [];
  const fetched = new Set<string>();
  const max = opts.maxPagesPerRequest ?? 2048;
  const fetch = async (want: PageRef[]): Promise<Uint8Array[]> => {
    const todo = want.filter((r) => exists(r) && !fetched.has(`${r.path}\0${r.page}`));
    for (const r of todo) fetched.add(`${r.path}\0${r.page}`);
    if (todo.length === 0) return [];
    roundTrips++;
    const parts: Promise<Uint8Array[]>[] = [];
    for (let i = 0; i < todo.length; i += max) {
      const part = todo.slice(i, i + max);
      parts.push(readCheckedPages(part, (r) => client.readPages(timelineId, r, at), (bad, healed) => warnBadPages(timelineId, at, bad, healed)));
    }
    const pages = (await Promise.all(parts)).flat();
    refs.push(...todo);
    chunks.push(...pages);
    return pages;
  };
  if (opts.prefetch === false) return { lsn: at, files, refs, data: new Uint8Array(0), hint: [], roundTrips };

  const first: PageRef[] = [];
  for (const f of files) {
    if (f.type !== 'file') continue;
    if (ALWAYS.test(f.path) || f.path === HINT_PATH) for (let p = 0; p < pagesOf(f.path); p++) first.push({ path: f.path, page: p });
  }
  await fetch(first);
  const pageData = (path: string): Uint8Array => {
    const parts: Uint8Array[] = [];
    for (let i = 0; i < refs.length; i++) if (refs[i].path === path) parts[refs[i].page] = chunks[i];
    const out = new Uint8Array(parts.length * PAGE_SIZE);
    for (let i = 0; i < parts.length; i++) out.set(parts[i], i * PAGE_SIZE);
    return out.subarray(0, sizes.get(path) ?? 0);
  };
  const hint = sizes.has(HINT_PATH) ? wholeSmallFiles(decodeHint(pageData(HINT_PATH)).filter(inHint), pagesOf) : [];
  const control = pageData('global/pg_control');
  const wal = checkpointWalRefs(control, files);
  await fetch([...wal, ...hint]);

  const data = new Uint8Array(refs.length * PAGE_SIZE);
  for (let i = 0; i < chunks.length; i++) data.set(chunks[i].subarray(0, PAGE_SIZE), i * PAGE_SIZE);
  return { lsn: at, files, refs, data, hint, roundTrips };
}
