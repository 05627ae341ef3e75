// BackendKeyData the proxy issues to wire clients, mapped to the compute's real key. Clients never learn a
// compute's pid or secret, and a CancelRequest only reaches the backend whose proxy-issued key it carries.
import { randomInt, timingSafeEqual } from 'node:crypto';
import { sendCancel } from '../compute/connection.ts';

interface Target {
  secret: number;
  host: string;
  port: number;
  pid: number;
  backendSecret: number;
}

export class CancelRegistry {
  private readonly keys = new Map<number, Target>();

  issue(host: string, port: number, pid: number, backendSecret: number): { pid: number; secret: number } {
    let key: number;
    do key = randomInt(1, 2 ** 31 - 1);
    while (this.keys.has(key));
    const secret = randomInt(-(2 ** 31), 2 ** 31 - 1);
    this.keys.set(key, { secret, host, port, pid, backendSecret });
    return { pid: key, secret };
  }

  /** Points an issued key at another backend (the session moved to a new compute); the client's key is kept. */
  retarget(pid: number, host: string, port: number, backendPid: number, backendSecret: number): void {
    const t = this.keys.get(pid);
    if (t) this.keys.set(pid, { ...t, host, port, pid: backendPid, backendSecret });
  }

  release(pid: number): void {
    this.keys.delete(pid);
  }

  /** Forwards a client's CancelRequest to the right compute; unknown or wrong keys are ignored silently. */
  async cancel(pid: number, secret: number): Promise<boolean> {
    const t = this.keys.get(pid);
    if (!t) return false;
    const a = Buffer.alloc(4);
    const b = Buffer.alloc(4);
    a.writeInt32BE(t.secret);
    b.writeInt32BE(secret | 0);
    if (!timingSafeEqual(a, b)) return false;
    await sendCancel(t.host, t.port, t.pid, t.backendSecret);
    return true;
  }
}
