// The host's heartbeat to the control plane (control-plane/http/host-api.ts): every second it says who it is
// (name, API URL, engines, memory) and which computes it runs; the first one registers it. The answer names the
// computes this host must stop: ones it lost while it was taken out (hung or cut off past the control plane's
// timeout, their endpoints now woken elsewhere) or that run elsewhere now. Those computes are already fenced by
// the storage node's writer generation; stopping them frees their memory and their ports.
import type { Logger } from '../../lib/logger.ts';
import type { ServiceError } from '../../lib/errors.ts';
import { InternalClient } from '../../lib/internal-client.ts';
import type { EngineName } from './api-types.ts';
import type { ComputeHost } from './host.ts';

export interface HeartbeatOptions {
  controlPlaneUrl: string;
  /** The compute hosts' API token: the control plane's credential for this host, and this host's to register. */
  token?: string;
  name: string;
  /** This host's control API as the control plane reaches it. */
  url: string;
  engines: EngineName[];
  /** Why an engine does not run here (what to install), said to the control plane, which says it to API users. */
  unavailable?: Partial<Record<EngineName, string>>;
  memoryBudgetBytes: number;
  intervalMs: number;
  log: Logger;
}

/** Starts heartbeating; returns a stop. Beats never overlap: the next starts `intervalMs` after one ends. */
export function startHeartbeat(host: ComputeHost, o: HeartbeatOptions): () => void {
  const client = new InternalClient(o.controlPlaneUrl, { service: 'control plane', kind: 'control_plane', token: o.token, timeoutMs: Math.max(2000, o.intervalMs * 2) });
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let failing = false;
  let registered = false;
  const beat = async () => {
    try {
      // describe() only: asking every compute for fresh counters would make the beat as slow as the busiest one
      const computes = host.brief().map((c) => ({ id: c.computeId, host: c.host, port: c.port, engine: c.engine }));
      const body = { name: o.name, url: o.url, engines: o.engines, unavailable: o.unavailable ?? {}, memoryBudgetBytes: o.memoryBudgetBytes, memoryUsedBytes: host.reservedBytes(), computes };
      const answer = await client.json<{ stop: string[] }>('POST', '/hosts/v1/heartbeat', body);
      if (!registered || failing) o.log.info({ controlPlane: o.controlPlaneUrl, name: o.name }, registered ? 'heartbeats reach the control plane again' : 'registered with the control plane');
      registered = true;
      failing = false;
      for (const id of answer.stop) stopLost(host, id, o.log);
    } catch (e) {
      if (!failing) o.log.warn({ controlPlane: o.controlPlaneUrl, err: (e as Error).message, status: (e as ServiceError).status }, 'heartbeat to the control plane failed; retrying every interval');
      failing = true;
    }
  };
  const loop = () => {
    if (stopped) return;
    void beat().finally(() => {
      if (!stopped) timer = setTimeout(loop, o.intervalMs);
    });
  };
  loop();
  return () => {
    stopped = true;
    clearTimeout(timer);
    client.close();
  };
}

/** At once, no shutdown checkpoint: the compute is fenced (its writes are refused), so a clean stop could only hang. */
function stopLost(host: ComputeHost, computeId: string, log: Logger): void {
  log.warn({ computeId }, 'the control plane placed this compute elsewhere while this host was taken out: stopping it (it is fenced, it cannot write)');
  host.stop(computeId, { immediate: true }).catch((e: unknown) => log.warn({ computeId, err: String(e) }, 'stopping a lost compute failed'));
}
