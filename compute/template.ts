// The template timeline: a freshly initialised Postgres data directory on the storage node. initdb runs once,
// with PGlite on an ordinary local directory (NodeFS); the directory is then imported into a new timeline in a
// few batches. Every new database is a branch of the template: O(1), no initdb. A template ends checkpointed
// (checkpointTemplate): its data in layers in the bucket, so that every storage node over that bucket can read it,
// not only the one whose local write log took the import.
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { StorageClient } from '../storage-node/client.ts';
import type { FileOp } from '../storage-node/api/types.ts';
import { PAGE_SIZE } from '../storage-node/api/types.ts';
import { startCompute } from './compute.ts';
import { encodeHint, HINT_PATH } from './storage-fs/prefetch.ts';
import { getInitdbWasmModule, getPgliteWasmModule } from './wasm.ts';

export interface LocalDataDirOptions {
  /** The database created next to `postgres` (default 'neondb'). */
  database?: string;
  /** Statements run in that database once it exists (roles, grants, extensions...). */
  setupSql?: string[];
}

/** Runs initdb with PGlite on `dir` (created if missing, must be empty), creates the database, stops cleanly. */
export async function initLocalDataDir(dir: string, opts: LocalDataDirOptions = {}): Promise<void> {
  const database = opts.database ?? 'neondb';
  const [pgliteWasmModule, initdbWasmModule] = await Promise.all([getPgliteWasmModule(), getInitdbWasmModule()]);
  const pg = await PGlite.create({ dataDir: dir, pgliteWasmModule, initdbWasmModule });
  try {
    if (database !== 'postgres') await pg.exec(`CREATE DATABASE "${database.replace(/"/g, '""')}"`);
  } finally {
    await pg.close();
  }
  if (opts.setupSql && opts.setupSql.length > 0) {
    const db = await PGlite.create({ dataDir: dir, database, pgliteWasmModule });
    try {
      for (const sql of opts.setupSql) await db.exec(sql);
    } finally {
      await db.close();
    }
  }
}

export interface ImportResult {
  timelineId: string;
  lsn: number;
  files: number;
  dirs: number;
  /** Sum of the files' sizes, and the bytes actually shipped (all-zero pages are left as holes). */
  bytes: number;
  bytesShipped: number;
  batches: number;
}

/**
 * Imports a local data directory into a timeline (a new empty one unless `timelineId` is given): mkdir for
 * each directory, create + truncate(size) for each file, then the file's non-zero pages as writes, in batches
 * of about `batchBytes`.
 */
export async function importDataDir(
  client: StorageClient,
  dir: string,
  opts: { timelineId?: string; batchBytes?: number } = {},
): Promise<ImportResult> {
  const batchBytes = opts.batchBytes ?? 16 * 1024 * 1024;
  const dirs: string[] = [];
  const files: { rel: string; size: number }[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        dirs.push(r);
        await walk(r);
      } else if (e.isFile()) {
        if (r === 'postmaster.pid') continue;
        files.push({ rel: r, size: (await stat(path.join(dir, r))).size });
      }
    }
  };
  await walk('');
  const timeline = opts.timelineId ? await client.getTimeline(opts.timelineId) : await client.createTimeline({});
  let lsn = timeline.lastLsn;
  let batches = 0;
  let bytesShipped = 0;
  const ship = async (ops: FileOp[]): Promise<void> => {
    if (ops.length === 0) return;
    lsn = (await client.writeBatch(timeline.timelineId, { expectedLsn: lsn, ops })).lsn;
    batches++;
  };

  const meta: FileOp[] = [];
  for (const d of dirs) meta.push({ op: 'mkdir', path: d });
  for (const f of files) {
    meta.push({ op: 'create', path: f.rel });
    if (f.size > 0) meta.push({ op: 'truncate', path: f.rel, size: f.size });
  }
  await ship(meta);

  let ops: FileOp[] = [];
  let pending = 0;
  for (const f of files) {
    if (f.size === 0) continue;
    const bytes = await readFile(path.join(dir, f.rel));
    const isZero = (off: number): boolean => {
      const end = Math.min(off + PAGE_SIZE, bytes.length);
      for (let i = off; i < end; i++) if (bytes[i] !== 0) return false;
      return true;
    };
    let off = 0;
    while (off < bytes.length) {
      while (off < bytes.length && isZero(off)) off += PAGE_SIZE;
      if (off >= bytes.length) break;
      let end = off;
      while (end < bytes.length && !isZero(end) && end - off < batchBytes) end += PAGE_SIZE;
      const data = bytes.subarray(off, Math.min(end, bytes.length));
      ops.push({ op: 'write', path: f.rel, offset: off, data });
      pending += data.length;
      bytesShipped += data.length;
      if (pending >= batchBytes) {
        await ship(ops);
        ops = [];
        pending = 0;
      }
      off = end;
    }
  }
  await ship(ops);
  return {
    timelineId: timeline.timelineId, lsn, files: files.length, dirs: dirs.length,
    bytes: files.reduce((n, f) => n + f.size, 0), bytesShipped, batches,
  };
}

