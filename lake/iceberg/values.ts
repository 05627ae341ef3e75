// Row values between their JS form (types.ts `Row`) and the form Parquet stores: checked on the way in, so a wrong
// value fails with the field's name instead of deep inside the Parquet encoder, and rebuilt exactly on the way
// out (decimals as exact strings, timestamps as microsecond bigints).
import { IcebergError } from './errors.ts';
import { decimalType, isList, type DecimalType } from './schema.ts';
import type { IcebergType } from './types.ts';

const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DECIMAL_TEXT = /^([+-])?(\d*)(?:\.(\d*))?$/;

const bad = (where: string, expected: string, value: unknown) =>
  new IcebergError('invalid_row', `${where}: expected ${expected}, got ${describe(value)}`);

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Uint8Array) return `Uint8Array(${value.length})`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  return typeof value === 'object' ? (Array.isArray(value) ? 'an array' : String(value)) : `${typeof value} ${String(value)}`;
}

function toInt64(value: unknown, where: string, what: string): bigint {
  const v = typeof value === 'number' && Number.isSafeInteger(value) ? BigInt(value) : value;
  if (typeof v !== 'bigint' || v < INT64_MIN || v > INT64_MAX) throw bad(where, `${what} (a 64-bit bigint)`, value);
  return v;
}

/** The unscaled integer of a decimal string at the type's scale; refuses rounding and values over the precision. */
export function parseDecimal(text: unknown, type: DecimalType, where: string): bigint {
  const expected = `a decimal string with at most ${type.scale} fraction digits, e.g. '-12.50'`;
  const m = typeof text === 'string' ? DECIMAL_TEXT.exec(text.trim()) : null;
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) throw bad(where, expected, text);
  const [, sign, whole, frac = ''] = m;
  if (frac.length > type.scale && /[^0]/.test(frac.slice(type.scale))) throw bad(where, expected, text);
  const digits = (whole || '0') + frac.slice(0, type.scale).padEnd(type.scale, '0');
  const unscaled = BigInt(digits) * (sign === '-' ? -1n : 1n);
  const limit = 10n ** BigInt(type.precision);
  if (unscaled >= limit || unscaled <= -limit) throw bad(where, `a value that fits decimal(${type.precision}, ${type.scale})`, text);
  return unscaled;
}

/** The exact decimal string of an unscaled integer at a scale: (-1250n, 2) -> '-12.50'. */
export function formatDecimal(unscaled: bigint, scale: number): string {
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return negative ? `-${text}` : text;
}

export function uuidToBytes(text: string): Uint8Array {
  const hex = text.replace(/-/g, '');
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** A two's-complement big-endian byte array as a signed integer (Parquet fixed-length decimals). */
export function bytesToBigInt(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return bytes.length > 0 && bytes[0] & 0x80 ? v - (1n << BigInt(bytes.length * 8)) : v;
}

/**
 * A JS row value checked against its Iceberg type and brought to the form the Parquet writer takes: long and
 * timestamps as bigint, uuid as 16 bytes, decimal as its unscaled bigint, lists element by element.
 */
export function toStored(type: IcebergType, value: unknown, where: string): unknown {
  if (isList(type)) {
    if (!Array.isArray(value)) throw bad(where, 'an array', value);
    return value.map((v, i) => {
      if (v === null || v === undefined) {
        if (type['element-required']) throw bad(`${where}[${i}]`, 'a value (list elements are required)', v);
        return null;
      }
      return toStored(type.element, v, `${where}[${i}]`);
    });
  }
  const dec = decimalType(type);
  if (dec) return parseDecimal(value, dec, where);
  switch (type) {
    case 'boolean':
      if (typeof value !== 'boolean') throw bad(where, 'a boolean', value);
      return value;
    case 'int':
    case 'date':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < INT32_MIN || value > INT32_MAX) {
        throw bad(where, type === 'date' ? 'days since 1970-01-01 (a 32-bit integer)' : 'a 32-bit integer', value);
      }
      return value;
    case 'long':
      return toInt64(value, where, 'a long');
    case 'timestamp':
    case 'timestamptz':
      return toInt64(value, where, 'microseconds since the epoch');
    case 'float':
    case 'double':
      if (typeof value !== 'number') throw bad(where, 'a number', value);
      return value;
    case 'string':
      if (typeof value !== 'string') throw bad(where, 'a string', value);
      return value;
    case 'uuid':
      if (typeof value !== 'string' || !UUID.test(value)) throw bad(where, "a uuid string 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx'", value);
      return uuidToBytes(value);
    case 'binary':
      if (!(value instanceof Uint8Array)) throw bad(where, 'a Uint8Array', value);
      return value;
    default:
      throw bad(where, 'a value of a supported type', type);
  }
}

/**
 * A value as read from Parquet (by parquet-file.ts, with decimal annotations stripped, dates as days, timestamps
 * as microseconds, uuids as strings) brought back to its JS row form.
 */
export function fromStored(type: IcebergType, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (isList(type)) return Array.isArray(value) ? value.map((v) => fromStored(type.element, v)) : null;
  const dec = decimalType(type);
  if (dec) {
    const unscaled = value instanceof Uint8Array ? bytesToBigInt(value) : BigInt(value as number | bigint);
    return formatDecimal(unscaled, dec.scale);
  }
  if ((type === 'long' || type === 'timestamp' || type === 'timestamptz') && typeof value === 'number') return BigInt(value);
  if (type === 'binary' && typeof value === 'string') return new TextEncoder().encode(value);
  return value;
}

/** A canonical text of a tuple of values, so equality-delete keys can be looked up in a Set. */
export function valueKey(values: unknown[]): string {
  return values
    .map((v) => {
      if (v === null || v === undefined) return 'null';
      if (typeof v === 'bigint') return `${v}n`;
      if (v instanceof Uint8Array) return `x${Buffer.from(v).toString('hex')}`;
      return JSON.stringify(v);
    })
    .join('\u0000');
}
