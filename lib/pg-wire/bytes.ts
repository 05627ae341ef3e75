// Byte primitives of the Postgres wire codec: big-endian integers, NUL-terminated UTF-8 strings and joining
// parts, over plain Uint8Array (a Node Buffer is one too, so the proxy and the compute host share them).

const encoder = new TextEncoder();
/** Keeps a leading U+FEFF (Postgres does not strip byte order marks, nor did Buffer#toString). */
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

export function readInt32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) | 0;
}

export function readInt16(b: Uint8Array, off: number): number {
  return ((b[off] << 8) | b[off + 1]) << 16 >> 16;
}

export function writeInt32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 255;
  b[off + 1] = (v >>> 16) & 255;
  b[off + 2] = (v >>> 8) & 255;
  b[off + 3] = v & 255;
}

export function int32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  writeInt32(b, 0, v);
  return b;
}

/** Two bytes, big-endian; a count Postgres reads as unsigned (Bind's parameter count) fits up to 65535. */
export function int16(v: number): Uint8Array {
  return new Uint8Array([(v >>> 8) & 255, v & 255]);
}

export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

export function decodeUtf8(b: Uint8Array): string {
  return decoder.decode(b);
}

/** A NUL-terminated UTF-8 string. */
export function cstring(s: string): Uint8Array {
  return encoder.encode(s + '\0');
}

/** The parts as one array; a single part is returned as is (no copy). */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
