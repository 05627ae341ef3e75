// Storage node benchmarks: page read latency (memory / local layer / S3), acknowledged write batches per second
// in both durability modes, and branch creation at 10 MB and 1 GB against `cp -r` of the same data.
// Run: npm run bench -- storage   (BENCH_LARGE=0 skips the 1 GB case)
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { StorageClient } from '../storage-node/client.ts';
import { PAGE_SIZE } from '../storage-node/api/types.ts';
import { startS3Server } from '../test/support/miniflare-s3.ts';
import { s3Env, startStorageProcess } from '../test/support/storage-process.ts';
import type { StorageProcess } from '../test/support/storage-process.ts';
import { fmtMs, fmtNum, nowMs, percentile, printTable, progress, timeEach } from './support/stats.ts';

const READS = 3000;
const PAGES = 2000;

async function fillTimeline(client: StorageClient, tl: string, bytes: number, file = 'base/5/16384'): Promise<void> {
  await client.writeBatch(tl, { ops: [{ op: 'mkdir', path: 'base' }, { op: 'mkdir', path: 'base/5' }, { op: 'create', path: file }] });
  const chunk = 4 * 1024 * 1024;
  for (let off = 0; off < bytes; off += chunk) {
    await client.writeBatch(tl, { ops: [{ op: 'write', path: file, offset: off, data: randomBytes(Math.min(chunk, bytes - off)) }] });
    if (bytes >= 256 * 1024 * 1024 && off % (64 * 1024 * 1024) === 0) progress(`  filled ${off / (1024 * 1024)} MiB of ${bytes / (1024 * 1024)} MiB`);
  }
}

async function readLatency(client: StorageClient, tl: string): Promise<number[]> {
  let x = 12345;
  const next = (): number => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % PAGES;
  };
  for (let i = 0; i < 500; i++) await client.readPage(tl, 'base/5/16384', next()); // warm-up (JIT, sockets)
  return timeEach(READS, () => client.readPage(tl, 'base/5/16384', next()));
}

async function preadLatency(dir: string): Promise<number[]> {
  const path = join(dir, 'pread-reference');
  await writeFile(path, randomBytes(PAGES * PAGE_SIZE));
  const fh = await open(path, 'r');
  const buf = Buffer.alloc(PAGE_SIZE);
  const out = await timeEach(READS, (i) => fh.read(buf, 0, PAGE_SIZE, ((i * 7919) % PAGES) * PAGE_SIZE));
  await fh.close();
  return out;
}

async function batchesPerSecond(client: StorageClient, writers: number, seconds: number): Promise<number> {
  const tls = await Promise.all(Array.from({ length: writers }, () => client.createTimeline()));
  for (const t of tls) await client.writeBatch(t.timelineId, { ops: [{ op: 'create', path: 'wal' }] });
  let count = 0;
  const end = nowMs() + seconds * 1000;
  await Promise.all(tls.map(async (t) => {
    for (let i = 0; nowMs() < end; i++) {
      await client.writeBatch(t.timelineId, { ops: [{ op: 'write', path: 'wal', offset: (i % 2048) * PAGE_SIZE, data: randomBytes(PAGE_SIZE) }] });
      count++;
    }
  }));
  return count / seconds;
}

async function fsyncReference(dir: string, seconds: number): Promise<number> {
  const fh = await open(join(dir, 'fsync-reference'), 'a');
  const page = randomBytes(PAGE_SIZE);
  let n = 0;
  const end = nowMs() + seconds * 1000;
  while (nowMs() < end) {
    await fh.write(page);
    await fh.datasync();
    n++;
  }
  await fh.close();
  return n / seconds;
}

async function branchTimes(client: StorageClient, tl: string, n: number): Promise<number[]> {
  return timeEach(n, () => client.createTimeline({ ancestorTimelineId: tl }));
}

async function cpTime(dir: string, bytes: number): Promise<number[]> {
  // A data directory of the same size: 1 GiB segments like Postgres relation files.
  const src = join(dir, `pgdata-${bytes}`);
  await mkdir(join(src, 'base', '5'), { recursive: true });
  const seg = 1024 * 1024 * 1024;
  const chunk = randomBytes(16 * 1024 * 1024);
  for (let i = 0, left = bytes; left > 0; i++, left -= seg) {
    const fh = await open(join(src, 'base', '5', i === 0 ? '16384' : `16384.${i}`), 'w');
    for (let w = 0; w < Math.min(seg, left); w += chunk.length) await fh.write(chunk, 0, Math.min(chunk.length, Math.min(seg, left) - w));
    await fh.close();
  }
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const dst = join(dir, `copy-${bytes}-${i}`);
    const t0 = nowMs();
    execFileSync('cp', ['-r', src, dst]);
    times.push(nowMs() - t0);
    await rm(dst, { recursive: true, force: true });
  }
  await rm(src, { recursive: true, force: true });
  return times;
}

