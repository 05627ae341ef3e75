// Endpoint lifecycle: wake (start a compute for the endpoint's branch, once however many callers ask at the same
// time) and suspend (stop it), plus the loop that suspends endpoints idle longer than their suspend timeout. A
// wake waits while the compute host queues its start for memory (its pending state shows in the API); a host
// that cannot take it at all is passed over for the next one. Hosts come from the registry (hosts/host-registry.ts):
// a host that misses its heartbeats loses its endpoints, which wake on another host at their next query, and
// when it heartbeats again it is told to stop the computes it lost (the storage node's writer generation has
// fenced them already: they cannot write).
import { randomBytes } from 'node:crypto';
import { ServiceError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { CAPACITY_CODES } from '../compute/host/host-error.ts';
import { engineOf, type EngineName } from './engines.ts';
import { ApiError } from './errors.ts';
import { ComputeHostError } from './compute-host-client.ts';
import type { ComputeHostClient, ComputeInfo, StartAnswer, StartComputeRequest } from './compute-host-client.ts';
import type { ComputeHostRecord, HeartbeatReport, HostRegistry } from './hosts/host-registry.ts';
import type { AdminSqlResult } from '../compute/host/api-types.ts';
import { effectiveSuspendTimeout } from './model.ts';
import type { StateStore } from './state-store.ts';
import type { StorageNodes } from './storage/storage-nodes.ts';

export interface ComputeLocation {
  host: string;
  port: number;
  hostUrl: string;
  engine: EngineName;
  /** The storage node the compute was started on (unknown for one learnt from a host's heartbeat). */
  storageUrl?: string;
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
  /** The endpoint's compute is gone from where proxies reached it (its host was taken out): drop that address. */
  moved?(endpointId: string): void;
}

/**
 * A compute no endpoint names (left by an endpoint deleted while its host was cut off, or started on the host by
 * hand) is stopped once heartbeats have shown it this long: long enough that no start in flight is mistaken for one.
 */
const STRAY_GRACE_MS = 30_000;

/** How long a wake asks a host whether it still runs a compute, or the suspend loop lists a host's computes. */
const PROBE_TIMEOUT_MS = 3000;

export class EndpointManager {
  private readonly state: StateStore;
  private readonly hosts: HostRegistry;
  /** Computes each host ran when it was taken out: stopped when it heartbeats again. */
  private readonly lost = new Map<string, Set<string>>();
  /** Ephemeral computes (exports) this control plane started: a heartbeat listing them is not a stray. */
  private readonly ephemeral = new Set<string>();
  /** Computes of no endpoint seen in heartbeats, and since when: stopped once past STRAY_GRACE_MS. */
  private readonly strays = new Map<string, number>();
  private readonly log: Logger;
  private readonly events: EndpointEvents;
  /** Where each running compute is; lost on restart and rebuilt from the hosts (reconcile). */
  private readonly running = new Map<string, ComputeLocation>();
  private readonly suspendHooks: ((endpointId: string) => Promise<void>)[] = [];
  private readonly waking = new Map<string, Promise<ComputeLocation>>();
  /** Endpoints whose compute is being started (waiting for a host's memory, or starting). */
  private readonly starting = new Set<string>();
  private readonly lastActivity = new Map<string, number>();
  /** Projects being moved to another storage node: their wakes wait for the move (hold()). */
  private readonly holds = new Map<string, Promise<unknown>>();
  private readonly storage: StorageNodes;
  /** Starts under way per host: concurrent wakes spread instead of all picking the host that looked emptiest. */
  private readonly placing = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(state: StateStore, hosts: HostRegistry, storage: StorageNodes, log: Logger, events: EndpointEvents = {}) {
    this.state = state;
    this.hosts = hosts;
    this.storage = storage;
    this.log = log;
    this.events = events;
    hosts.on({ dead: (h) => this.hostLost(h) });
  }

  private client(hostUrl: string): ComputeHostClient | undefined {
    return this.hosts.get(hostUrl)?.client;
  }

  /**
   * Learns which computes already run on the static hosts (after a control-plane restart) and fixes endpoint
   * states; registered hosts report theirs with their heartbeats (heartbeat()).
   */
  async reconcile(): Promise<void> {
    for (const h of this.hosts.all()) {
      if (!h.static) continue;
      let list: ComputeInfo[] = [];
      try {
        list = await h.client.list();
      } catch (e) {
        this.log.warn({ err: e, host: h.url }, 'compute host not reachable during reconcile');
        continue;
      }
      for (const c of list) {
        if (this.state.current.endpoints[c.computeId]) this.running.set(c.computeId, { host: c.host, port: c.port, hostUrl: h.url, engine: c.engine ?? 'pglite' });
        else await h.client.stop(c.computeId); // a compute of an endpoint that no longer exists
      }
    }
    await this.state.mutate((s) => {
      for (const ep of Object.values(s.endpoints)) ep.current_state = this.running.has(ep.id) ? 'active' : 'idle';
    });
  }

  /** The endpoints whose computes run on the host (the admin view). */
  placedOn(hostUrl: string): string[] {
    return [...this.running].filter(([, loc]) => loc.hostUrl === hostUrl).map(([id]) => id);
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
    const projectId = this.state.current.endpoints[endpointId]?.project_id;
    for (;;) {
      for (let held = projectId && this.holds.get(projectId); held; held = projectId && this.holds.get(projectId)) await held.catch(() => undefined);
      const known = await this.stillServing(endpointId);
      if (known) return known;
      // a move of the project began while the host was asked: wait for it, then start on its new node
      if (projectId && this.holds.has(projectId)) continue;
      const started = await this.start(endpointId);
      if (!projectId || started.storageUrl === this.storage.nodeOf(this.state.current, projectId).url) return started;
      // the project moved to another storage node while this compute started on the old one: it must not serve
      this.running.delete(endpointId);
      await this.client(started.hostUrl)?.stop(endpointId, { immediate: true }).catch(() => this.noteLost(started.hostUrl, endpointId));
    }
  }

  /** The endpoint's known compute if its host still runs it; else forgets it (a failed one is stopped first). */
  private async stillServing(endpointId: string): Promise<ComputeLocation | undefined> {
    const known = this.running.get(endpointId);
    if (known) {
      // a dead host is not asked; a live one that does not answer in time is passed over like a dead one (a
      // compute started elsewhere fences the one left there)
      const host = this.hosts.isLive(known.hostUrl) ? this.client(known.hostUrl) : undefined;
      const info = await host?.get(endpointId, PROBE_TIMEOUT_MS).catch(() => null);
      if (info && info.state !== 'failed' && info.state !== 'stopping' && info.state !== 'stopped') return known;
      this.running.delete(endpointId);
      if (info) await host?.stop(endpointId).catch(() => undefined); // a failed compute frees its slot first
      else this.noteLost(known.hostUrl, endpointId);
      this.log.warn({ endpointId, host: known.hostUrl, state: info?.state ?? 'gone' }, 'compute is not serving (host restarted, gone or hung, or compute failed); starting it again');
    }
    return undefined;
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
      storageUrl: this.storageFor(ep.project_id),
      readOnly: ep.type === 'read_only',
      database: db?.name ?? 'neondb',
      // an endpoint that never suspends is not suspended for other starts either
      ...(effectiveSuspendTimeout(ep) < 0 ? { evictable: false } : {}),
      ...(engine === 'postgres' ? { engine, roles: s.roles.filter((r) => r.branch_id === branch.id).map((r) => ({ name: r.name, verifier: r.verifier })) } : {}),
    };
    this.starting.add(endpointId);
    let placed: { host: ComputeHostClient; info: StartAnswer };
    try {
      placed = await this.startOnSomeHost(req, engine);
    } catch (e) {
      const ms = Math.round(performance.now() - started);
      this.log.warn({ endpointId, ms, code: (e as ServiceError).code, err: (e as Error).message }, `wake failed: ${(e as Error).message}`);
      throw e;
    } finally {
      this.starting.delete(endpointId);
    }
    const { host, info } = placed;
    const hostMs = performance.now() - started;
    const loc: ComputeLocation = { host: info.host, port: info.port, hostUrl: host.baseUrl, engine, storageUrl: req.storageUrl };
    this.lost.get(host.baseUrl)?.delete(endpointId); // placed there again: the host's compute is the current one
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
   * Starts the compute on the least loaded live host; a host that refuses for memory (it cannot hold the compute,
   * its line of waiting starts is full, or the start waited there past its deadline) or does not answer is passed
   * over for the next.
   */
  private async startOnSomeHost(req: StartComputeRequest, engine: EngineName): Promise<{ host: ComputeHostClient; info: StartAnswer }> {
    let refusal: unknown;
    for (const host of this.hostsByLoad(engine)) {
      this.placing.set(host.baseUrl, (this.placing.get(host.baseUrl) ?? 0) + 1);
      try {
        return { host, info: await host.start(req) };
      } catch (e) {
        const unreachable = e instanceof ComputeHostError && e.status === 0;
        // a host still holding the endpoint's old compute (it lost it while taken out, and is stopping it)
        const holdsOld = e instanceof ComputeHostError && (e.code === 'compute_exists' || e.code === 'timeline_busy');
        if (!(e instanceof ComputeHostError && (CAPACITY_CODES.includes(e.code) || unreachable || holdsOld))) throw e;
        refusal ??= e;
        const why = unreachable ? 'did not answer' : holdsOld ? 'still holds its old compute' : 'refused the start for memory';
        this.log.warn({ endpointId: req.computeId, host: host.baseUrl, code: e.code }, `compute host ${why}: ${e.message}`);
      } finally {
        this.placing.set(host.baseUrl, (this.placing.get(host.baseUrl) ?? 1) - 1);
      }
    }
    throw refusal ?? this.noHost(engine);
  }

  private pickHost(engine: EngineName): ComputeHostClient {
    const host = this.hostsByLoad(engine)[0];
    if (!host) throw this.noHost(engine);
    return host;
  }

  private noHost(engine: EngineName): ApiError {
    return new ApiError(503, 'NO_COMPUTE_HOST', `no live compute host runs the ${engine} engine, so no compute can start (${this.hosts.whyNot(engine)}); start one (lakebase start --compute-hosts N, or node compute/main.ts --control-plane-url URL)`);
  }

  /**
   * Live hosts that run the engine, least loaded first: by the computes this control plane placed or is placing
   * there, then by the memory each reported free.
   */
  private hostsByLoad(engine: EngineName): ComputeHostClient[] {
    const load = new Map(this.placing);
    for (const loc of this.running.values()) load.set(loc.hostUrl, (load.get(loc.hostUrl) ?? 0) + 1);
    const free = (h: ComputeHostRecord) => (h.memoryBudgetBytes ?? 0) - (h.memoryUsedBytes ?? 0);
    return this.hosts
      .live(engine)
      .sort((a, b) => (load.get(a.url) ?? 0) - (load.get(b.url) ?? 0) || free(b) - free(a))
      .map((h) => h.client);
  }

  /** A compute of no endpoint: remembered when first seen, stale once seen for longer than STRAY_GRACE_MS. */
  private isStaleStray(key: string, now: number): boolean {
    const since = this.strays.get(key);
    if (since === undefined) this.strays.set(key, now);
    return since !== undefined && now - since > STRAY_GRACE_MS;
  }

  /**
   * The URL of the storage node holding the project's timelines. A dead node whose acknowledged writes may be only on
   * its own disk (local durability) is waited for: its projects answer 503 until it is back.
   */
  private storageFor(projectId: string): string {
    const node = this.storage.nodeOf(this.state.current, projectId);
    if (node.state === 'dead' && node.durability !== 'object-store') {
      throw new ApiError(503, 'STORAGE_NODE_UNAVAILABLE', `storage node ${node.name}, which holds this project, does not answer; its recent writes are only on its own disk (local durability), so the project waits for it: restart it (or run storage nodes with LAKEBASE_DURABILITY=object-store, so that another node takes over)`);
    }
    return node.url;
  }

  /**
   * Runs `fn` (a move of the project to another storage node) while the project's wakes wait; concurrent holds of
   * one project run one after the other.
   */
  async hold<T>(projectId: string, fn: () => Promise<T>): Promise<T> {
    for (let held = this.holds.get(projectId); held; held = this.holds.get(projectId)) await held.catch(() => undefined);
    const p = fn();
    this.holds.set(projectId, p);
    try {
      return await p;
    } finally {
      if (this.holds.get(projectId) === p) this.holds.delete(projectId);
    }
  }

  /**
   * Lets go of an endpoint's compute: its storage node is gone, so a clean stop (a last flush there) could hang. The
   * host kills it at once (it is fenced anyway once the endpoint starts on the new node); the next wake starts it
   * afresh there.
   */
  async abandon(endpointId: string): Promise<void> {
    const loc = this.running.get(endpointId);
    if (!loc) return;
    this.running.delete(endpointId);
    this.events.moved?.(endpointId);
    const host = this.hosts.isLive(loc.hostUrl) ? this.client(loc.hostUrl) : undefined;
    if (!host) return this.noteLost(loc.hostUrl, endpointId);
    await host.stop(endpointId, { immediate: true }).catch((e: unknown) => {
      this.noteLost(loc.hostUrl, endpointId); // its host stops it at its next heartbeat
      this.log.warn({ endpointId, err: String(e) }, 'stopping a compute whose storage node is gone failed');
    });
  }

  /** A compute left on a host that no longer serves it: the host stops it when it heartbeats again. */
  private noteLost(hostUrl: string, computeId: string): void {
    const set = this.lost.get(hostUrl) ?? new Set<string>();
    set.add(computeId);
    this.lost.set(hostUrl, set);
  }

  /** A host was taken out: its endpoints are idle, and proxies drop their addresses, so the next query wakes them elsewhere. */
  private hostLost(h: ComputeHostRecord): void {
    const gone = [...this.running].filter(([, loc]) => loc.hostUrl === h.url).map(([id]) => id);
    for (const id of gone) {
      this.running.delete(id);
      this.noteLost(h.url, id);
      this.events.moved?.(id);
    }
    if (gone.length > 0) this.log.warn({ host: h.name, endpoints: gone }, `${gone.length} endpoint(s) of compute host ${h.name} will wake on another host`);
    this.state
      .mutate((d) => {
        for (const id of gone) if (d.endpoints[id] && !this.running.has(id)) d.endpoints[id].current_state = 'idle';
      })
      .catch((err: unknown) => this.log.warn({ err: String(err) }, 'could not record the endpoints of a lost host as idle'));
  }

  /**
   * A host's heartbeat: registers it, adopts the computes it runs that this control plane did not know of (after a
   * restart of the control plane), and answers which computes it must stop: those it lost while taken out, those
   * now running elsewhere, and those of endpoints that no longer exist.
   */
  heartbeat(report: HeartbeatReport, now = Date.now()): { stop: string[] } {
    const h = this.hosts.heartbeat(report);
    const stop: string[] = [];
    const lost = this.lost.get(h.url);
    for (const c of report.computes) {
      if (this.ephemeral.has(c.id) || c.id.startsWith('ephemeral-')) continue;
      const loc = this.running.get(c.id);
      if (loc?.hostUrl === h.url) continue;
      const busy = this.waking.has(c.id) || this.starting.has(c.id);
      if (lost?.has(c.id) || loc) stop.push(c.id);
      else if (!this.state.current.endpoints[c.id]) {
        if (!busy && this.isStaleStray(`${h.url} ${c.id}`, now)) stop.push(c.id);
      } else if (!busy) this.running.set(c.id, { host: c.host, port: c.port, hostUrl: h.url, engine: c.engine });
    }
    for (const key of this.strays.keys()) {
      if (key.startsWith(`${h.url} `) && !report.computes.some((c) => key === `${h.url} ${c.id}`)) this.strays.delete(key);
    }
    if (lost) for (const id of lost) if (!report.computes.some((c) => c.id === id)) lost.delete(id);
    if (stop.length > 0) this.log.warn({ host: h.name, stop }, `compute host ${h.name} runs computes it no longer owns: told to stop them`);
    return { stop };
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
    const host = loc && this.client(loc.hostUrl);
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
    const host = this.client(loc.hostUrl);
    if (!host) throw new Error(`compute host ${loc.hostUrl} is no longer registered`);
    return (await host.adminSql(endpointId, { database, statements })).results;
  }

  /**
   * Background work on a running compute (the lake sync): never wakes it and never counts as activity. Null when
   * the endpoint's compute is not running.
   */
  async backgroundSql(endpointId: string, database: string, statements: string[]): Promise<AdminSqlResult[] | null> {
    const loc = this.running.get(endpointId);
    const host = loc && this.client(loc.hostUrl);
    if (!host) return null;
    return (await host.adminSql(endpointId, { database, statements, background: true })).results;
  }

  /**
   * A compute for the control plane's own work (a snapshot export: read-only at a point in history), on the least
   * loaded host; no endpoint names it, so no client reaches it. The caller stops it when done.
   */
  async startEphemeral(req: Omit<StartComputeRequest, 'computeId'>): Promise<{ computeId: string; sql(statements: string[]): Promise<AdminSqlResult[]>; stop(): Promise<void> }> {
    const host = this.pickHost(req.engine ?? 'pglite');
    const computeId = `ephemeral-${randomBytes(6).toString('hex')}`;
    this.ephemeral.add(computeId);
    await host.start({ ...req, computeId }); // evictable: an orphan (the control plane died mid-export) goes when room is needed
    const database = req.database ?? 'neondb';
    return {
      computeId,
      // not background: its queries are what keeps the host from reclaiming it as idle
      sql: async (statements) => (await host.adminSql(computeId, { database, statements })).results,
      stop: () => host.stop(computeId).finally(() => this.ephemeral.delete(computeId)),
    };
  }

  /** Work that must run on a compute before it suspends (the lake sync flushes what it captured). */
  beforeSuspend(fn: (endpointId: string) => Promise<void>): void {
    this.suspendHooks.push(fn);
  }

  /** Makes an engine's template timeline on a compute host; answers its id. */
  async createTemplate(engine: EngineName): Promise<string> {
    if (this.hosts.live(engine).length === 0) throw new ApiError(503, 'ENGINE_UNAVAILABLE', `the ${engine} engine is not available: ${this.hosts.whyNot(engine)}`);
    try {
      return (await this.pickHost(engine).createTemplate(engine)).timelineId;
    } catch (e) {
      throw new ApiError(503, 'ENGINE_UNAVAILABLE', `the ${engine} engine is not available: ${(e as Error).message}`);
    }
  }

  /**
   * Stops the endpoint's compute, cleanly, after a wake under way. `waitForWake: false` inside hold(): the wakes of a
   * held project wait for the hold, so waiting for them would never end.
   */
  async suspend(endpointId: string, opts: { waitForWake?: boolean } = {}): Promise<void> {
    if (opts.waitForWake !== false) await this.waking.get(endpointId)?.catch(() => undefined);
    const loc = this.running.get(endpointId);
    if (loc) {
      for (const hook of this.suspendHooks) {
        await hook(endpointId).catch((e: unknown) => this.log.warn({ endpointId, err: String(e) }, 'work before a suspend failed; suspending anyway'));
      }
      const host = this.hosts.isLive(loc.hostUrl) ? this.client(loc.hostUrl) : undefined;
      if (host) await host.stop(endpointId);
      else this.noteLost(loc.hostUrl, endpointId); // stopped when its host heartbeats again
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
    await Promise.all(
      this.hosts.live().map(async (h) => {
        try {
          byHost.set(h.url, await h.client.list(PROBE_TIMEOUT_MS));
        } catch {
          // an unreachable host is handled by wake's retries and its heartbeats; nothing to suspend there now
        }
      }),
    );
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
