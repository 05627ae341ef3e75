// Types of fuse-native 2.2.6 (it ships none): the parts compute/fuse uses. Handlers answer through `cb` with 0 or
// a negative errno first; read and write answer the byte count instead. Read from its index.js.
declare module 'fuse-native' {
  namespace Fuse {
    /** Times may be Dates or epoch milliseconds. */
    interface Stat {
      mode: number;
      uid: number;
      gid: number;
      size: number;
      mtime: Date | number;
      atime: Date | number;
      ctime: Date | number;
      nlink?: number;
      ino?: number;
      dev?: number;
      rdev?: number;
      blksize?: number;
      blocks?: number;
    }

    interface Statfs {
      bsize: number;
      frsize: number;
      blocks: number;
      bfree: number;
      bavail: number;
      files: number;
      ffree: number;
      favail: number;
      fsid: number;
      flag: number;
      namemax: number;
    }

    type Done = (err: number) => void;
    type StatCb = (err: number, stat?: Stat) => void;
    type FdCb = (err: number, fd?: number) => void;
    /** The byte count (>= 0) or a negative errno. */
    type CountCb = (result: number) => void;

    interface Operations {
      init?(cb: Done): void;
      statfs?(path: string, cb: (err: number, statfs?: Statfs) => void): void;
      getattr?(path: string, cb: StatCb): void;
      /** fuse-native calls getattr instead unless its `_op_fgetattr` is replaced (mount.ts does). */
      fgetattr?(path: string, fd: number, cb: StatCb): void;
      access?(path: string, mode: number, cb: Done): void;
      readdir?(path: string, cb: (err: number, names?: string[]) => void): void;
      opendir?(path: string, flags: number, cb: FdCb): void;
      releasedir?(path: string, fd: number, cb: Done): void;
      fsyncdir?(path: string, datasync: number, fd: number, cb: Done): void;
      open?(path: string, flags: number, cb: FdCb): void;
      create?(path: string, mode: number, cb: FdCb): void;
      release?(path: string, fd: number, cb: Done): void;
      flush?(path: string, fd: number, cb: Done): void;
      fsync?(path: string, datasync: number, fd: number, cb: Done): void;
      /** `buf` is libfuse's memory, valid only until cb is called. */
      read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: CountCb): void;
      /** `buf` is libfuse's memory, valid only until cb is called: copy it first. */
      write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: CountCb): void;
      truncate?(path: string, size: number, cb: Done): void;
      ftruncate?(path: string, fd: number, size: number, cb: Done): void;
      utimens?(path: string, atime: number, mtime: number, cb: Done): void;
      chmod?(path: string, mode: number, cb: Done): void;
      chown?(path: string, uid: number, gid: number, cb: Done): void;
      mkdir?(path: string, mode: number, cb: Done): void;
      rmdir?(path: string, cb: Done): void;
      unlink?(path: string, cb: Done): void;
      rename?(src: string, dest: string, cb: Done): void;
      link?(src: string, dest: string, cb: Done): void;
      symlink?(target: string, path: string, cb: Done): void;
      readlink?(path: string, cb: (err: number, target?: string) => void): void;
    }

    interface Options {
      allowOther?: boolean;
      allowRoot?: boolean;
      autoUnmount?: boolean;
      defaultPermissions?: boolean;
      /** Joined into `-o fsname=...`: extra options can ride along after a comma. */
      fsname?: string;
      subtype?: string;
      kernelCache?: boolean;
      autoCache?: boolean;
      entryTimeout?: number;
      attrTimeout?: number;
      acAttrTimeout?: number;
      maxRead?: number;
      debug?: boolean;
      /** Per-operation timeout in ms (default 15 s, answered ETIMEDOUT); false: none. */
      timeout?: number | false | Record<string, number | false>;
      /** Unmount a dead mount (ENOTCONN) at the mountpoint first. */
      force?: boolean;
      /** Create the mountpoint if missing. */
      mkdir?: boolean;
    }
  }

  class Fuse {
    constructor(mnt: string, ops: Fuse.Operations, opts?: Fuse.Options);
    readonly mnt: string;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    /** `fusermount -uz <mnt>`. */
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
  }

  export = Fuse;
}
