// Input validation with valibot schemas: each field's schema carries the text a client sees ("must be ..."), the
// field's path is put in front ("lines[0].quantity must be ..."), and one 400 lists every problem found (no
// early abort). Imported as `valibot` directly so the example app stays self-contained.
import type { Context } from 'hono';
import * as v from 'valibot';
import { ApiError } from './errors.ts';

export interface NewProduct {
  sku: string;
  name: string;
  priceCents: number;
  stock: number;
}

export interface OrderLineInput {
  sku: string;
  quantity: number;
}

export interface NewOrder {
  customer: string;
  note: string;
  lines: OrderLineInput[];
}

export interface OrderPatch {
  customer?: string;
  note?: string;
}

const SKU = /^[A-Z0-9][A-Z0-9-]{0,31}$/;
const MAX_LINES = 50;

/** Reads a JSON object body; 400 for a wrong content type or malformed JSON. */
export async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  if (!/^application\/json\b/i.test(c.req.header('Content-Type') ?? '')) {
    throw new ApiError(400, 'invalid_request', 'expected a JSON body (Content-Type: application/json)');
  }
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new ApiError(400, 'invalid_request', 'the body is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError(400, 'invalid_request', 'the body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

// ---- field schemas (messages without the field name: the path is put in front) ----

const SKU_MESSAGE = 'must be 1-32 upper-case letters, digits or dashes (e.g. "TEA-GREEN")';
const sku = v.pipe(v.string(SKU_MESSAGE), v.regex(SKU, SKU_MESSAGE));

function wholeNumber(min: number, max: number) {
  const message = `must be a whole number from ${min} to ${max}`;
  return v.pipe(v.number(message), v.check((n) => Number.isInteger(n) && n >= min && n <= max, message));
}

/** A string, trimmed, of `min` to `max` characters. */
function text(min: number, max: number) {
  return v.pipe(v.string('must be a string'), v.trim(), v.check((t) => t.length >= min && t.length <= max, `must be ${min} to ${max} characters`));
}

/** An object of `entries`; a missing field is reported as its own schema reports `undefined`. */
function fields<E extends v.ObjectEntries>(entries: E) {
  return v.object(entries, (issue) => {
    const key = issue.path?.[0]?.key;
    if (typeof key !== 'string' || !(key in entries)) return 'must be a JSON object';
    return v.safeParse(entries[key], undefined).issues?.[0]?.message ?? 'is missing';
  });
}

const lineItem = v.pipe(
  v.unknown(),
  v.transform((x) => (typeof x === 'object' && x !== null ? x : {})), // a non-object line: both its fields are wrong
  fields({ sku, quantity: wholeNumber(1, 10_000) }),
);

const LINES_MESSAGE = `must be an array of 1 to ${MAX_LINES} items`;
const lines = v.pipe(
  v.array(v.unknown(), LINES_MESSAGE),
  v.check((a) => a.length >= 1 && a.length <= MAX_LINES, LINES_MESSAGE),
  v.array(lineItem),
  // Runs even when some lines are wrong: a well-formed SKU named twice is a problem of its own.
  v.rawCheck(({ dataset, addIssue }) => {
    const items = dataset.value as unknown[];
    if (!Array.isArray(items)) return;
    const seen = new Set<string>();
    items.forEach((item, i) => {
      const value = (item as { sku?: unknown }).sku;
      if (typeof value !== 'string' || !SKU.test(value)) return;
      if (seen.has(value)) {
        const at = { type: 'array', origin: 'value', input: items, key: i, value: item } as const;
        const field = { type: 'object', origin: 'value', input: item as Record<string, unknown>, key: 'sku', value } as const;
        addIssue({ message: `${value} appears twice`, path: [at, field] });
      }
      seen.add(value);
    });
  }),
);

// ---- bodies ----

const productFields = { sku, name: text(1, 200), priceCents: wholeNumber(0, 100_000_000), stock: wholeNumber(0, 1_000_000) };
const orderFields = { customer: text(1, 200), note: v.optional(text(0, 2000), ''), lines };
const linesFields = { lines };
const patchFields = { customer: v.optional(text(1, 200)), note: v.optional(text(0, 2000)) };
const patchSchema = v.pipe(
  fields(patchFields),
  v.rawCheck(({ dataset, addIssue }) => {
    const body = dataset.value as { customer?: unknown; note?: unknown };
    if (body.customer === undefined && body.note === undefined) addIssue({ message: 'give customer, note or both' });
  }),
);

/** `lines[0].sku` for an issue's path. */
function pathOf(issue: v.BaseIssue<unknown>): string {
  let out = '';
  for (const item of issue.path ?? []) out += typeof item.key === 'number' ? `[${item.key}]` : `${out ? '.' : ''}${String(item.key)}`;
  return out;
}

/** Which array item an issue is about (-1: none); a duplicate found after all items goes back to its item. */
function itemIndex(issue: v.BaseIssue<unknown>): number {
  const key = issue.path?.find((p) => p.type === 'array')?.key;
  return typeof key === 'number' ? key : -1;
}

/** `body` checked against `schema` with only `allowed` keys: its output, or a 400 listing every problem. */
function check<S extends v.GenericSchema>(schema: S, body: Record<string, unknown>, allowed: object): v.InferOutput<S> {
  const problems = Object.keys(body).filter((k) => !(k in allowed)).map((k) => `unknown field ${k}`);
  const r = v.safeParse(schema, body);
  const issues = [...(r.issues ?? [])].sort((a, b) => itemIndex(a) - itemIndex(b));
  for (const issue of issues) problems.push(issue.path ? `${pathOf(issue)} ${issue.message}` : issue.message);
  if (problems.length > 0 || !r.success) throw new ApiError(400, 'invalid_request', 'invalid request', problems);
  return r.output;
}

export function parseNewProduct(body: Record<string, unknown>): NewProduct {
  const o = check(fields(productFields), body, productFields);
  return { sku: o.sku, name: o.name, priceCents: o.priceCents, stock: o.stock };
}

export function parseNewOrder(body: Record<string, unknown>): NewOrder {
  const o = check(fields(orderFields), body, orderFields);
  return { customer: o.customer, note: o.note, lines: o.lines };
}

export function parseLinesBody(body: Record<string, unknown>): OrderLineInput[] {
  return check(fields(linesFields), body, linesFields).lines;
}

export function parseOrderPatch(body: Record<string, unknown>): OrderPatch {
  const o = check(patchSchema, body, patchFields);
  return { customer: o.customer, note: o.note };
}

// ---- path and query parameters ----

const idSchema = v.pipe(v.string(), v.regex(/^[1-9]\d{0,9}$/), v.transform(Number), v.maxValue(2_147_483_647));

/** A positive integer id from the path; 404 (not 400) otherwise, as no such order can exist. */
export function parseId(raw: string): number {
  const r = v.safeParse(idSchema, raw);
  if (!r.success) throw new ApiError(404, 'not_found', 'order not found');
  return r.output;
}

const LIMIT_MESSAGE = 'limit must be a whole number from 1 to 100';
const limitSchema = v.optional(v.pipe(v.string(), v.regex(/^\d+$/, LIMIT_MESSAGE), v.transform(Number), v.minValue(1, LIMIT_MESSAGE), v.maxValue(100, LIMIT_MESSAGE)), '20');

export function parseLimit(raw: string | undefined): number {
  const r = v.safeParse(limitSchema, raw, { abortEarly: true });
  if (!r.success) throw new ApiError(400, 'invalid_request', LIMIT_MESSAGE);
  return Number(r.output);
}

const SEARCH_MESSAGE = 'q must be 1 to 200 characters';
const searchSchema = v.pipe(v.optional(v.string(), ''), v.trim(), v.check((q) => q.length >= 1 && q.length <= 200, SEARCH_MESSAGE));

export function parseSearch(raw: string | undefined): string {
  const r = v.safeParse(searchSchema, raw);
  if (!r.success) throw new ApiError(400, 'invalid_request', SEARCH_MESSAGE);
  return r.output;
}
