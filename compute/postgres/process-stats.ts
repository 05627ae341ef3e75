// Resident memory of a compute's processes (every process of its uid and its FUSE server), from /proc. PSS
// rather than RSS: the backends share shared_buffers, which RSS would count once per process.
import { readdir, readFile } from 'node:fs/promises';

/** The summed PSS in bytes of the processes; 0 for those already gone. */
export async function pssOf(pids: number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) {
    const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
    const kb = /^Pss:\s+(\d+) kB/m.exec(rollup);
    if (kb) total += Number(kb[1]) * 1024;
  }
  return total;
}

/** Pids of every process whose real uid is `uid`. */
export async function pidsOfUid(uid: number): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const status = await readFile(`/proc/${name}/status`, 'utf8').catch(() => '');
    if (Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? -1) === uid) pids.push(Number(name));
  }
  return pids;
}

/**
 * Kills every process of a compute's uid and waits until none is left (at most `timeoutMs`). PostgreSQL makes each
 * backend the leader of its own process group, so neither the postmaster's death nor a signal to its group reaches
 * them; the uid, which belongs to this compute alone, does.
 */
export async function killUid(uid: number, timeoutMs = 5000): Promise<void> {
  if (uid === 0) throw new Error('refusing to kill the processes of uid 0');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = await pidsOfUid(uid);
    if (pids.length === 0 || Date.now() > deadline) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
