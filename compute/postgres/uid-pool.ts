// Each running compute of the postgres engine gets a uid of its own, so that its postmaster cannot read another
// compute's mount (each FUSE root is mode 0700 with default_permissions) nor signal its processes, and so that a
// kill can end every process of the compute (compute/postgres/process-stats.ts killUid). The uids have no
// /etc/passwd entry (PostgreSQL does not need one).
//
// A uid must be unique on the MACHINE, not only in this host: several compute hosts may run here (tests do), and one
// host killing "every process of uid U" must never reach another's compute. So a uid is leased with a lock file in
// a root-only directory (created exclusively, holding the owner's pid); a lease whose pid is gone is taken over.
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pidsOfUid } from './process-stats.ts';
import { pidAlive } from '../../lib/pid-alive.ts';

const DEFAULT_BASE = 3_000_000;
const DEFAULT_SIZE = 100_000;

export class UidPool {
  private readonly base: number;
  private readonly size: number;
  private readonly dir: string;
  private readonly held = new Set<number>();

  constructor(opts: { base?: number; size?: number; dir?: string } = {}) {
    this.base = opts.base ?? DEFAULT_BASE;
    this.size = opts.size ?? DEFAULT_SIZE;
    this.dir = opts.dir ?? path.join(tmpdir(), 'lakebase-compute-uids');
  }

  /** Leases the lowest uid free on this machine (used as the gid too). */
  async take(): Promise<number> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (let i = 0; i < this.size; i++) {
      const uid = this.base + i;
      if (this.held.has(uid)) continue;
      if (await this.lease(uid)) {
        this.held.add(uid);
        return uid;
      }
    }
    throw new Error(`all ${this.size} compute uids from ${this.base} are in use on this machine`);
  }

  private async lease(uid: number): Promise<boolean> {
    const file = path.join(this.dir, String(uid));
    try {
      const f = await open(file, 'wx', 0o600);
      await f.writeFile(String(process.pid));
      await f.close();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number(await readFile(file, 'utf8').catch(() => '0'));
      if (owner > 0 && pidAlive(owner)) return false;
      // the host that held it is gone: take it over (once; a concurrent taker that wins makes this fail again)
      await rm(file, { force: true });
      if (!(await this.lease(uid))) return false;
      // a process still running under it (left by the host that was killed) means the uid is not clean: skip it
      // (a lease released cleanly had its processes killed first, so only a takeover needs this look)
      return (await pidsOfUid(uid)).length === 0;
    }
    return true;
  }

  async release(uid: number): Promise<void> {
    if (!this.held.delete(uid)) return;
    await rm(path.join(this.dir, String(uid)), { force: true });
  }
}

