// Input validation: plain functions that return typed values or throw a 400 listing every problem found.
import type { Context } from 'hono';
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

/** Collects problems so one response lists all of them. */
class Problems {
  readonly list: string[] = [];

  text(value: unknown, field: string, opts: { min?: number; max: number; optional?: boolean }): string | undefined {
    if (value === undefined && opts.optional) return undefined;
    if (typeof value !== 'string') {
      this.list.push(`${field} must be a string`);
      return undefined;
    }
    const t = value.trim();
    if (t.length < (opts.min ?? 1) || t.length > opts.max) {
      this.list.push(`${field} must be ${opts.min ?? 1} to ${opts.max} characters`);
      return undefined;
    }
    return t;
  }

  int(value: unknown, field: string, min: number, max: number): number | undefined {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.list.push(`${field} must be a whole number from ${min} to ${max}`);
      return undefined;
    }
    return value;
  }

  sku(value: unknown, field: string): string | undefined {
    if (typeof value !== 'string' || !SKU.test(value)) {
      this.list.push(`${field} must be 1-32 upper-case letters, digits or dashes (e.g. "TEA-GREEN")`);
      return undefined;
    }
    return value;
  }

  unknownKeys(body: Record<string, unknown>, allowed: string[]): void {
    for (const k of Object.keys(body)) if (!allowed.includes(k)) this.list.push(`unknown field ${k}`);
  }

  /** Throws the 400 if anything was wrong; otherwise every field was checked and `value` is complete. */
  done<T>(value: T): T {
    if (this.list.length > 0) throw new ApiError(400, 'invalid_request', 'invalid request', this.list);
    return value;
  }
}

export function parseNewProduct(body: Record<string, unknown>): NewProduct {
  const p = new Problems();
  p.unknownKeys(body, ['sku', 'name', 'priceCents', 'stock']);
  const sku = p.sku(body.sku, 'sku');
  const name = p.text(body.name, 'name', { max: 200 });
  const priceCents = p.int(body.priceCents, 'priceCents', 0, 100_000_000);
  const stock = p.int(body.stock, 'stock', 0, 1_000_000);
  return p.done({ sku, name, priceCents, stock } as NewProduct);
}

function parseLines(value: unknown, p: Problems): OrderLineInput[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_LINES) {
    p.list.push(`lines must be an array of 1 to ${MAX_LINES} items`);
    return [];
  }
  const seen = new Set<string>();
  return value.map((line: unknown, i) => {
    const l = (typeof line === 'object' && line !== null ? line : {}) as Record<string, unknown>;
    const sku = p.sku(l.sku, `lines[${i}].sku`);
    const quantity = p.int(l.quantity, `lines[${i}].quantity`, 1, 10_000);
    if (sku !== undefined && seen.has(sku)) p.list.push(`lines[${i}].sku ${sku} appears twice`);
    if (sku !== undefined) seen.add(sku);
    return { sku, quantity } as OrderLineInput;
  });
}

export function parseNewOrder(body: Record<string, unknown>): NewOrder {
  const p = new Problems();
  p.unknownKeys(body, ['customer', 'note', 'lines']);
  const customer = p.text(body.customer, 'customer', { max: 200 });
  const note = p.text(body.note, 'note', { min: 0, max: 2000, optional: true }) ?? '';
  const lines = parseLines(body.lines, p);
  return p.done({ customer, note, lines } as NewOrder);
}

export function parseLinesBody(body: Record<string, unknown>): OrderLineInput[] {
  const p = new Problems();
  p.unknownKeys(body, ['lines']);
  return p.done(parseLines(body.lines, p));
}

export function parseOrderPatch(body: Record<string, unknown>): OrderPatch {
  const p = new Problems();
  p.unknownKeys(body, ['customer', 'note']);
  const customer = p.text(body.customer, 'customer', { max: 200, optional: true });
  const note = p.text(body.note, 'note', { min: 0, max: 2000, optional: true });
  if (body.customer === undefined && body.note === undefined) p.list.push('give customer, note or both');
  return p.done({ customer, note });
}

/** A positive integer id from the path; 404 (not 400) otherwise, as no such order can exist. */
export function parseId(raw: string): number {
  if (!/^[1-9]\d{0,9}$/.test(raw) || Number(raw) > 2_147_483_647) throw new ApiError(404, 'not_found', 'order not found');
  return Number(raw);
}

export function parseLimit(raw: string | undefined): number {
  if (raw === undefined) return 20;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 100) {
    throw new ApiError(400, 'invalid_request', 'limit must be a whole number from 1 to 100');
  }
  return Number(raw);
}

export function parseSearch(raw: string | undefined): string {
  const q = raw?.trim() ?? '';
  if (q.length === 0 || q.length > 200) throw new ApiError(400, 'invalid_request', 'q must be 1 to 200 characters');
  return q;
}
