// One live mount inside the FUSE server process: the storage client, the tree, pages, shipper and handlers put
// together, mounted, and taken down. main.ts drives it from the compute host's messages.
import type Fuse from 'fuse-native';
import type { Logger } from '../../lib/logger.ts';
import { normaliseDataPath } from '../../storage-node/api/paths.ts';
import { PAGE_SIZE } from '../../storage-node/api/types.ts';
import { StorageClient } from '../../storage-node/client.ts';
import { addLocalFiles, loadTree } from './load.ts';
import { mountFuse, preflight, prepareMountpoint, unmountFuse } from './mount.ts';
import { FuseHandlers } from './ops.ts';
import { PageStore } from './pages.ts';
import { ALWAYS_LOCAL } from './protocol.ts';
import type { FuseEvent, MountConfig, StartInfo } from './protocol.ts';
import { Shipper } from './shipper.ts';
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
    const pages = new PageStore({ client, timelineId: cfg.timelineId, cacheBytes: cfg.cacheBytes, counters, originOf });
    try {
      const loaded = await loadTree(client, cfg.timelineId, cfg.lsn, tree, pages);
      addLocalFiles(tree, pages, cfg.localFiles);
      shipper = new Shipper({ client, timelineId: cfg.timelineId, lsn: loaded.lsn, readOnly: cfg.readOnly, tree, pages, counters, emit, log });
      const handlers = new FuseHandlers({ tree, pages, shipper, counters, log });
      const dir = await prepareMountpoint(cfg.mountpoint);
      const fuse = await mountFuse(FuseCtor, dir, handlers.operations());
      const info = { lsn: loaded.lsn, files: loaded.files, bytes: loaded.bytes, ms: Math.round(performance.now() - t0) };
      log.info({ ...info, mountpoint: dir, timelineId: cfg.timelineId, readOnly: cfg.readOnly }, 'mounted');
      return new FuseMount({ info, fuse, client, tree, pages, shipper, handlers, counters, readOnly: cfg.readOnly });
    } catch (e) {
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
    return counters.snapshot({ lsn: shipper.lsn, cachedBytes: pages.cachedBytes, dirtyBytes: pinned * PAGE_SIZE, failed: shipper.failed });
  }

  /** Ships everything pending (writable mounts), then unmounts; the last acknowledged LSN. Throws if the ship fails. */
  async stop(): Promise<number> {
    const { shipper, readOnly } = this.p;
    try {
      if (!readOnly) while (!shipper.idle) await shipper.flush();
    } finally {
      await this.abort();
    }
    return shipper.lsn;
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
