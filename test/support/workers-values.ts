// Values crossing the workerd <-> Node boundary as JSON with their JavaScript type kept: a Date, a byte array
// and a bigint must arrive as themselves, so that results from inside workerd compare exactly with `pg`'s.
export type EncodedValue =
  | null
  | boolean
  | number
  | string
  | { $date: string }
  | { $bytes: string }
  | { $bigint: string }
  | { $number: string }
  | EncodedValue[]
  | { $object: Record<string, EncodedValue> };

export function encodeValue(v: unknown): EncodedValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number' && !Number.isFinite(v)) return { $number: String(v) };
  if (typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (v instanceof Date) return { $date: Number.isNaN(v.getTime()) ? 'invalid' : v.toISOString() };
  if (v instanceof Uint8Array) return { $bytes: Array.from(v, (b) => b.toString(16).padStart(2, '0')).join('') };
  if (Array.isArray(v)) return v.map(encodeValue);
  if (typeof v === 'object') {
    return { $object: Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, encodeValue(x)])) };
  }
  throw new Error(`cannot encode a ${typeof v}`);
}

export function encodeRows(rows: Array<Record<string, unknown>>): Array<Record<string, EncodedValue>> {
  return rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, encodeValue(v)])));
}
