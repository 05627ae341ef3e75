// Rows of a source as the JSON that `json_populate_recordset(NULL::target, <literal>)` turns into the target's rows:
// one object per row keyed by column name, each value in the text form Postgres' input function for the column's
// type reads back exactly (int8 and numeric as their digits, never through a float; timestamps to the microsecond;
// bytea as \x hex), arrays as JSON arrays, jsonb as the JSON itself. Cut into chunks of about `maxBytes`, one
// INSERT each.
import type { LoadColumn } from './columns.ts';
import { loadError } from './errors.ts';
import type { SourceRow } from './parquet-file.ts';

const DAY_MS = 86_400_000;

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** `YYYY-MM-DD` (or `YYYY-MM-DD BC`) of a UTC Date. */
function datePart(d: Date): string {
  const y = d.getUTCFullYear();
  const text = `${pad(y <= 0 ? 1 - y : y, 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  return y <= 0 ? `${text} BC` : text;
}

function dateText(days: unknown): string {
  const d = new Date(Number(days) * DAY_MS);
  if (Number.isNaN(d.getTime())) throw loadError(422, 'SOURCE_NOT_LOADABLE', `date ${String(days)} (days since 1970-01-01) is out of range`);
  return datePart(d);
}

/** `YYYY-MM-DD HH:MM:SS.ffffff` of microseconds since the epoch (UTC). */
function timestampText(value: unknown): string {
  const us = BigInt(value as bigint | number);
  const ms = us / 1000n - (us % 1000n < 0n ? 1n : 0n);
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) throw loadError(422, 'SOURCE_NOT_LOADABLE', `timestamp ${us} (microseconds since 1970) is out of range`);
  const micros = Number(((us % 1_000_000n) + 1_000_000n) % 1_000_000n);
  const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(micros, 6)}`;
  const date = datePart(d);
  return date.endsWith(' BC') ? `${date.slice(0, -3)} ${time} BC` : `${date} ${time}`;
}

function timeText(value: unknown, unit: LoadColumn['unit']): string {
  const n = BigInt(value as bigint | number);
  const us = unit === 'ms' ? n * 1000n : unit === 'ns' ? n / 1000n : n;
  const s = us / 1_000_000n;
  return `${pad(Number(s / 3600n))}:${pad(Number((s / 60n) % 60n))}:${pad(Number(s % 60n))}.${pad(Number(us % 1_000_000n), 6)}`;
}

/** The exact decimal of an unscaled integer (number, bigint or big-endian two's complement bytes) at a scale. */
export function decimalText(value: unknown, scale: number): string {
  if (typeof value === 'string') return value; // already a decimal (the Iceberg reader gives these)
  let unscaled: bigint;
  if (value instanceof Uint8Array) {
    unscaled = 0n;
    for (const b of value) unscaled = (unscaled << 8n) | BigInt(b);
    if (value.length > 0 && value[0] & 0x80) unscaled -= 1n << BigInt(value.length * 8);
  } else {
    unscaled = BigInt(value as bigint | number);
  }
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return negative ? `-${text}` : text;
}

const hex = (b: Uint8Array): string => `\\x${Buffer.from(b).toString('hex')}`;

function floatJson(n: number): string {
  if (Number.isFinite(n)) return JSON.stringify(n);
  return Number.isNaN(n) ? '"NaN"' : n > 0 ? '"Infinity"' : '"-Infinity"';
}

/** Any JS value (a struct, a map, a list of lists) as JSON for a jsonb column. */
function anyJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : 'null';
  if (value instanceof Uint8Array) return JSON.stringify(hex(value));
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(anyJson).join(',')}]`;
  if (typeof value === 'object') {
    if (value instanceof Map) return anyJson(Object.fromEntries(value));
    const text = (value as { jsonText?: unknown }).jsonText;
    if (typeof text === 'string') return checkedJson(text);
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${anyJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function checkedJson(text: string): string {
  try {
    JSON.parse(text);
  } catch {
    throw loadError(422, 'SOURCE_NOT_LOADABLE', `a JSON column holds ${JSON.stringify(text.slice(0, 40))}, which is not JSON`);
  }
  return text;
}

/** One scalar of a column as JSON. */
function scalarJson(c: LoadColumn, v: unknown): string {
  switch (c.kind) {
    case 'int':
    case 'bigint': return BigInt(v as bigint | number).toString();
    case 'float': return floatJson(Number(v));
    case 'bool': return v ? 'true' : 'false';
    case 'text': return JSON.stringify(v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : String(v));
    case 'bytes': return JSON.stringify(v instanceof Uint8Array ? hex(v) : hex(Buffer.from(String(v), 'utf8')));
    case 'date': return JSON.stringify(dateText(v));
    case 'timestamp': return JSON.stringify(timestampText(v));
    case 'timestamptz': return JSON.stringify(`${timestampText(v)}+00`);
    case 'time': return JSON.stringify(timeText(v, c.unit));
    case 'decimal': return JSON.stringify(decimalText(v, c.scale ?? 0));
    case 'uuid': return JSON.stringify(String(v));
    case 'json': return anyJson(v);
  }
}

/** A column's value as JSON (null for a missing one). */
export function valueJson(c: LoadColumn, v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (!c.list) return scalarJson(c, v);
  if (!Array.isArray(v)) throw loadError(422, 'SOURCE_NOT_LOADABLE', `column ${JSON.stringify(c.name)} should hold a list, got ${typeof v}`);
  return `[${v.map((e) => (e === null || e === undefined ? 'null' : scalarJson(c, e))).join(',')}]`;
}

/** Rows as JSON arrays of objects, each array at most about `maxBytes` long (a row is never split). */
export function jsonChunks(columns: LoadColumn[], rows: Iterable<SourceRow>, maxBytes: number): string[] {
  const keys = columns.map((c) => `${JSON.stringify(c.name)}:`);
  const chunks: string[] = [];
  let parts: string[] = [];
  let bytes = 0;
  for (const row of rows) {
    const text = `{${columns.map((c, i) => keys[i] + valueJson(c, row[c.name])).join(',')}}`;
    const size = Buffer.byteLength(text) + 1;
    if (parts.length > 0 && bytes + size > maxBytes) {
      chunks.push(`[${parts.join(',')}]`);
      parts = [];
      bytes = 0;
    }
    parts.push(text);
    bytes += size;
  }
  if (parts.length > 0) chunks.push(`[${parts.join(',')}]`);
  return chunks;
}
