// The local write log (storage-node/engine/write-log.ts): records come back in the order they were appended, a
// torn record at the tail (a crash mid-write) is cut at the last whole record, a record whose checksum fails
// ends the replay of its segment, replaying twice gives the same records, and after a failed write the log
// refuses everything (fail-stop).
import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WriteLog, decodeRecords, encodeRecord } from '../storage-node/engine/write-log.ts';
import type { LogRecord } from '../storage-node/engine/write-log.ts';

const TL = 'c'.repeat(32);
const dirs: string[] = [];
const logs: WriteLog[] = [];

afterEach(async () => {
  for (const l of logs.splice(0)) await l.close().catch(() => {});
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function logDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'lakebase-wal-'));
  dirs.push(d);
  return join(d, 'wal');
}

async function openLog(dir: string): Promise<{ log: WriteLog; records: LogRecord[] }> {
  const log = new WriteLog(dir);
  logs.push(log);
  return { log, records: await log.open() };
}

async function reopen(dir: string, log: WriteLog): Promise<LogRecord[]> {
  await log.close();
  return (await openLog(dir)).records;
}

const create: LogRecord = { type: 'create', timeline: { timelineId: TL, ancestorTimelineId: null, ancestorLsn: 0, createdAt: 1000 } };
const batch = (lsn: number, bytes = 100): LogRecord => ({ type: 'batch', timelineId: TL, lsn, time: 1000 + lsn, batch: Buffer.alloc(bytes, lsn) });

/** The segment files, oldest first. */
async function segments(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.log')).sort().map((n) => join(dir, n));
}

/** The last segment that holds any bytes. */
async function lastNonEmpty(dir: string): Promise<string> {
  const all = await segments(dir);
  for (let i = all.length - 1; i >= 0; i--) if ((await stat(all[i])).size > 0) return all[i];
  throw new Error('no segment holds records');
}

describe('write log', () => {
  it('replays what was appended, in order, with concurrent appends sharing fsyncs', async () => {
    const dir = await logDir();
    const { log, records } = await openLog(dir);
    expect(records).toEqual([]);
    await log.append(create);
    const written = Array.from({ length: 20 }, (_, i) => batch(i + 1, 10 + i * 50));
    await Promise.all(written.map((r) => log.append(r)));
    expect(log.fsyncs).toBeLessThan(1 + written.length); // group commit
    await log.append({ type: 'delete', timelineId: TL });
    expect(await reopen(dir, log)).toEqual([create, ...written, { type: 'delete', timelineId: TL }]);
  });

  it('replaying again gives the same records, however often it is reopened', async () => {
    const dir = await logDir();
    const { log } = await openLog(dir);
    for (const r of [create, batch(1), batch(2)]) await log.append(r);
    const first = await reopen(dir, log);
    const second = await reopen(dir, logs.at(-1)!);
    const third = await reopen(dir, logs.at(-1)!);
    expect(first).toEqual([create, batch(1), batch(2)]);
    expect(second).toEqual(first);
    expect(third).toEqual(first);
  });

  it('cuts a torn record at the tail back to the last whole record, and appends after it read back whole', async () => {
    const dir = await logDir();
    const { log } = await openLog(dir);
    for (const r of [create, batch(1), batch(2)]) await log.append(r);
    await log.close();
    const seg = await lastNonEmpty(dir);
    const whole = (await stat(seg)).size;
    for (const cut of [1, 7, 8, 50]) {
      // a crash mid-write: only the first bytes of the next record reached the disk
      await appendFile(seg, encodeRecord(batch(3)).subarray(0, cut));
      const { log: again, records } = await openLog(dir);
      expect(records).toEqual([create, batch(1), batch(2)]);
      expect((await stat(seg)).size).toBe(whole); // the torn bytes are gone from the file
      await again.close();
    }
    const { log: again } = await openLog(dir);
    await again.append(batch(3));
    expect(await reopen(dir, again)).toEqual([create, batch(1), batch(2), batch(3)]);
  });

  it('stops replaying a segment at a record whose checksum fails', async () => {
    const dir = await logDir();
    const { log } = await openLog(dir);
    for (const r of [create, batch(1), batch(2), batch(3)]) await log.append(r);
    await log.close();
    const seg = await lastNonEmpty(dir);
    const bytes = await readFile(seg);
    const atBatch2 = encodeRecord(create).length + encodeRecord(batch(1)).length;
    bytes[atBatch2 + 8 + 20] ^= 0xff; // a flipped bit inside LSN 2's payload
    await writeFile(seg, bytes);
    const { records } = await openLog(dir);
    expect(records).toEqual([create, batch(1)]);
    expect((await stat(seg)).size).toBe(atBatch2);
  });

  it('decodeRecords: the valid prefix of any damaged buffer, never a record that was not written', () => {
    const good = Buffer.concat([encodeRecord(batch(1)), encodeRecord(batch(2, 5000))]);
    const one = encodeRecord(batch(1)).length;
    expect(decodeRecords(good)).toEqual({ records: [batch(1), batch(2, 5000)], validBytes: good.length });
    for (let cut = 0; cut < good.length; cut += 97) {
      const r = decodeRecords(good.subarray(0, cut));
      expect(r.validBytes).toBe(cut >= one ? one : 0);
      expect(r.records).toEqual(cut >= one ? [batch(1)] : []);
    }
    const badCrc = Buffer.from(good);
    badCrc.writeUInt32BE((badCrc.readUInt32BE(one + 4) + 1) >>> 0, one + 4);
    expect(decodeRecords(badCrc)).toEqual({ records: [batch(1)], validBytes: one });
    const hugeLength = Buffer.from(good);
    hugeLength.writeUInt32BE(0xffffffff, one);
    expect(decodeRecords(hugeLength).records).toEqual([batch(1)]);
  });

  it('keeps segments until their records are persisted elsewhere, and trims oldest first', async () => {
    const dir = await logDir();
    const { log } = await openLog(dir);
    await log.append(create);
    await log.append(batch(1));
    await log.rotate();
    await log.append(batch(2));
    await log.rotate();
    const before = log.segmentCount();
    expect(await log.trim(() => false)).toBe(0);
    expect(await log.trim((_, maxLsn) => maxLsn <= 1)).toBe(1); // the segment of LSN 2 stays
    expect(log.segmentCount()).toBe(before - 1);
    expect(await reopen(dir, log)).toEqual([batch(2)]);
  });

  it('after a failed write it refuses every append until it is reopened (fail-stop)', async () => {
    const dir = await logDir();
    const { log } = await openLog(dir);
    await log.append(batch(1));
    // Break the segment file under the log (as a failing disk would): the next write fails.
    await (log as unknown as { fh: FileHandle }).fh.close();
    await expect(log.append(batch(2))).rejects.toThrow(/write log failed.*restart/);
    await expect(log.append(batch(3))).rejects.toThrow(/write log failed/);
    const { records } = await openLog(dir);
    expect(records).toEqual([batch(1)]);
  });
});