export interface TemplateOptions extends LocalDataDirOptions {
  storageUrl: string;
  /** The storage node's bearer token (LAKEBASE_STORAGE_TOKEN). */
  storageToken?: string;
  /** Id for the new timeline (default: the storage node picks one). */
  timelineId?: string;
  /** Start a read-only compute on the imported template and store the pages its start read as the prefetch hint. */
  recordPrefetchHint?: boolean;
  batchBytes?: number;
}

export interface TemplateResult extends ImportResult {
  initdbMs: number;
  importMs: number;
  /** Pages named by the prefetch hint (0 when not recorded). */
  hintPages: number;
}

/**
 * Makes a template's data part of uploaded layers (POST /v1/timelines/:id/checkpoint): several storage nodes share
 * one bucket, and a project's branch of the template may live on any of them; with `--durability local` the
 * import's batches would otherwise sit in the making node's write log until its next freeze. Both engines' templates.
 */
export async function checkpointTemplate(client: StorageClient, timelineId: string, lsn: number): Promise<void> {
  const { uploadedLsn } = await client.checkpoint(timelineId);
  if (uploadedLsn < lsn) throw new Error(`checkpointing template timeline ${timelineId} uploaded up to LSN ${uploadedLsn}, not its LSN ${lsn}`);
}

/**
 * initdb once, import into a new timeline, record the prefetch hint, checkpoint. Branch the result for each new
 * database.
 */
export async function createTemplateTimeline(opts: TemplateOptions): Promise<TemplateResult> {
  const client = new StorageClient(opts.storageUrl, opts.storageToken);
  const dir = await mkdtemp(path.join(tmpdir(), 'lakebase-template-'));
  try {
    const t0 = performance.now();
    await initLocalDataDir(dir, opts);
    const t1 = performance.now();
    if (opts.timelineId) await client.createTimeline({ timelineId: opts.timelineId });
    const imported = await importDataDir(client, dir, { timelineId: opts.timelineId, batchBytes: opts.batchBytes });
    const t2 = performance.now();
    let lsn = imported.lsn;
    let hintPages = 0;
    if (opts.recordPrefetchHint ?? true) {
      const compute = await startCompute({
        storageUrl: opts.storageUrl, storageToken: opts.storageToken, timelineId: imported.timelineId, readOnly: true, lsn,
        database: opts.database ?? 'neondb',
      });
      let pages: Awaited<ReturnType<typeof compute.startPages>>;
      try {
        pages = await compute.startPages();
      } finally {
        await compute.stop();
      }
      hintPages = pages.length;
      const data = encodeHint(pages);
      lsn = (await client.writeBatch(imported.timelineId, {
        expectedLsn: lsn,
        ops: [{ op: 'create', path: HINT_PATH }, { op: 'write', path: HINT_PATH, offset: 0, data }],
      })).lsn;
    }
    await checkpointTemplate(client, imported.timelineId, lsn);
    return { ...imported, lsn, initdbMs: t1 - t0, importMs: t2 - t1, hintPages };
  } finally {
    client.close();
    await rm(dir, { recursive: true, force: true });
  }
}
