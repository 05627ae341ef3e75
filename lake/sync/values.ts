// A column's value as the capture hands it over (jsonb ->> text: exact numbers, ISO times, `\x..` bytea, JSON text
// for arrays) turned into what the Iceberg writer takes (lake/iceberg/types.ts Row). Nothing goes through a JS number
// that could lose digits: int8 becomes a bigint, numeric a decimal string at the column's scale.
import type { IcebergType, Row } from '../iceberg/types.ts';

export class ValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ValueError';
  }
}

const DAY_MS = 86_400_000;

/** Days since 1970-01-01 of `YYYY-MM-DD`; null for ±infinity (Iceberg has no infinite date). */
function days(s: string): number | null {
  if (s === 'infinity' || s === '-infinity') return null;
  const m = /^(\d{4,})-(\d\d)-(\d\d)$/.exec(s);
  if (!m) throw new ValueError(`"${s}" is not a date Iceberg can hold (BC dates are not supported)`);
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) / DAY_MS;
}

/** Microseconds since the epoch of an ISO timestamp as to_jsonb writes it, with or without a UTC offset. */
function micros(s: string): bigint | null {
  if (s === 'infinity' || s === '-infinity') return null;
  const m = /^(\d{4,})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?:([+-])(\d\d)(?::?(\d\d))?(?::(\d\d))?)?$/.exec(s);
  if (!m) throw new ValueError(`"${s}" is not a timestamp Iceberg can hold`);
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  let us = BigInt(ms) * 1000n + BigInt((m[7] ?? '').padEnd(6, '0') || '0');
  if (m[8]) {
    const offsetSeconds = Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0);
    us -= BigInt((m[8] === '-' ? -1 : 1) * offsetSeconds) * 1_000_000n;
  }
  return us;
}

/** A decimal string at exactly `scale` digits after the point (rounded half away from zero past it). */
export function rescale(s: string, precision: number, scale: number): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(s);
  if (!m) throw new ValueError(`"${s}" is not a number a decimal can hold (NaN and infinity cannot be)`);
  const [, sign, int, frac = ''] = m;
  let digits = BigInt(int + frac.padEnd(scale, '0').slice(0, scale));
  if (frac.length > scale && Number(frac[scale]) >= 5) digits += 1n;
  const text = digits.toString().padStart(scale + 1, '0');
  if (text.length > precision && digits !== 0n) throw new ValueError(`${s} does not fit decimal(${precision}, ${scale})`);
  const whole = scale > 0 ? `${text.slice(0, -scale)}.${text.slice(-scale)}` : text;
  return digits === 0n ? whole : sign + whole;
}

function hexBytes(s: string): Uint8Array {
  if (!s.startsWith('\\x')) throw new ValueError('bytea must come in hex form (bytea_output = hex)');
  return Uint8Array.from(Buffer.from(s.slice(2), 'hex'));
}

/** JSON.parse keeping each number's source text, so an int8 or numeric element keeps every digit. */
function parseExact(text: string): unknown {
  const reviver = (_key: string, value: unknown, context?: { source?: string }): unknown =>
    typeof value === 'number' && context?.source !== undefined ? { exact: context.source } : value;
  return JSON.parse(text, reviver as (this: unknown, key: string, value: unknown) => unknown);
}

function elementText(v: unknown): string | null {
  if (v === null) return null;
  if (typeof v === 'object' && v !== null && 'exact' in v) return String((v as { exact: string }).exact);
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** The Iceberg value of one column from its text form (null stays null). */
export function icebergValue(type: IcebergType, text: string | null): unknown {
  if (text === null) return null;
  if (typeof type === 'object') {
    const arr = parseExact(text);
    if (!Array.isArray(arr)) throw new ValueError(`expected an array, got ${text.slice(0, 40)}`);
    return arr.map((e) => icebergValue(type.element, elementText(e)));
  }
  switch (type) {
    case 'int': return Number(text);
    case 'long': return BigInt(text);
    case 'float':
    case 'double': return Number(text);
    case 'boolean': return text === 'true';
    case 'date': return days(text);
    case 'timestamp':
    case 'timestamptz': return micros(text);
    case 'binary': return hexBytes(text);
    case 'uuid':
    case 'string': return text;
    default: {
      const m = /^decimal\((\d+), (\d+)\)$/.exec(type);
      if (!m) throw new ValueError(`no conversion to ${type}`);
      return rescale(text, Number(m[1]), Number(m[2]));
    }
  }
}

/** A row of the lake from the text values of `columns`, which start at `offset` in `texts`. */
export function rowOf(columns: readonly { name: string; type: IcebergType }[], texts: (string | null)[], offset: number): Row {
  const row: Row = {};
  for (let i = 0; i < columns.length; i++) row[columns[i].name] = icebergValue(columns[i].type, texts[offset + i] ?? null);
  return row;
}
