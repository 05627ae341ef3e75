// The tree of a mount as the storage node has it at the mount's LSN: every path with its type and size from
// `listFiles`, and for a Postgres data directory the start-up prefetch of compute/storage-fs/prefetch.ts (the
// small files every start reads, the last checkpoint's WAL pages, the pages named by `lakebase.prefetch`) as
// clean pages. Other pages load lazily. Local files (never shipped) are created here, pinned in memory.
import { normaliseDataPath } from '../../storage-node/api/paths.ts';
import { PAGE_SIZE } from '../../storage-node/api/types.ts';
import type { FileEntry, PageRef } from '../../storage-node/api/types.ts';
import type { StorageClient } from '../../storage-node/client.ts';
import { NoDataDirectoryError, bootstrap } from '../storage-fs/prefetch.ts';
import type { PageStore } from './pages.ts';
import type { StartPages } from './start-pages.ts';
import type { Tree } from './tree.ts';

export interface Loaded {
  lsn: number;
  files: number;
  bytes: number;
  /** The timeline held a Postgres data directory (PG_VERSION) at that LSN. */
  dataDir: boolean;
  /** The pages of the prefetch hint the mount started with. */
  hint: PageRef[];
  /** Pages installed by the start-up prefetch, and the storage-node round trips of the listing and prefetch. */
  prefetchPages: number;
  roundTrips: number;
}

/** The listing at `lsn` (default: head), with the start-up pages when it is a data directory. */
async function listing(client: StorageClient, timelineId: string, lsn: number | undefined) {
  try {
    return await bootstrap(client, timelineId, lsn);
  } catch (e) {
    if (!(e instanceof NoDataDirectoryError)) throw e;
    const l = await client.listFiles(timelineId, lsn); // an empty timeline, before initdb
    return { ...l, refs: [], data: new Uint8Array(0), hint: null, roundTrips: 1 };
  }
}

function depth(f: FileEntry): number {
  return f.path.split('/').length;
}

/**
 * Fills `tree` (and `pages`) from the storage node; what was listed. The prefetched pages that are not the hint's
 * are left out of `startPages` (every start fetches them anyway).
 */
export async function loadTree(client: StorageClient, timelineId: string, lsn: number | undefined, tree: Tree, pages: PageStore, startPages?: StartPages | null): Promise<Loaded> {
  const l = await listing(client, timelineId, lsn);
  let files = 0;
  let bytes = 0;
  for (const f of [...l.files].sort((a, b) => depth(a) - depth(b))) {
    if (f.path === '' || tree.isLocalPath(f.path)) continue; // a stale postmaster.pid and the like stay hidden
    const { dir, name } = tree.parentOf('/' + f.path);
    if (!dir) throw new Error(`listing of timeline ${timelineId}: ${f.path} has no parent directory`);
    const n = tree.make(f.type, f.type === 'dir' ? 0o700 : 0o600, dir, name, false);
    tree.attach(n, dir, name);
    n.durable = { parent: dir, name };
    if (f.type === 'file') {
      n.size = n.originLimit = f.size;
      bytes += f.size;
    }
    files++;
  }
  const hinted = new Set((l.hint ?? []).map((r) => `${r.path}\0${r.page}`));
  l.refs.forEach((ref, i) => {
    const n = tree.lookup('/' + ref.path);
    if (n?.kind !== 'file') return;
    pages.install(n, ref.page, l.data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
    if (!hinted.has(`${ref.path}\0${ref.page}`)) startPages?.ignore(n, ref.page);
  });
  pages.evict();
  return { lsn: l.lsn, files, bytes, dataDir: l.hint !== null, hint: l.hint ?? [], prefetchPages: l.refs.length, roundTrips: l.roundTrips };
}

/** Creates the local files (never shipped), pinned in memory; their directories must exist. */
export function addLocalFiles(tree: Tree, pages: PageStore, localFiles: { path: string; data: Uint8Array }[]): void {
  for (const lf of localFiles) {
    const path = normaliseDataPath(lf.path);
    const { dir, name } = tree.parentOf('/' + path);
    if (!dir) throw new Error(`local file ${path}: its directory does not exist on the timeline`);
    if (dir.children!.get(name)?.kind === 'dir') throw new Error(`local file ${path}: a directory has that path`);
    const n = tree.make('file', 0o600, dir, name, true);
    tree.attach(n, dir, name);
    n.size = lf.data.length;
    for (let p = 0; p * PAGE_SIZE < lf.data.length; p++) pages.pin(n, p, lf.data.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE));
  }
}
