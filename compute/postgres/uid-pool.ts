// Each running compute of the postgres engine gets a uid of its own, so that its postmaster cannot read another
// compute's mount (each FUSE root is mode 0700 with default_permissions) nor signal its processes. The uids have no
// /etc/passwd entry (PostgreSQL does not need one); a stopped compute's uid is reused.
const DEFAULT_BASE = 2_000_000;
const DEFAULT_SIZE = 100_000;

export class UidPool {
  private readonly base: number;
  private readonly size: number;
  private readonly used = new Set<number>();

  constructor(base = DEFAULT_BASE, size = DEFAULT_SIZE) {
    this.base = base;
    this.size = size;
  }

  /** The lowest free uid (used as the gid too). */
  take(): number {
    for (let i = 0; i < this.size; i++) {
      const uid = this.base + i;
      if (!this.used.has(uid)) {
        this.used.add(uid);
        return uid;
      }
    }
    throw new Error(`all ${this.size} compute uids from ${this.base} are in use`);
  }

  release(uid: number): void {
    this.used.delete(uid);
  }
}
