// Postgres' own LSN at a batch: how far the WAL that the batch writes reaches. The storage node numbers batches
// with its own LSNs; the API speaks Postgres' (what pg_current_wal_lsn() prints), so every batch carries the WAL
// position it reached and the engine maps between the two (Timeline.walLsnAt, Timeline.lsnForWal).
//
// Postgres writes WAL in whole pages from its buffers, and a buffer page is zeroed before records are copied in:
// the bytes of the last page written after the insert position are zeros. So the WAL end of a batch is the
// segment's start plus the end of its last non-zero byte, rounded up to MAXALIGN (8): at or before the true end,
// short of it only by trailing zero bytes of the last record (WAL_END_SLACK bounds that when a caller's LSN is
// judged against the head). A recycled segment's old bytes are never in a write: Postgres writes its own pages.

const SEGMENT_FILE = /^pg_wal\/[0-9A-F]{8}([0-9A-F]{8})([0-9A-F]{8})$/;
const DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024;
const MAXALIGN = 8;

/** How far past a batch's computed WAL end the true end may lie (trailing zero bytes of its last record). */
export const WAL_END_SLACK = 64;

/** A segment's size is its file's (initdb fixes it: a power of two, 1 MiB to 1 GiB); 16 MiB if that says nothing. */
function segmentBytes(fileSize: number): number {
  const isPow2 = fileSize > 0 && (fileSize & (fileSize - 1)) === 0;
  return isPow2 && fileSize >= 1 << 20 && fileSize <= 1 << 30 ? fileSize : DEFAULT_SEGMENT_BYTES;
}

/** The WAL position a write to `path` reaches, or undefined when it is not a WAL segment or writes only zeros. */
export function walEndOfWrite(path: string, offset: number, data: Uint8Array, fileSize: number): number | undefined {
  const m = SEGMENT_FILE.exec(path);
  if (!m) return undefined;
  let last = data.length - 1;
  while (last >= 0 && data[last] === 0) last--;
  if (last < 0) return undefined;
  const seg = segmentBytes(fileSize);
  const segNo = Number.parseInt(m[1], 16) * (0x1_0000_0000 / seg) + Number.parseInt(m[2], 16);
  const end = offset + last + 1;
  return segNo * seg + Math.ceil(end / MAXALIGN) * MAXALIGN;
}
