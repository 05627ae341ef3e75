// One live mount inside the FUSE server process: the storage client, the tree, pages, shipper and handlers put
// together, mounted, and taken down. main.ts drives it from the compute host's messages. A writable mount of a
// data directory also records the start's pages (start-pages.ts) and writes them as the prefetch hint at stop.
import type Fuse from 'fuse-native';
import type { Logger } from '../../lib/logger.ts';
import { normaliseDataPath } from '../../storage-node/api/paths.ts';
import { PAGE_SIZE } from '../../storage-node/api/types.ts';
import type { PageRef } from '../../storage-node/api/types.ts';
import { StorageClient } from '../../storage-node/client.ts';
import { HINT_PATH, decodeHint, encodeHint, sameRefs } from '../storage-fs/prefetch.ts';
import { addLocalFiles, loadTree } from './load.ts';
import { mountFuse, preflight, prepareMountpoint, unmountFuse } from './mount.ts';
import { FuseHandlers } from './ops.ts';
import { PageStore } from './pages.ts';
import { ALWAYS_LOCAL } from './protocol.ts';
import type { FuseEvent, MountConfig, StartInfo } from './protocol.ts';
import { Shipper } from './shipper.ts';
import { StartPages } from './start-pages.ts';
import { FuseCounters } from './stats.ts';
import type { FuseStats } from './stats.ts';
import { type FsNode, Tree } from './tree.ts';

/** The parts of a live mount. */
interface MountParts {
  info: StartInfo;
  fuse: Fuse;
  client: StorageClient;
  tree: Tree;
  pages: PageStore;
  shipper: Shipper;
  handlers: FuseHandlers;
  counters: FuseCounters;
  readOnly: boolean;
  /** Null for read-only mounts and timelines that held no data directory at mount: they never write a hint. */
  startPages: StartPages | null;
  /** The hint the mount started with (rewritten at stop only if the start read other pages). */
  hint: PageRef[];
  log: Logger;
}

export class FuseMount {
  readonly info: StartInfo;
  private readonly p: MountParts;

  private constructor(parts: MountParts) {
    this.info = parts.info;
    this.p = parts;
  }

  /** Loads the tree from the storage node and mounts it; `emit` receives shipped/fenced/ship_failed. */
  static async start(cfg: MountConfig, token: string | undefined, log: Logger, emit: (e: FuseEvent) => void): Promise<FuseMount> {
    const t0 = performance.now();
    const FuseCtor = await preflight();
    const client = new StorageClient(cfg.storageUrl, token);
    const localPaths = [...ALWAYS_LOCAL, ...cfg.localFiles.map((f) => normaliseDataPath(f.path))];
    const tree = new Tree({ uid: cfg.uid, gid: cfg.gid }, localPaths);
    const counters = new FuseCounters();
    let shipper: Shipper | null = null; // made once the listing gave the LSN; no page is fetched before
    const originOf = (n: FsNode) => {
      if (n.left) return n.frozen;
      const path = tree.durablePath(n);
      return path === null || !shipper ? null : { path, lsn: shipper.durableLsn };
    };
    const startPages = cfg.readOnly ? null : new StartPages(log);
    const pages = new PageStore({ client, timelineId: cfg.timelineId, cacheBytes: cfg.cacheBytes, counters, originOf, startPages });
    try {
      const loaded = await loadTree(client, cfg.timelineId, cfg.lsn, tree, pages, startPages);
      if (!loaded.dataDir) startPages?.cancel(); // before initdb: no start to speed up
      addLocalFiles(tree, pages, cfg.localFiles);
      shipper = new Shipper({ client, timelineId: cfg.timelineId, lsn: loaded.lsn, readOnly: cfg.readOnly, writerGeneration: cfg.writerGeneration, tree, pages, counters, emit, log });
      const handlers = new FuseHandlers({ tree, pages, shipper, counters, log });
      const dir = await prepareMountpoint(cfg.mountpoint);
      const fuse = await mountFuse(FuseCtor, dir, handlers.operations());
      const { lsn, files, bytes, prefetchPages, roundTrips } = loaded;
      const info = { lsn, files, bytes, ms: Math.round(performance.now() - t0), prefetchPages, hintPages: loaded.hint.length, roundTrips };
      log.info({ ...info, mountpoint: dir, timelineId: cfg.timelineId, readOnly: cfg.readOnly }, 'mounted');
      const recording = loaded.dataDir ? startPages : null;
      return new FuseMount({ info, fuse, client, tree, pages, shipper, handlers, counters, readOnly: cfg.readOnly, startPages: recording, hint: loaded.hint, log });
    } catch (e) {
      startPages?.cancel();
      client.close();
      throw e;
    }
  }

  stats(): FuseStats {
    let pinned = 0;
    const seen = new Set<FsNode>();
    const { tree, handlers, counters, shipper, pages } = this.p;
    for (const n of [...tree.walk(), ...handlers.openNodes()]) {
      if (seen.has(n)) continue;
      seen.add(n);
      pinned += n.shipping.size === 0 ? n.dirty.size : new Set([...n.dirty, ...n.shipping]).size;
    }
    const startPages = this.p.startPages?.pages ?? 0;
    return counters.snapshot({ lsn: shipper.lsn, cachedBytes: pages.cachedBytes, dirtyBytes: pinned * PAGE_SIZE, failed: shipper.failed, startPages });
  }

  /** The host's start is over: the pages read from now on are not the start's. */
  startDone(): void {
    this.p.startPages?.done('start_done');
  }

  /** Ships everything pending (writable mounts) with the new prefetch hint, then unmounts; the last acknowledged LSN. Throws if the ship fails. */
  async stop(): Promise<number> {
    const { shipper, readOnly } = this.p;
    try {
      if (!readOnly) {
        await this.writeHint();
        while (!shipper.idle) await shipper.flush();
      }
    } finally {
      await this.abort();
    }
    return shipper.lsn;
  }

  /**
   * Writes the start's pages as `lakebase.prefetch` through the tree, so that it goes with the last batch, if they
   * differ from the hint the mount started with (an empty record, a stop before any read, keeps the old hint).
   * Postgres is stopped: each file's current path is the one it has at the LSN of that batch, which the next
   * start mounts (a file gone since its pages were read is left out).
   */
  private async writeHint(): Promise<void> {
    const { startPages, tree, pages, shipper, hint, log } = this.p;
    if (!startPages || shipper.failed) return;
    startPages.done('stop');
    const refs = startPages.refs((n) => (n.left || n.local || n.kind !== 'file' ? null : tree.pathOf(n)));
    const data = Buffer.from(encodeHint(refs));
    if (decodeHint(data).length === 0 || sameRefs(refs, hint)) return; // WAL pages only are no hint either
    let n = tree.lookup('/' + HINT_PATH);
    if (n && (n.kind !== 'file' || n.local)) return;
    if (n) {
      pages.setSize(n, 0);
      shipper.record({ op: 'truncate', path: HINT_PATH, size: 0 }, n);
    } else {
      n = tree.make('file', 0o600, tree.root, HINT_PATH, false);
      tree.attach(n, tree.root, HINT_PATH);
      shipper.record({ op: 'create', path: HINT_PATH }, n);
    }
    await pages.write(n, 0, data);
    shipper.dirtied(n);
    log.info({ pages: refs.length, bytes: data.length, was: hint.length }, 'prefetch hint written');
  }

  /** Unmounts without shipping. */
  async abort(): Promise<void> {
    try {
      await unmountFuse(this.p.fuse);
    } finally {
      this.p.client.close();
    }
  }
}
