// The compute hosts this control plane places computes on. A host registers itself with its first heartbeat
// (compute/host/heartbeat.ts: its name, API URL, engines, memory and the computes it runs) and stays live while
// heartbeats keep coming; one silent for longer than the timeout (hung, partitioned, gone) is dead: nothing is
// placed on it and its endpoints are woken elsewhere (endpoints.ts; the storage node's writer generation fences
// the compute it left behind). A dead host that heartbeats again rejoins. Hosts named by --compute-host are static:
// they send no heartbeat and are always live, as before registration existed. The registry is soft state: after a
// control-plane restart every host is known again within one heartbeat interval.
import type { EngineName } from '../engines.ts';
import type { Logger } from '../../lib/logger.ts';
import { ComputeHostClient } from '../compute-host-client.ts';

/** What a compute host reports with each heartbeat (POST /hosts/v1/heartbeat). */
export interface HeartbeatReport {
  /** Unique among hosts: a restarted host keeps its name. */
  name: string;
  /** Its control API, as the control plane reaches it. */
  url: string;
  engines: EngineName[];
  /** Why an engine does not run there (what to install). */
  unavailable?: Partial<Record<EngineName, string>>;
  memoryBudgetBytes: number;
  memoryUsedBytes: number;
  /** The computes it runs, with the address each serves Postgres on. */
  computes: { id: string; host: string; port: number; engine: EngineName }[];
}

export interface ComputeHostRecord {
  name: string;
  url: string;
  client: ComputeHostClient;
  /** Named by --compute-host: never times out. */
  static: boolean;
  state: 'live' | 'dead';
  engines: EngineName[] | null;
  unavailable: Partial<Record<EngineName, string>>;
  memoryBudgetBytes: number | null;
  memoryUsedBytes: number | null;
  /** As last reported; null for a static host. */
  computes: HeartbeatReport['computes'] | null;
  registeredAt: number;
  lastHeartbeatAt: number | null;
}

/** How long a host whose heartbeats are late has to answer a direct probe. */
const PROBE_MS = 2000;

export interface HostEvents {
  /** A host missed its heartbeats: whatever ran there is lost to this control plane. */
  dead(host: ComputeHostRecord): void;
}

export class HostRegistry {
  private readonly hosts = new Map<string, ComputeHostRecord>();
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private events: HostEvents = { dead: () => {} };
  private timer: NodeJS.Timeout | null = null;

  constructor(staticUrls: string[], opts: { token?: string; heartbeatTimeoutMs: number; log: Logger }) {
    this.token = opts.token;
    this.timeoutMs = opts.heartbeatTimeoutMs;
    this.log = opts.log;
    for (const url of staticUrls) {
      const client = new ComputeHostClient(url, this.token);
      this.hosts.set(client.baseUrl, {
        name: client.baseUrl, url: client.baseUrl, client, static: true, state: 'live', engines: null, unavailable: {},
        memoryBudgetBytes: null, memoryUsedBytes: null, computes: null, registeredAt: Date.now(), lastHeartbeatAt: null,
      });
    }
  }

  on(events: HostEvents): void {
    this.events = events;
  }

  /** Records a heartbeat; a new host (or a new URL under a known name) is registered, a dead one rejoins. */
  heartbeat(r: HeartbeatReport, now = Date.now()): ComputeHostRecord {
    const url = new ComputeHostClient(r.url).baseUrl;
    let h = this.hosts.get(url);
    if (!h) {
      for (const [oldUrl, old] of this.hosts) if (old.name === r.name && !old.static) this.forget(oldUrl, old);
      h = {
        name: r.name, url, client: new ComputeHostClient(url, this.token), static: false, state: 'live', engines: r.engines, unavailable: r.unavailable ?? {},
        memoryBudgetBytes: r.memoryBudgetBytes, memoryUsedBytes: r.memoryUsedBytes, computes: r.computes, registeredAt: now, lastHeartbeatAt: now,
      };
      this.hosts.set(url, h);
      this.log.info({ host: r.name, url, engines: r.engines, memoryBudgetMiB: Math.round(r.memoryBudgetBytes / 1048576) }, 'compute host registered');
      return h;
    }
    if (h.state === 'dead') this.log.warn({ host: h.name, url, silentMs: now - (h.lastHeartbeatAt ?? now) }, 'compute host heartbeats again: it rejoins');
    Object.assign(h, { name: r.name, state: 'live', engines: r.engines, unavailable: r.unavailable ?? {}, memoryBudgetBytes: r.memoryBudgetBytes, memoryUsedBytes: r.memoryUsedBytes, computes: r.computes, lastHeartbeatAt: now });
    return h;
  }

  private forget(url: string, h: ComputeHostRecord): void {
    this.hosts.delete(url);
    h.client.close();
    if (h.state === 'live') this.events.dead(h);
  }

  /**
   * Marks dead (and tells `dead`) the hosts silent past the timeout that do not answer a direct probe either: a
   * host busy starting many computes may send its beats late, and taking it out would kill healthy computes.
   * The sweep loop calls it every second.
   */
  async sweep(now = Date.now()): Promise<void> {
    const late = [...this.hosts.values()].filter((h) => !h.static && h.state === 'live' && h.lastHeartbeatAt !== null && now - h.lastHeartbeatAt > this.timeoutMs);
    await Promise.all(late.map(async (h) => {
      if (await h.client.answers(PROBE_MS)) {
        this.log.warn({ host: h.name, silentMs: now - (h.lastHeartbeatAt ?? now) }, `compute host ${h.name} sends no heartbeat but answers: kept (busy?)`);
        return;
      }
      if (h.state !== 'live' || (h.lastHeartbeatAt ?? 0) > now - this.timeoutMs) return; // it beat meanwhile
      h.state = 'dead';
      this.log.warn({ host: h.name, url: h.url, silentMs: now - (h.lastHeartbeatAt ?? now) }, `compute host ${h.name} missed its heartbeats and does not answer: taken out, its endpoints wake elsewhere`);
      this.events.dead(h);
    }));
  }

  startSweeping(intervalMs = 1000): void {
    const loop = () => {
      void this.sweep().finally(() => {
        if (this.timer) this.timer = setTimeout(loop, intervalMs).unref();
      });
    };
    this.timer = setTimeout(loop, intervalMs).unref();
  }

  get(url: string): ComputeHostRecord | undefined {
    return this.hosts.get(url);
  }

  isLive(url: string): boolean {
    return this.hosts.get(url)?.state === 'live';
  }

  /** Every host, live and dead (the admin view). */
  all(): ComputeHostRecord[] {
    return [...this.hosts.values()];
  }

  /** Why no live host runs `engine`, as the hosts said it ("compute-host-1: ... is missing: apt-get install ..."). */
  whyNot(engine: EngineName): string {
    const said = this.all().filter((h) => h.state === 'live' && h.unavailable[engine]).map((h) => `${h.name}: ${h.unavailable[engine]}`);
    return said.length > 0 ? said.join('; ') : 'no live compute host runs it';
  }

  /** Hosts that can take a compute of `engine` (a static host says nothing of its engines: it may). */
  live(engine?: EngineName): ComputeHostRecord[] {
    return this.all().filter((h) => h.state === 'live' && (!engine || !h.engines || h.engines.includes(engine)));
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const h of this.hosts.values()) h.client.close();
  }
}
