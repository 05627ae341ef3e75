// The kernel side of a mount: checks that FUSE can work here (with what to install or do when it cannot),
// lazily unmounts a stale mount left at the mountpoint, and mounts through fuse-native with the options the
// spike proved (docs/design/postgres-engine.md): allow_other + default_permissions (isolation between computes),
// no per-operation timeout (a slow fsync must not turn into ETIMEDOUT and a PANIC), and big_writes and
// max_write=131072 injected through fsname, as fuse-native has no option for them (128 KiB writes, not 4 KiB), and
// so is negative_timeout (the kernel caches absences too).
// Not hard_remove: with it libfuse2 answers ENOENT to every read, write, fstat and fsync of a file unlinked while
// open (its high-level API finds no path for the node and never calls us); without it, libfuse renames such a
// file to `.fuse_hidden...`, which ops.ts ships as the unlink and keeps serving until the last close.
import { execFile } from 'node:child_process';
import { access, mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import type Fuse from 'fuse-native';

const run = promisify(execFile);
const MOUNT_TIMEOUT_MS = 30_000;

/** The fuse-native class, loaded at run time so that a missing libfuse2 is an error we can explain. */
export type FuseClass = typeof Fuse;

/** Checks root, /dev/fuse, fusermount and fuse-native (libfuse2); the fuse-native class. */
export function preflight(): Promise<FuseClass> {
  checked ??= check();
  return checked;
}

/**
 * Done once per process, and by a spare FUSE server before it is given a mount (compute/fuse/main.ts): the
 * `fusermount -V` child and the native module's load took 30-90 ms of every start.
 */
let checked: Promise<FuseClass> | null = null;

async function check(): Promise<FuseClass> {
  if (process.getuid?.() !== 0) {
    throw new Error('the FUSE server must run as root (it mounts with allow_other and serves files owned by the compute uid): run the compute host as root');
  }
  try {
    await access('/dev/fuse');
  } catch {
    throw new Error('/dev/fuse is missing: load the fuse module (modprobe fuse), or run the container with --device /dev/fuse --cap-add SYS_ADMIN');
  }
  try {
    await run('fusermount', ['-V']);
  } catch {
    throw new Error('fusermount is missing (needed to unmount): apt-get install fuse3');
  }
  try {
    return createRequire(import.meta.url)('fuse-native') as FuseClass;
  } catch (e) {
    throw new Error(`fuse-native could not be loaded (${(e as Error).message}): apt-get install libfuse2 fuse3, then npm ci`);
  }
}

/** Is `dir` a mount point now? (from /proc/self/mountinfo; field 5 is the mount point, with octal escapes) */
async function isMountPoint(dir: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const unoctal = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  return info.split('\n').some((line) => unoctal(line.split(' ')[4] ?? '') === dir);
}

/** `fusermount -uz dir`, ignoring "not mounted". */
export async function lazyUnmount(dir: string): Promise<void> {
  try {
    await run('fusermount', ['-uz', dir]);
  } catch {
    // not mounted (or already gone): nothing to do
  }
}

/** Creates the mountpoint if missing; a mount still there (a dead FUSE server's) is lazily unmounted first. */
export async function prepareMountpoint(mountpoint: string): Promise<string> {
  const dir = resolve(mountpoint);
  if (await isMountPoint(dir)) await lazyUnmount(dir);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** fuse-native's stat encoding (its getStatArray, which it does not export). */
function statArray(st: Fuse.Stat): Uint32Array {
  const a = new Uint32Array(18);
  const put64 = (i: number, n: number): void => {
    a[i] = n % 4294967296;
    a[i + 1] = Math.floor(n / 4294967296);
  };
  const ms = (t: Date | number): number => (typeof t === 'number' ? t : t.getTime());
  a[0] = st.mode;
  a[1] = st.uid;
  a[2] = st.gid;
  put64(3, st.size);
  a[5] = st.dev ?? 0;
  a[6] = st.nlink ?? 1;
  a[7] = st.ino ?? 0;
  a[8] = st.rdev ?? 0;
  a[9] = st.blksize ?? 0;
  put64(10, st.blocks ?? 0);
  put64(12, ms(st.atime));
  put64(14, ms(st.mtime));
  put64(16, ms(st.ctime));
  return a;
}

type Signal = (err: number, stat?: Uint32Array) => void;

/**
 * fuse-native 2.2.6 answers fgetattr (fstat of an open file) by calling ops.getattr with the path only; a file
 * unlinked while open (hard_remove) then has no path. This sends it to ops.fgetattr with the fd.
 */
function routeFgetattr(fuse: Fuse, ops: Fuse.Operations): void {
  const fgetattr = ops.fgetattr;
  if (!fgetattr) return;
  (fuse as unknown as { _op_fgetattr: (signal: Signal, path: string, fd: number) => void })._op_fgetattr = (signal, path, fd) => {
    fgetattr(path, fd, (err, st) => (err || !st ? signal(err || -1) : signal(0, statArray(st))));
  };
}

/** How long the kernel keeps attributes, names and absences (see mountFuse). */
const CACHE_SECONDS = 3600;

/** Mounts `ops` at `dir` (which must exist); resolves once the kernel sent FUSE_INIT, i.e. the mount is live. */
export function mountFuse(FuseCtor: FuseClass, dir: string, ops: Fuse.Operations): Promise<Fuse> {
  const fuse = new FuseCtor(dir, ops, {
    allowOther: true,
    defaultPermissions: true,
    // Every change to the mount goes through this kernel mount (Postgres' I/O; the server's own writes happen only
    // with Postgres stopped): the kernel's page cache, attributes, names and absences stay right as long as it keeps
    // them. Long timeouts spare a round trip to this process on each stat, lookup and failed open (Postgres probes
    // every relation's _fsm and _vm forks): a backend's start and a start's recovery make hundreds of them.
    kernelCache: true,
    attrTimeout: CACHE_SECONDS,
    entryTimeout: CACHE_SECONDS,
    fsname: `lakebase,big_writes,max_write=131072,negative_timeout=${CACHE_SECONDS}`,
    timeout: false,
    force: false,
    mkdir: false,
  });
  routeFgetattr(fuse, ops);
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`mounting ${dir} did not complete in ${MOUNT_TIMEOUT_MS / 1000} s`)), MOUNT_TIMEOUT_MS);
    fuse.mount((err) => {
      clearTimeout(timer);
      if (err) reject(new Error(`mounting ${dir} failed (${err.message}): is FUSE usable here (/dev/fuse, root, apt-get install libfuse2 fuse3)?`));
      else resolvePromise(fuse);
    });
  });
}

/** Unmounts (fusermount -uz, then libfuse's own unmount). */
export function unmountFuse(fuse: Fuse): Promise<void> {
  return new Promise((resolvePromise, reject) => fuse.unmount((err) => (err ? reject(err) : resolvePromise())));
}