export async function runStorageBenchmarks(): Promise<string[]> {
  const tables: string[] = [];
  const root = await mkdtemp(join(tmpdir(), 'lakebase-bench-storage-'));
  // Miniflare (workerd) starts only when the local measurements are done, so it adds no noise to them.
  let s3: Awaited<ReturnType<typeof startS3Server>> | null = null;
  const procs: StorageProcess[] = [];
  const start = async (args: string[], env: Record<string, string>) => {
    const p = await startStorageProcess(args, env);
    procs.push(p);
    return p;
  };
  try {
    // --- page reads ---
    progress('page reads: memory, local layer, S3');
    // A freeze threshold above the data, so that "in memory" stays in memory until the checkpoint.
    const local = await start(['--data-dir', join(root, 'sn-local'), '--freeze-mb', '64'], { LAKEBASE_OBJECT_STORE_DIR: join(root, 'objects') });
    const lc = new StorageClient(local.url, local.token);
    const { timelineId: tl } = await lc.createTimeline();
    await fillTimeline(lc, tl, PAGES * PAGE_SIZE);
    const inMemory = await readLatency(lc, tl);
    await lc.checkpoint(tl);
    const inLayer = await readLatency(lc, tl);
    const pread = await preadLatency(root);
    s3 = await startS3Server();
    const prefix = `bench-${randomBytes(4).toString('hex')}`;
    const s3a = await start(['--data-dir', join(root, 'sn-s3-a')], s3Env(s3, prefix));
    const sa = new StorageClient(s3a.url, s3a.token);
    const { timelineId: stl } = await sa.createTimeline();
    await fillTimeline(sa, stl, PAGES * PAGE_SIZE);
    await s3a.stop(); // uploads everything
    const s3b = await start(['--data-dir', join(root, 'sn-s3-b')], s3Env(s3, prefix)); // empty disk: every read is a range GET
    const fromS3 = await readLatency(new StorageClient(s3b.url, s3b.token), stl);
    tables.push(printTable('Page read latency (8 KiB page, one request at a time, HTTP keep-alive over loopback)', ['where the page is', 'p50', 'p99', 'mean'], [
      ['storage node: in memory', fmtMs(percentile(inMemory, 50)), fmtMs(percentile(inMemory, 99)), fmtMs(inMemory.reduce((a, b) => a + b) / READS)],
      ['storage node: local layer file', fmtMs(percentile(inLayer, 50)), fmtMs(percentile(inLayer, 99)), fmtMs(inLayer.reduce((a, b) => a + b) / READS)],
      ['storage node: S3 range GET (Miniflare R2)', fmtMs(percentile(fromS3, 50)), fmtMs(percentile(fromS3, 99)), fmtMs(fromS3.reduce((a, b) => a + b) / READS)],
      ['reference: pread() of a local file, in-process', fmtMs(percentile(pread, 50)), fmtMs(percentile(pread, 99)), fmtMs(pread.reduce((a, b) => a + b) / READS)],
      ['reference: Neon pageserver (published mean)', '-', '-', '218 µs'],
    ]));

    // --- batches per second ---
    progress('write batches per second in both durability modes');
    const secs = 3;
    const rows: string[][] = [];
    for (const writers of [1, 8]) rows.push([`local (fsync'd write log), ${writers} writer(s)`, fmtNum(await batchesPerSecond(lc, writers, secs))]);
    const osLocal = await start(['--data-dir', join(root, 'sn-os-local'), '--durability', 'object-store'], { LAKEBASE_OBJECT_STORE_DIR: join(root, 'objects-os') });
    for (const writers of [1, 8]) rows.push([`object-store (local folder), ${writers} writer(s)`, fmtNum(await batchesPerSecond(new StorageClient(osLocal.url, osLocal.token), writers, secs))]);
    const osS3 = await start(['--data-dir', join(root, 'sn-os-s3'), '--durability', 'object-store'], s3Env(s3, `${prefix}-os`));
    for (const writers of [1, 8]) rows.push([`object-store (S3: Miniflare R2), ${writers} writer(s)`, fmtNum(await batchesPerSecond(new StorageClient(osS3.url, osS3.token), writers, secs))]);
    rows.push(['reference: write + fdatasync loop on a local file', fmtNum(await fsyncReference(root, secs))]);
    tables.push(printTable('Acknowledged write batches per second (one 8 KiB page each)', ['mode', 'batches/s'], rows));

    // --- branch creation ---
    const sizes = [10 * 1024 * 1024, ...(process.env.BENCH_LARGE === '0' ? [] : [1024 * 1024 * 1024])];
    const brows: string[][] = [];
    for (const size of sizes) {
      const label = size >= 1024 * 1024 * 1024 ? '1 GB' : '10 MB';
      progress(`branch creation at ${label}: filling a timeline`);
      const { timelineId: big } = await lc.createTimeline();
      await fillTimeline(lc, big, size);
      await lc.checkpoint(big);
      const br = await branchTimes(lc, big, 30);
      progress(`branch creation at ${label}: cp -r reference`);
      const cp = await cpTime(root, size);
      brows.push([label, fmtMs(percentile(br, 50)), fmtMs(percentile(br, 99)), fmtMs(percentile(cp, 50))]);
    }
    tables.push(printTable('Branch creation (HTTP request to the storage node, local durability) vs `cp -r` of the same data', ['data size', 'branch p50', 'branch p99', '`cp -r` p50'], brows));
  } finally {
    for (const p of procs) await p.stop().catch(() => {});
    await s3?.stop();
    await rm(root, { recursive: true, force: true });
  }
  return tables;
}
