// Moves projects between storage nodes: a drain (an operator empties a node on purpose) and a takeover (a node
// stopped answering). Either way the project's wakes wait while it moves (EndpointManager.hold), its computes
// stop, the assignment in the durable state changes, and the next query wakes the computes on the new node, which
// adopts the timelines from the bucket; a compute's writer generation then fences anything the old node still holds.
// - A drain stops the computes cleanly (their last writes reach the old node) and asks the old node to release each
//   timeline: everything it acknowledged goes to the bucket first, whatever its durability.
// - A takeover happens only when the dead node's durability is object-store (every acknowledged batch is already in
//   the bucket). With local durability its recent writes are on its own disk: its projects wait for it
//   (EndpointManager.storageFor says so), nothing is moved.
import type { Logger } from '../../lib/logger.ts';
import type { EndpointManager } from '../endpoints.ts';
import type { ControlPlaneState } from '../model.ts';
import type { StateStore } from '../state-store.ts';
import type { StorageNodeRecord, StorageNodes } from './storage-nodes.ts';

export interface MovedProject {
  project_id: string;
  from: string;
  to: string;
  timelines: number;
  ms: number;
}

export class ProjectMover {
  private readonly state: StateStore;
  private readonly storage: StorageNodes;
  private readonly endpoints: EndpointManager;
  private readonly log: Logger;

  constructor(state: StateStore, storage: StorageNodes, endpoints: EndpointManager, log: Logger) {
    this.state = state;
    this.storage = storage;
    this.endpoints = endpoints;
    this.log = log;
    storage.on({ dead: (n) => void this.takeOver(n) });
  }

  /** Moves every project of `from` to `to` (or each to the live node with the fewest projects), one at a time. */
  async drain(from: string, to?: string): Promise<MovedProject[]> {
    const moved: MovedProject[] = [];
    for (const projectId of this.projectsOn(from)) {
      const target = to ?? this.storage.pick(this.state.current, from).name;
      moved.push(await this.move(projectId, from, target, 'release'));
    }
    this.log.info({ node: from, projects: moved.length }, `storage node ${from} drained`);
    return moved;
  }

  /** A dead node's projects go to live nodes, if the bucket holds all it acknowledged. */
  private async takeOver(dead: StorageNodeRecord): Promise<void> {
    const projects = this.projectsOn(dead.name);
    if (dead.durability !== 'object-store') {
      if (projects.length > 0) this.log.error({ node: dead.name, projects: projects.length }, `storage node ${dead.name} does not answer and keeps its recent writes on its own disk (local durability): its ${projects.length} project(s) wait for it`);
      return;
    }
    for (const projectId of projects) {
      try {
        await this.move(projectId, dead.name, this.storage.pick(this.state.current, dead.name).name, 'takeover');
      } catch (e) {
        this.log.error({ node: dead.name, projectId, err: String(e) }, 'taking a project over from a dead storage node failed; its next wake tries again on the dead node');
      }
    }
  }

  private projectsOn(node: string): string[] {
    const first = this.storage.first.name;
    return Object.values(this.state.current.projects).filter((p) => (p.storage_node ?? first) === node).map((p) => p.id);
  }

  private move(projectId: string, from: string, to: string, how: 'release' | 'takeover'): Promise<MovedProject> {
    return this.endpoints.hold(projectId, async () => {
      const started = Date.now();
      const s = this.state.current;
      const endpoints = Object.values(s.endpoints).filter((e) => e.project_id === projectId);
      const timelines = timelinesOf(s, projectId);
      if (how === 'release') {
        for (const e of endpoints) await this.endpoints.suspend(e.id, { waitForWake: false });
        const old = this.storage.byName(from).client;
        for (const id of timelines) await old.releaseTimeline(id);
      } else {
        await Promise.all(endpoints.map((e) => this.endpoints.abandon(e.id)));
      }
      await this.state.mutate((d) => {
        const p = d.projects[projectId];
        if (p) p.storage_node = to;
      });
      const result = { project_id: projectId, from, to, timelines: timelines.length, ms: Date.now() - started };
      this.log.warn(result, how === 'release' ? `project moved from ${from} to ${to}` : `project taken over by ${to} from the dead ${from}`);
      return result;
    });
  }
}

/** Every timeline of the project that the storage node keeps, children before their ancestors. */
function timelinesOf(s: ControlPlaneState, projectId: string): string[] {
  const branches = Object.values(s.branches).filter((b) => b.project_id === projectId);
  const depth = (id: string | null): number => (id ? 1 + depth(s.branches[id]?.parent_id ?? null) : 0);
  const deepestFirst = [...branches].sort((a, b) => depth(b.id) - depth(a.id));
  return [...new Set(deepestFirst.flatMap((b) => [b.timeline_id, ...[...(b.retired_timelines ?? [])].reverse()]))];
}
