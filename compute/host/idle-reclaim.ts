// Memory for waiting starts from idle computes: when starts wait in the admission line (admission.ts), the host
// suspends computes nobody used for `idleMs`, least recently used first (failed ones before all), as many as the
// line lacks. A suspend is the host's clean stop: the same as the control plane's own suspend after the endpoint's
// timeout, only earlier, and only under memory pressure; the next query wakes the endpoint again (the proxy finds
// the address gone and asks the control plane, which sees the host no longer runs it). Computes in a transaction,
// running or queueing a batch, still starting, or started with `evictable: false` (an endpoint that never
// suspends) are never picked.
import type { Logger } from '../../lib/logger.ts';
import type { EngineCompute } from './engine.ts';

export interface ReclaimDeps {
  /** Suspend computes idle at least this long; 0: never. */
  idleMs: number;
  computes(): Iterable<EngineCompute>;
  /** When the compute's start finished: its idle time counts from there at the earliest. */
  runningSince(computeId: string): number;
  /** Computes started with `evictable: false`, or being stopped already. */
  untouchable(computeId: string): boolean;
  /** The host's clean stop (it releases the compute's memory to the line). */
  stop(computeId: string): Promise<unknown>;
  onEvict(): void;
  log: Logger;
}

interface Candidate {
  compute: EngineCompute;
  /** Last activity (ms since the epoch); 0 for a failed compute. */
  at: number;
}

export class IdleReclaimer {
  private readonly deps: ReclaimDeps;
  /** Bytes that suspends in progress will free, by compute. */
  private readonly freeing = new Map<string, number>();
  private picking = false;

  constructor(deps: ReclaimDeps) {
    this.deps = deps;
  }

  /** Bytes the suspends in progress will free. */
  get freeingBytes(): number {
    let n = 0;
    for (const b of this.freeing.values()) n += b;
    return n;
  }

  /** The compute's memory is free (stopped) or will not be (its stop failed): it no longer counts as coming. */
  settled(computeId: string): void {
    this.freeing.delete(computeId);
  }

  /** Suspends idle computes for `missingBytes` the line lacks, beyond what suspends in progress will free. */
  reclaim(missingBytes: number): void {
    if (this.deps.idleMs <= 0 || this.picking || missingBytes - this.freeingBytes <= 0) return;
    this.picking = true;
    void this.idleComputes()
      .then((idle) => {
        let lacking = missingBytes - this.freeingBytes;
        for (const c of idle) {
          if (lacking <= 0) break;
          lacking -= c.compute.config.reservedBytes;
          this.suspend(c);
        }
      })
      .catch((e: unknown) => this.deps.log.warn({ err: String(e) }, 'looking for idle computes to suspend failed'))
      .finally(() => (this.picking = false));
  }

  /** Computes that may be suspended, least recently used first. */
  private async idleComputes(): Promise<Candidate[]> {
    const all = [...this.deps.computes()].filter((c) => !this.deps.untouchable(c.config.computeId) && !this.freeing.has(c.config.computeId));
    // a postgres compute knows its activity from a sample of pg_stat_activity: take a fresh one
    await Promise.all(all.filter((c) => c.engine === 'postgres' && c.state === 'running').map((c) => c.refreshStats()));
    const now = Date.now();
    const idle: Candidate[] = [];
    for (const compute of all) {
      if (this.deps.untouchable(compute.config.computeId)) continue;
      if (compute.state === 'failed') {
        idle.push({ compute, at: 0 });
        continue;
      }
      if (compute.state !== 'running') continue;
      const d = compute.describe();
      const at = Math.max(Date.parse(d.lastActivityAt), this.deps.runningSince(compute.config.computeId));
      if (!d.inTransaction && d.waitingBatches === 0 && now - at >= this.deps.idleMs) idle.push({ compute, at });
    }
    return idle.sort((a, b) => a.at - b.at);
  }

  private suspend(c: Candidate): void {
    const id = c.compute.config.computeId;
    this.freeing.set(id, c.compute.config.reservedBytes);
    this.deps.onEvict();
    const idleS = c.at === 0 ? null : Math.round((Date.now() - c.at) / 100) / 10;
    this.deps.log.info({ computeId: id, state: c.compute.state, idleS }, 'suspending a compute to make room for starts waiting for memory');
    this.deps.stop(id).catch((e: unknown) => {
      this.freeing.delete(id);
      this.deps.log.warn({ computeId: id, err: String(e) }, 'suspending a compute for waiting starts failed');
    });
  }
}
