// The storage node API's request schemas (valibot, checked through lib/validate.ts): bodies, query strings and the
// timeline id in the path, each with the message and error code the API has always answered with. The request
// types the client sends are derived from them (api/types.ts).
import { badRequest } from '../../lib/errors.ts';
import { issuePath, v } from '../../lib/validate.ts';
import type { Failure } from '../../lib/validate.ts';
import { normaliseDataPath } from './paths.ts';

export const TIMELINE_ID_RE = /^[0-9a-f]{32}$/;

/** A Failure whose 400 code depends on the field at fault (the first key of the issue's path). */
function codedByField(codes: Record<string, string>, fallback = 'invalid_request'): Failure {
  return (message, issue) => {
    const key = issue?.path?.[0] && (issue.path[0] as { key?: unknown }).key;
    return badRequest(typeof key === 'string' && codes[key] ? codes[key] : fallback, message);
  };
}

// ---- the timeline id in the path ----

export const timelineIdParam = v.object({
  id: v.pipe(
    v.string(),
    v.regex(TIMELINE_ID_RE, (issue) => `timeline id must be 32 lowercase hex characters, got ${JSON.stringify(issue.input)}`),
  ),
});
export const timelineIdFailure = codedByField({}, 'invalid_timeline_id');

// ---- POST /v1/timelines ----

const CREATE_FIELDS = ['timelineId', 'ancestorTimelineId', 'ancestorLsn', 'ancestorTimestamp', 'ancestorWalLsn'];
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const firstUnknownField = (b: Record<string, unknown>): string | undefined => Object.keys(b).find((k) => !CREATE_FIELDS.includes(k));

const ANCESTOR_ID_MSG = 'ancestorTimelineId must be 32 lowercase hex characters';
const ANCESTOR_LSN_MSG = 'ancestorLsn must be a non-negative integer';
const ANCESTOR_WAL_MSG = 'ancestorWalLsn must be a non-negative integer';

export const createTimelineBody = v.pipe(
  v.custom<Record<string, unknown>>(isObject, 'request body must be a JSON object'),
  v.check((b) => firstUnknownField(b) === undefined, (issue) => `unknown field ${JSON.stringify(firstUnknownField(issue.input))}`),
  v.object({
    timelineId: v.optional(v.string('timelineId must be a string')),
    ancestorTimelineId: v.optional(v.pipe(v.string(ANCESTOR_ID_MSG), v.regex(TIMELINE_ID_RE, ANCESTOR_ID_MSG))),
    /** Branch at this LSN of the ancestor (default: its head). */
    ancestorLsn: v.optional(v.pipe(v.number(ANCESTOR_LSN_MSG), v.safeInteger(ANCESTOR_LSN_MSG), v.minValue(0, ANCESTOR_LSN_MSG))),
    /** Branch at the ancestor's state as of this time (ISO 8601); exclusive with ancestorLsn. */
    ancestorTimestamp: v.optional(v.string('ancestorTimestamp must be an ISO 8601 string')),
    /** Branch where the ancestor's Postgres WAL reached this position (pg_current_wal_lsn() as a number). */
    ancestorWalLsn: v.optional(v.pipe(v.number(ANCESTOR_WAL_MSG), v.safeInteger(ANCESTOR_WAL_MSG), v.minValue(0, ANCESTOR_WAL_MSG))),
  }),
);
export const createTimelineFailure = codedByField({
  ancestorTimelineId: 'invalid_timeline_id',
  ancestorLsn: 'invalid_lsn',
  ancestorTimestamp: 'invalid_timestamp',
  ancestorWalLsn: 'invalid_lsn',
});

// ---- POST /v1/timelines/:id/writer and /release ----

/** `{}` (or no body): the request asks nothing more; a field is refused rather than silently ignored. */
const emptyObjectBody = v.pipe(
  v.custom<Record<string, unknown>>(isObject, 'request body must be a JSON object'),
  v.check((b) => Object.keys(b).length === 0, (issue) => `unknown field ${JSON.stringify(Object.keys(issue.input)[0])}`),
);
export const acquireWriterBody = emptyObjectBody;
export const releaseTimelineBody = emptyObjectBody;

// ---- POST /v1/timelines/:id/pages ----

