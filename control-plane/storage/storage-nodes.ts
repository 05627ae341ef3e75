// The storage nodes this control plane assigns timelines to, named storage-node-1, -2, ... in the order of
// --storage-url. Each project's timelines live on one node (ProjectRecord.storage_node, durable; absent means the
// first), chosen when the project is made (the live node with the fewest projects); every storage call about a
// project goes to its node (`of`). A probe asks each node's /healthz every second; a node without an answer for
// longer than the timeout is dead, and `dead` is told (takeover.ts moves its projects when the bucket holds all
// they acknowledged). A node that answers again is live again.
import type { Logger } from '../../lib/logger.ts';
import { InternalClient } from '../../lib/internal-client.ts';
import { StorageClient } from '../../storage-node/client.ts';
import type { ControlPlaneState } from '../model.ts';
import { ApiError } from '../errors.ts';

export type Durability = 'local' | 'object-store';

export interface StorageNodeRecord {
  name: string;
  url: string;
  client: StorageClient;
  state: 'live' | 'dead';
  /** As the node says on /healthz; null until it first answers. */
  durability: Durability | null;
  lastOkAt: number | null;
}

export interface StorageNodeEvents {
  dead(node: StorageNodeRecord): void;
}

const PROBE_TIMEOUT_MS = 1000;

export class StorageNodes {
  private readonly nodes: StorageNodeRecord[];
  private readonly probes: InternalClient[];
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private events: StorageNodeEvents = { dead: () => {} };
  private timer: NodeJS.Timeout | null = null;
  private readonly started = Date.now();

  constructor(urls: string[], opts: { token?: string; timeoutMs: number; log: Logger }) {
    if (urls.length === 0) throw new Error('at least one storage node is needed (--storage-url)');
    this.nodes = urls.map((url, i) => {
      const client = new StorageClient(url, opts.token);
      return { name: `storage-node-${i + 1}`, url: client.baseUrl, client, state: 'live', durability: null, lastOkAt: null };
    });
    this.probes = this.nodes.map((n) => new InternalClient(n.url, { service: 'storage node', kind: 'storage', token: opts.token, timeoutMs: PROBE_TIMEOUT_MS }));
    this.timeoutMs = opts.timeoutMs;
    this.log = opts.log;
  }

  on(events: StorageNodeEvents): void {
    this.events = events;
  }

  all(): StorageNodeRecord[] {
    return this.nodes;
  }

  /** The first node: where templates are made (every node reads them from the bucket). */
  get first(): StorageNodeRecord {
    return this.nodes[0];
  }

  byName(name: string | undefined): StorageNodeRecord {
    const node = name === undefined ? this.first : this.nodes.find((n) => n.name === name);
    if (!node) throw new ApiError(503, 'STORAGE_NODE_UNKNOWN', `storage node ${name} is not configured on this control plane (--storage-url lists ${this.nodes.length}); restart it with the node's URL`);
    return node;
  }

  /** The node holding a project's timelines. */
  nodeOf(state: ControlPlaneState, projectId: string): StorageNodeRecord {
    return this.byName(state.projects[projectId]?.storage_node);
  }

  /** The client of the node holding a project's timelines. */
  of(state: ControlPlaneState, projectId: string): StorageClient {
    return this.nodeOf(state, projectId).client;
  }

  /**
   * The client of the node holding a timeline, found through the branch (current or retired timeline) or the
   * checkpoint that names it; an unknown timeline (a template) is on the first node.
   */
  ofTimeline(state: ControlPlaneState, timelineId: string): StorageClient {
    const branch = Object.values(state.branches).find((b) => b.timeline_id === timelineId || b.retired_timelines?.includes(timelineId));
    const projectId = branch?.project_id ?? (state.checkpoints ?? []).find((c) => c.timeline_id === timelineId)?.project_id;
    return projectId === undefined ? this.first.client : this.of(state, projectId);
  }

  /** The live node with the fewest projects, for a new project (or a moved one: `except` the node it leaves). */
  pick(state: ControlPlaneState, except?: string): StorageNodeRecord {
    const count = new Map<string, number>();
    for (const p of Object.values(state.projects)) {
      const n = p.storage_node ?? this.first.name;
      count.set(n, (count.get(n) ?? 0) + 1);
    }
    const live = this.nodes.filter((n) => n.state === 'live' && n.name !== except);
    if (live.length === 0) throw new ApiError(503, 'STORAGE_UNAVAILABLE', `no storage node answers (${this.nodes.map((n) => n.name).join(', ')}); start one, or check the network`);
    return live.reduce((a, b) => ((count.get(b.name) ?? 0) < (count.get(a.name) ?? 0) ? b : a));
  }

  /** Probes every node now; marks dead those silent past the timeout and live those that answer. */
  async probe(now = Date.now()): Promise<void> {
    await Promise.all(this.nodes.map((n, i) => this.probeOne(n, this.probes[i], now)));
  }

  private async probeOne(n: StorageNodeRecord, probe: InternalClient, now: number): Promise<void> {
    try {
      const h = await probe.json<{ durability?: Durability }>('GET', '/healthz');
      if (n.state === 'dead') this.log.warn({ node: n.name, url: n.url }, `storage node ${n.name} answers again`);
      n.state = 'live';
      n.lastOkAt = Date.now();
      n.durability = h.durability ?? 'local';
    } catch {
      const silentMs = now - (n.lastOkAt ?? this.started);
      if (n.state === 'dead' || silentMs <= this.timeoutMs) return;
      n.state = 'dead';
      this.log.warn({ node: n.name, url: n.url, silentMs, durability: n.durability }, `storage node ${n.name} does not answer`);
      this.events.dead(n);
    }
  }

  startProbing(intervalMs = 1000): void {
    const loop = () => {
      void this.probe().finally(() => {
        if (this.timer) this.timer = setTimeout(loop, intervalMs).unref();
      });
    };
    this.timer = setTimeout(loop, 0).unref();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const n of this.nodes) n.client.close();
    for (const p of this.probes) p.close();
  }
}
