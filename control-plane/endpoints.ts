// Endpoint lifecycle: wake (start a compute for the endpoint's branch, once however many callers ask at the same
// time) and suspend (stop it), plus the loop that suspends endpoints idle longer than their suspend timeout. A
// wake waits while the compute host queues its start for memory (its pending state shows in the API); a host
// that cannot take it at all is passed over for the next one.
import { randomBytes } from 'node:crypto';
import { ServiceError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { CAPACITY_CODES } from '../compute/host/host-error.ts';
import { engineOf, type EngineName } from './engines.ts';
import { ApiError } from './errors.ts';
import { ComputeHostClient, ComputeHostError } from './compute-host-client.ts';
import type { ComputeInfo, StartAnswer, StartComputeRequest } from './compute-host-client.ts';
import type { AdminSqlResult } from '../compute/host/api-types.ts';
import { effectiveSuspendTimeout } from './model.ts';
import type { StateStore } from './state-store.ts';

export interface ComputeLocation {
  host: string;
  port: number;
  hostUrl: string;
  engine: EngineName;
  /**
   * The steps of the start that produced this location, ms each: `host` (the compute host's whole answer), then the
   * host's own (`host.check`, `host.launch`, ...); only on the wake that started the compute (the proxy's Server-Timing).
   */
  phases?: Record<string, number>;
}

/** The proxies' wake of an unknown endpoint: 404 ENDPOINT_NOT_FOUND, as the internal API answers it. */
export class EndpointNotFoundError extends ServiceError {
  override name = 'EndpointNotFoundError';
  constructor(id: string) {
    super(404, 'ENDPOINT_NOT_FOUND', `endpoint ${id} not found`);
  }
}

/** A wake of a disabled endpoint: 406 ENDPOINT_DISABLED, as the internal API answers it (Neon's proxy contract). */
export class EndpointDisabledError extends ServiceError {
  override name = 'EndpointDisabledError';
  constructor(id: string) {
    super(406, 'ENDPOINT_DISABLED', `endpoint ${id} is disabled`, { kind: 'user' });
  }
}

export interface EndpointEvents {
  wake?(seconds: number): void;
  suspend?(): void;
}

export class EndpointManager {
  private readonly state: StateStore;
  private readonly hosts: ComputeHostClient[];
  private readonly log: Logger;
  private readonly events: EndpointEvents;
  /** Where each running compute is; lost on restart and rebuilt from the hosts (reconcile). */
  private readonly running = new Map<string, ComputeLocation>();
  private readonly suspendHooks: ((endpointId: string) => Promise<void>)[] = [];
  private readonly waking = new Map<string, Promise<ComputeLocation>>();
  /** Endpoints whose compute is being started (waiting for a host's memory, or starting). */
  private readonly starting = new Set<string>();
  private readonly lastActivity = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(state: StateStore, hostUrls: string[], log: Logger, events: EndpointEvents = {}, hostApiToken?: string) {
    this.state = state;
    this.hosts = hostUrls.map((u) => new ComputeHostClient(u, hostApiToken));
    this.log = log;
    this.events = events;
  }

  /** Learns which computes are already running (after a control-plane restart) and fixes endpoint states. */
  async reconcile(): Promise<void> {
    for (const h of this.hosts) {
      let list: ComputeInfo[] = [];
      try {
        list = await h.list();
      } catch (e) {
        this.log.warn({ err: e, host: h.baseUrl }, 'compute host not reachable during reconcile');
        continue;
      }
      for (const c of list) {
        if (this.state.current.endpoints[c.computeId]) this.running.set(c.computeId, { host: c.host, port: c.port, hostUrl: h.baseUrl, engine: c.engine ?? 'pglite' });
        else await h.stop(c.computeId); // a compute of an endpoint that no longer exists
      }
    }
    await this.state.mutate((s) => {
      for (const ep of Object.values(s.endpoints)) ep.current_state = this.running.has(ep.id) ? 'active' : 'idle';
    });
  }

  location(endpointId: string): ComputeLocation | undefined {
    return this.running.get(endpointId);
  }

  /** Neon's `pending_state`: 'active' while a wake starts the endpoint's compute (it may wait for memory). */
  pendingState(endpointId: string): 'active' | undefined {
    return this.starting.has(endpointId) ? 'active' : undefined;
  }

  noteActivity(endpointId: string): void {
    this.lastActivity.set(endpointId, Date.now());
  }

  /**
   * Starts the endpoint's compute unless it runs; concurrent callers share one start. A proxy calls this again
   * when it cannot reach the address it has, so a known location is checked with its host first (a host that
   * restarted, or was killed, no longer runs it).
   */
  wake(endpointId: string): Promise<ComputeLocation> {
    this.noteActivity(endpointId);
    let p = this.waking.get(endpointId);
    if (!p) {
      p = this.ensureRunning(endpointId).finally(() => this.waking.delete(endpointId));
      this.waking.set(endpointId, p);
    }
    return p;
  }

  private async ensureRunning(endpointId: string): Promise<ComputeLocation> {
    const known = this.running.get(endpointId);
    if (known) {
      const host = this.hosts.find((h) => h.baseUrl === known.hostUrl);
      const info = await host?.get(endpointId).catch(() => null);
      if (info && info.state !== 'failed' && info.state !== 'stopping' && info.state !== 'stopped') return known;
      this.running.delete(endpointId);
      if (info) await host?.stop(endpointId).catch(() => undefined); // a failed compute frees its slot first
      this.log.warn({ endpointId, host: known.hostUrl, state: info?.state ?? 'gone' }, 'compute is not serving (host restarted or compute failed); starting it again');
    }
    return this.start(endpointId);
  }

  private async start(endpointId: string): Promise<ComputeLocation> {
    const s = this.state.current;
    const ep = s.endpoints[endpointId];
    if (!ep) throw new EndpointNotFoundError(endpointId);
    if (ep.disabled) throw new EndpointDisabledError(endpointId);
    const branch = s.branches[ep.branch_id];
    const started = performance.now();
    const db = s.databases.find((d) => d.branch_id === branch.id);
    const project = s.projects[ep.project_id];
    const engine = project ? engineOf(project) : 'pglite';
    const req: StartComputeRequest = {
      computeId: endpointId,
      timelineId: branch.timeline_id,
      readOnly: ep.type === 'read_only',
      database: db?.name ?? 'neondb',
      // an endpoint that never suspends is not suspended for other starts either
      ...(effectiveSuspendTimeout(ep) < 0 ? { evictable: false } : {}),
      ...(engine === 'postgres' ? { engine, roles: s.roles.filter((r) => r.branch_id === branch.id).map((r) => ({ name: r.name, verifier: r.verifier })) } : {}),
    };
    this.starting.add(endpointId);
    let placed: { host: ComputeHostClient; info: StartAnswer };
    try {
      placed = await this.startOnSomeHost(req);
    } catch (e) {
      const ms = Math.round(performance.now() - started);
      this.log.warn({ endpointId, ms, code: (e as ServiceError).code, err: (e as Error).message }, `wake failed: ${(e as Error).message}`);
      throw e;
    } finally {
      this.starting.delete(endpointId);
    }
    const { host, info } = placed;
    const hostMs = performance.now() - started;
    const loc: ComputeLocation = { host: info.host, port: info.port, hostUrl: host.baseUrl, engine };
    this.running.set(endpointId, loc);
    this.lastActivity.set(endpointId, Date.now());
    this.noteActive(endpointId);
    const seconds = (performance.now() - started) / 1000;
    this.events.wake?.(seconds);
    this.log.info({ endpointId, timelineId: branch.timeline_id, ms: Math.round(seconds * 1000), port: info.port, phasesMs: info.phases }, 'endpoint woken');
    const phases: Record<string, number> = { host: Math.round(hostMs * 10) / 10 };
    for (const [name, ms] of Object.entries(info.phases ?? {})) phases[`host.${name}`] = ms;
    return { ...loc, phases };
  }

  /**
   * Records the endpoint as active. Not awaited by the wake: the compute already serves, and the state (what the
   * API shows) follows a few ms later in the same order as every other change; a control plane that restarts
   * before it lands learns the truth from the hosts (reconcile).
   */
  private noteActive(endpointId: string): void {
    this.state
      .mutate((d) => {
        const e = d.endpoints[endpointId];
        if (e) {
          e.current_state = 'active';
          e.last_active = new Date().toISOString();
        }
      })
      .catch((err: unknown) => this.log.warn({ endpointId, err: String(err) }, 'could not record the endpoint as active'));
  }

  /**
   * Starts the compute on the least loaded host; a host that refuses for memory (it cannot hold the compute, its
   * line of waiting starts is full, or the start waited there past its deadline) is passed over for the next.
   */
  private async startOnSomeHost(req: StartComputeRequest): Promise<{ host: ComputeHostClient; info: StartAnswer }> {
    let refusal: unknown;
    for (const host of this.hostsByLoad()) {
      try {
        return { host, info: await host.start(req) };
      } catch (e) {
        if (!(e instanceof ComputeHostError && CAPACITY_CODES.includes(e.code))) throw e;
        refusal ??= e;
        this.log.warn({ endpointId: req.computeId, host: host.baseUrl, code: e.code }, `compute host refused the start for memory: ${e.message}`);
      }
    }
    throw refusal ?? new ApiError(503, 'NO_COMPUTE_HOST', 'no compute host is configured');
  }

  private pickHost(): ComputeHostClient {
    return this.hostsByLoad()[0];
  }

  /** Least loaded first, by the computes this control plane placed there. */
  private hostsByLoad(): ComputeHostClient[] {
    const load = new Map<string, number>();
    for (const loc of this.running.values()) load.set(loc.hostUrl, (load.get(loc.hostUrl) ?? 0) + 1);
    return [...this.hosts].sort((a, b) => (load.get(a.baseUrl) ?? 0) - (load.get(b.baseUrl) ?? 0));
  }

  /**
   * Asks the running compute of the endpoint, if any, for a CHECKPOINT, waiting at most `waitMs`: a branch made at
   * the head right after starts from a recent checkpoint, so its first start (a crash recovery: the branch point is
   * no clean shutdown) replays next to nothing (a never-started PGlite branch: 204-271 ms of Postgres start against
   * 95 ms). Best effort: a suspended endpoint needs none (its stop was a shutdown checkpoint), and a failure or a
   * slow checkpoint only costs the branch's first start time.
   */
  async checkpointIfRunning(endpointId: string, database: string, waitMs: number): Promise<void> {
    const loc = this.running.get(endpointId);
    const host = loc && this.hosts.find((h) => h.baseUrl === loc.hostUrl);
    if (!host) return;
    const done = host.adminSql(endpointId, { database, statements: ['CHECKPOINT'] }).catch((e: unknown) => {
      this.log.warn({ endpointId, err: String(e) }, 'checkpoint before a branch failed; the branch starts with a longer recovery');
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
  }

  /** Runs statements as the superuser of the endpoint's compute, woken if suspended. */
  async adminSql(endpointId: string, database: string, statements: string[]): Promise<AdminSqlResult[]> {
    const loc = await this.wake(endpointId);
    const host = this.hosts.find((h) => h.baseUrl === loc.hostUrl);
    if (!host) throw new Error(`compute host ${loc.hostUrl} is no longer configured`);
    return (await host.adminSql(endpointId, { database, statements })).results;
  }

  /**
   * Background work on a running compute (the lake sync): never wakes it and never counts as activity. Null when
   * the endpoint's compute is not running.
   */
  async backgroundSql(endpointId: string, database: string, statements: string[]): Promise<AdminSqlResult[] | null> {
    const loc = this.running.get(endpointId);
    const host = loc && this.hosts.find((h) => h.baseUrl === loc.hostUrl);
    if (!host) return null;
    return (await host.adminSql(endpointId, { database, statements, background: true })).results;
  }

  /**
   * A compute for the control plane's own work (a snapshot export: read-only at a point in history), on the least
   * loaded host; no endpoint names it, so no client reaches it. The caller stops it when done.
   */
  async startEphemeral(req: Omit<StartComputeRequest, 'computeId'>): Promise<{ computeId: string; sql(statements: string[]): Promise<AdminSqlResult[]>; stop(): Promise<void> }> {
    if (this.hosts.length === 0) throw new ApiError(503, 'NO_COMPUTE_HOST', 'no compute host is configured, so no compute can start');
    const host = this.pickHost();
    const computeId = `ephemeral-${randomBytes(6).toString('hex')}`;
    await host.start({ ...req, computeId }); // evictable: an orphan (the control plane died mid-export) goes when room is needed
    const database = req.database ?? 'neondb';
    return {
      computeId,
      // not background: its queries are what keeps the host from reclaiming it as idle
      sql: async (statements) => (await host.adminSql(computeId, { database, statements })).results,
      stop: () => host.stop(computeId),
    };
  }

  /** Work that must run on a compute before it suspends (the lake sync flushes what it captured). */
  beforeSuspend(fn: (endpointId: string) => Promise<void>): void {
    this.suspendHooks.push(fn);
  }

  /** Makes an engine's template timeline on a compute host; answers its id. */
  async createTemplate(engine: EngineName): Promise<string> {
    if (this.hosts.length === 0) throw new ApiError(503, 'ENGINE_UNAVAILABLE', `the ${engine} engine needs a compute host, and none is configured`);
    try {
      return (await this.pickHost().createTemplate(engine)).timelineId;
    } catch (e) {
      throw new ApiError(503, 'ENGINE_UNAVAILABLE', `the ${engine} engine is not available: ${(e as Error).message}`);
    }
  }

  async suspend(endpointId: string): Promise<void> {
    await this.waking.get(endpointId)?.catch(() => undefined);
    const loc = this.running.get(endpointId);
    if (loc) {
      for (const hook of this.suspendHooks) {
        await hook(endpointId).catch((e: unknown) => this.log.warn({ endpointId, err: String(e) }, 'work before a suspend failed; suspending anyway'));
      }
      const host = this.hosts.find((h) => h.baseUrl === loc.hostUrl);
      await host?.stop(endpointId);
      this.running.delete(endpointId);
      this.events.suspend?.();
      this.log.info({ endpointId }, 'endpoint suspended');
    }
    await this.state.mutate((d) => {
      const e = d.endpoints[endpointId];
      if (e) e.current_state = 'idle';
    });
  }

  /** Suspends endpoints whose computes saw no query for longer than their suspend timeout. */
  async suspendIdle(now = Date.now()): Promise<string[]> {
    const suspended: string[] = [];
    const byHost = new Map<string, ComputeInfo[]>();
    for (const h of this.hosts) {
      try {
        byHost.set(h.baseUrl, await h.list());
      } catch {
        // an unreachable host is handled by wake's retries; nothing to suspend there now
      }
    }
    for (const [id, loc] of [...this.running]) {
      const ep = this.state.current.endpoints[id];
      if (!ep) continue;
      const listed = byHost.get(loc.hostUrl);
      if (listed && !listed.some((c) => c.computeId === id)) {
        // The host answers but no longer runs it (restarted): the endpoint is idle until the next wake.
        this.running.delete(id);
        await this.state.mutate((d) => {
          const e = d.endpoints[id];
          if (e && !this.running.has(id)) e.current_state = 'idle';
        });
        continue;
      }
      const timeout = effectiveSuspendTimeout(ep);
      if (timeout < 0) continue;
      const info = byHost.get(loc.hostUrl)?.find((c) => c.computeId === id);
      if (info?.inTransaction) continue; // an open transaction is not idleness
      const hostActivity = info?.lastActivityAt ? Date.parse(info.lastActivityAt) : 0;
      const last = Math.max(hostActivity, this.lastActivity.get(id) ?? 0);
      if (now - last >= timeout * 1000) {
        await this.suspend(id);
        suspended.push(id);
      }
    }
    return suspended;
  }

  startSuspendLoop(intervalMs = 1000): void {
    this.timer = setInterval(() => {
      this.suspendIdle().catch((e: unknown) => this.log.warn({ err: e }, 'suspend loop failed'));
    }, intervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
  }
}
