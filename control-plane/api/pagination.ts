// Neon's cursor pagination for lists (branches, projects): a page of `limit` records after an opaque cursor that
// names the last record shown by its sort key and id. A cursor is not a position: records created or deleted
// between two pages never make the walk skip or repeat one.
import { badRequest } from '../errors.ts';

export type SortOrder = 'asc' | 'desc';

export interface PageRequest<K extends string> {
  cursor?: string;
  limit?: number;
  sortBy: K;
  sortOrder: SortOrder;
}

export interface Page<T> {
  items: T[];
  /** The cursor of the next page, when there may be one. */
  next?: string;
}

interface CursorBody {
  k: string;
  id: string;
}

function encode(c: CursorBody): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

/** The cursor of the page after a record with sort key `k`. */
export const cursorAfter = (k: string, id: string): string => encode({ k, id });

function decode(s: string): CursorBody {
  try {
    const c = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as Partial<CursorBody>;
    if (typeof c.k === 'string' && typeof c.id === 'string') return { k: c.k, id: c.id };
  } catch {
    // reported below
  }
  throw badRequest('cursor is not one this API gave out: pass `pagination.next` of the previous page as it is');
}

/** `all` sorted by `key` then id in `order`, the page after `cursor`. */
export function paginate<T extends { id: string }, K extends string>(all: T[], req: PageRequest<K>, key: (x: T) => string): Page<T> {
  const sign = req.sortOrder === 'asc' ? 1 : -1;
  const cmp = (ak: string, aid: string, bk: string, bid: string) => sign * (ak.localeCompare(bk) || (aid < bid ? -1 : aid > bid ? 1 : 0));
  const sorted = [...all].sort((a, b) => cmp(key(a), a.id, key(b), b.id));
  const after = req.cursor === undefined ? undefined : decode(req.cursor);
  const rest = after ? sorted.filter((x) => cmp(key(x), x.id, after.k, after.id) > 0) : sorted;
  if (req.limit === undefined || rest.length <= req.limit) return { items: rest };
  const items = rest.slice(0, req.limit);
  const last = items[items.length - 1];
  return { items, next: encode({ k: key(last), id: last.id }) };
}
