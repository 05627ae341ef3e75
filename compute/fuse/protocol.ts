// The IPC messages between a compute host (fuse-server.ts) and its FUSE server process (main.ts), and the mount
// configuration both check. The storage token never travels here: it goes by environment.
import * as v from 'valibot';
import type { FuseStats } from './stats.ts';

export const mountConfigSchema = v.pipe(
  v.object({
    storageUrl: v.pipe(v.string(), v.url('storageUrl must be a URL')),
    timelineId: v.pipe(v.string(), v.minLength(1, 'timelineId is required')),
    lsn: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
    readOnly: v.boolean(),
    /** The writer generation every batch carries (a read-write compute the host took the timeline for). */
    writerGeneration: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
    mountpoint: v.pipe(v.string(), v.startsWith('/', 'mountpoint must be an absolute path')),
    uid: v.pipe(v.number(), v.integer(), v.minValue(0)),
    gid: v.pipe(v.number(), v.integer(), v.minValue(0)),
    cacheBytes: v.pipe(v.number(), v.integer(), v.minValue(0)),
    localFiles: v.optional(
      v.array(
        v.object({
          path: v.pipe(v.string(), v.regex(/^[^/](?:.*[^/])?$/, 'a local file path is relative to the data directory'), v.check((p) => !p.split('/').includes('..'), "a local file path has no '..'")),
          data: v.instance(Uint8Array),
        }),
      ),
      [],
    ),
  }),
  v.check((c) => c.lsn === undefined || c.readOnly, 'lsn is for read-only mounts (a writable mount starts at the head)'),
);

/** The mount's configuration, as the FUSE server process receives it (the token is in its environment). */
export type MountConfig = v.InferOutput<typeof mountConfigSchema>;

/** Where the mount started. */
export interface StartInfo {
  /** The LSN the tree was read at (the head, or the `lsn` asked). */
  lsn: number;
  /** Entries listed by the storage node (files and directories, local files not counted). */
  files: number;
  /** Their logical size (sum of file sizes). */
  bytes: number;
  /** From the server's start to the mount being live (listing, start-up prefetch, mount). */
  ms: number;
  /** Pages the start-up prefetch put in the cache, how many of them the prefetch hint named, and the storage
   *  node round trips (listing included) it took: the hint's pages come in bulk, not one by one. */
  prefetchPages: number;
  hintPages: number;
  roundTrips: number;
}

export type FuseEvent =
  | { type: 'shipped'; lsn: number; ms: number; bytes: number }
  | { type: 'fenced'; message: string }
  | { type: 'ship_failed'; message: string }
  | { type: 'exit'; code: number | null; signal: string | null };

export type ToChild =
  | { t: 'start'; config: MountConfig }
  | { t: 'stats'; id: number }
  /** The compute's start is over: the pages read from now on are not the start's (no reply). */
  | { t: 'start_done' }
  | { t: 'stop' };

export type FromChild =
  | { t: 'ready'; info: StartInfo }
  | { t: 'start_failed'; message: string }
  /** One JSON line of the child's pino logger, for the host's logger. */
  | { t: 'log'; line: string }
  | { t: 'event'; event: FuseEvent }
  | { t: 'stats'; id: number; stats: FuseStats }
  | { t: 'stopped'; lsn: number }
  | { t: 'stop_failed'; message: string };

/** Data paths that are never shipped: Postgres' own per-run files. */
export const ALWAYS_LOCAL = ['postmaster.pid', 'postmaster.opts'];
