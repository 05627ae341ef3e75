// A page that came back from the storage node is checked before Postgres sees it, as Postgres itself checks a page
// it reads from disk (PageIsVerified): a relation page is all zeros, or has a sane header (pd_lower <= pd_upper <=
// pd_special <= 8192, pd_special aligned, no unknown flag bits). A page that fails is read again once and logged:
// a rare CI run saw "invalid page in block N of pg_proc" on a freshly made timeline that never reproduced, and a
// page read again cleanly means the first answer was damaged on its way, which this turns into a logged, healed
// event instead of a failed start; a page that fails twice is handed on, and Postgres refuses it as before.
import type { PageRef } from '../../storage-node/api/types.ts';

/** Relation files (heap, index, FSM, VM, init fork, segments): the ones whose pages carry Postgres' page header. */
const RELATION = /^(?:base\/\d+|global|pg_tblspc\/\d+\/[^/]+\/\d+)\/\d+(?:_(?:fsm|vm|init))?(?:\.\d+)?$/;
const PD_VALID_FLAG_BITS = 0x0007;
const PAGE_SIZE = 8192;

export function pageLooksValid(ref: PageRef, page: Uint8Array): boolean {
  if (!RELATION.test(ref.path)) return true;
  if (page.length !== PAGE_SIZE) return false;
  const v = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const flags = v.getUint16(10, true);
  const lower = v.getUint16(12, true);
  const upper = v.getUint16(14, true);
  const special = v.getUint16(16, true);
  if ((flags & ~PD_VALID_FLAG_BITS) === 0 && lower <= upper && upper <= special && special <= PAGE_SIZE && special % 8 === 0 && lower >= 24) return true;
  return page.every((b) => b === 0);
}

/**
 * `read`'s pages, with those that fail the check read once more; `warn` hears of every page that failed (and
 * whether the second read was sound).
 */
export async function readCheckedPages(
  refs: PageRef[],
  read: (refs: PageRef[]) => Promise<Uint8Array[]>,
  warn: (bad: PageRef[], healed: boolean) => void,
): Promise<Uint8Array[]> {
  const pages = await read(refs);
  const bad = refs.map((r, i) => (pageLooksValid(r, pages[i]) ? -1 : i)).filter((i) => i >= 0);
  if (bad.length === 0) return pages;
  const again = await read(bad.map((i) => refs[i]));
  let healed = true;
  bad.forEach((i, k) => {
    if (!pageLooksValid(refs[i], again[k])) healed = false;
    pages[i] = again[k];
  });
  warn(bad.map((i) => refs[i]), healed);
  return pages;
}

/** A page that failed the check, said on stderr (where every service's log goes), with whether it healed. */
export function warnBadPages(timelineId: string, lsn: number, bad: PageRef[], healed: boolean): void {
  const pages = bad.slice(0, 8).map((r) => `${r.path}#${r.page}`).join(', ');
  process.stderr.write(`lakebase compute: ${bad.length} page(s) of timeline ${timelineId} at LSN ${lsn} failed the page header check (${pages}); read again: ${healed ? 'sound' : 'still invalid'}\n`);
}
