// LSNs at the API boundary are Postgres' WAL positions, as pg_current_wal_lsn() prints them: two 32-bit hex halves
// ("0/16B3748"). The storage node numbers its batches with its own integers and maps between the two
// (storage-node/engine/wal-position.ts); those never reach the API. Input is that form or a decimal integer.

const TWO_32 = 2 ** 32;

export function formatLsn(n: number): string {
  const hi = Math.floor(n / TWO_32);
  const lo = n % TWO_32;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

/** The integer LSN, or null when `s` is neither "X/Y" (hex halves) nor a decimal integer. */
export function parseLsn(s: string): number | null {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(s);
  if (m) {
    const n = parseInt(m[1], 16) * TWO_32 + parseInt(m[2], 16);
    return Number.isSafeInteger(n) ? n : null;
  }
  if (/^[0-9]{1,16}$/.test(s)) {
    const n = Number(s);
    return Number.isSafeInteger(n) ? n : null;
  }
  return null;
}

/** Normalises a stored LSN (an older state kept decimal strings) to the API form. */
export function showLsn(stored: string | number | null | undefined): string | undefined {
  if (stored === null || stored === undefined) return undefined;
  const n = typeof stored === 'number' ? stored : parseLsn(stored);
  return n === null ? String(stored) : formatLsn(n);
}