const PAGES_MSG = 'body must be {"pages": [{"path": ..., "page": ...}, ...]}';
const isPageNumber = (p: unknown): p is number => typeof p === 'number' && Number.isSafeInteger(p) && p >= 0;

/** One page to read: the page number is checked before the path, as it always was. */
const pageRef = v.pipe(
  v.custom<{ path?: unknown; page: number }>((r) => r !== null && r !== undefined && isPageNumber((r as { page?: unknown }).page), 'page must be a non-negative integer'),
  v.transform((r) => ({ path: normaliseDataPath(r.path), page: r.page })),
);

/** `{"pages": [...]}` of at most `max` refs: the count is checked before any ref. */
export function pageRefsBody(max: number) {
  return v.looseObject(
    {
      pages: v.pipe(
        v.array(v.unknown(), PAGES_MSG),
        v.maxLength(max, (issue) => `at most ${max} pages per request, got ${(issue.input as unknown[]).length}`),
        v.array(pageRef),
      ),
    },
    PAGES_MSG,
  );
}

/** `pages[3].page must be ...` names the ref at fault; a wrong count is `too_many_pages`. */
export const pageRefsFailure: Failure = (message, issue) => {
  if (issue?.type === 'max_length') return badRequest('too_many_pages', message);
  const at = issue ? issuePath(issue) : '';
  if (/^pages\[\d+\]$/.test(at)) return badRequest('invalid_page', `${at}.page must be a non-negative integer`);
  return badRequest('invalid_request', message);
};

// ---- query strings ----

/** A query parameter's first value (Hono gives an array for a repeated one). */
const firstValue = v.pipe(
  v.union([v.string(), v.array(v.string())]),
  v.transform((x) => (Array.isArray(x) ? x[0] : x)),
);

const lsnText = v.pipe(
  v.string(),
  v.regex(/^\d+$/, (issue) => `lsn must be a non-negative integer, got ${JSON.stringify(issue.input)}`),
  v.check((s) => Number.isSafeInteger(Number(s)), (issue) => `lsn ${issue.input} is out of range`),
  v.transform(Number),
);

/** `lsn`: absent or empty means "at head" (the default '' makes valibot check an absent key too). */
const optionalLsn = v.pipe(
  v.optional(firstValue, ''),
  v.transform((s) => (s === '' ? undefined : s)),
  v.optional(lsnText),
);

export const lsnQuery = v.object({ lsn: optionalLsn });

/** GET /page: the path (normalised), the page number, the LSN; checked in that order. */
export const pageQuery = v.object({
  path: v.pipe(v.optional(firstValue, ''), v.transform((p) => normaliseDataPath(p))),
  page: v.pipe(
    v.optional(firstValue, ''),
    v.regex(/^\d+$/, 'page must be a non-negative integer'),
    v.transform(Number),
  ),
  lsn: optionalLsn,
});

/** GET /lsn: the LSN as of a time (`timestamp`, ISO 8601) or at a Postgres WAL position (`walLsn`, an integer). */
export const lsnAtQuery = v.pipe(
  v.object({
    timestamp: v.pipe(v.optional(firstValue, ''), v.transform((s) => (s === '' ? undefined : s))),
    walLsn: v.pipe(v.optional(firstValue, ''), v.transform((s) => (s === '' ? undefined : s)), v.optional(v.pipe(
      v.string(), v.regex(/^\d+$/, 'walLsn must be a non-negative integer'), v.transform(Number), v.safeInteger('walLsn is out of range'),
    ))),
  }),
  v.check((q) => (q.timestamp === undefined) !== (q.walLsn === undefined), 'give one of the query parameters timestamp (ISO 8601) or walLsn'),
);

export const timeQuery = v.object({
  lsn: v.pipe(
    optionalLsn,
    v.number('lsn query parameter is required'), // only undefined is left to refuse
  ),
});

export const queryFailure = codedByField({ page: 'invalid_page', lsn: 'invalid_lsn', timestamp: 'invalid_timestamp', walLsn: 'invalid_lsn' });

export type CreateTimelineBody = v.InferOutput<typeof createTimelineBody>;
export type PageRefsBody = v.InferOutput<ReturnType<typeof pageRefsBody>>;
