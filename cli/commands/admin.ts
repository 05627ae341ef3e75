// lakebase admin hosts | nodes | drain NODE [--to NODE]: the operator's view of the machines (the control plane's
// /admin/v1, behind the API key): each compute host with its state (live, or dead after missed heartbeats),
// engines, memory and endpoints; each storage node with its health, projects and timelines; and a drain, which
// moves every project off a storage node (its writers see a short pause, nothing acknowledged is lost).
import { parseArgs } from 'node:util';
import type { CommandContext } from './context.ts';
import { CliError } from './errors.ts';
import { show } from './output.ts';

const MiB = 1024 * 1024;

interface HostRow {
  name: string;
  state: string;
  url: string;
  engines: string[] | null;
  memory_budget_bytes: number | null;
  memory_used_bytes: number | null;
  computes: number | null;
  endpoints: string[];
  last_heartbeat_at: string | null;
}

export async function admin(ctx: CommandContext): Promise<void> {
  const [sub] = ctx.args;
  if (sub === 'hosts') {
    const r = await ctx.api.admin<{ compute_hosts: HostRow[] }>('GET', '/compute_hosts');
    const rows = r.compute_hosts.map((h) => ({
      name: h.name,
      state: h.state,
      url: h.url,
      engines: h.engines?.join(',') ?? '-',
      memory: h.memory_budget_bytes === null ? '-' : `${Math.round((h.memory_used_bytes ?? 0) / MiB)}/${Math.round(h.memory_budget_bytes / MiB)} MiB`,
      computes: h.computes ?? '-',
      endpoints: h.endpoints.length,
      last_heartbeat_at: h.last_heartbeat_at ?? '-',
    }));
    return show(ctx.out, r, rows, ['name', 'state', 'url', 'engines', 'memory', 'computes', 'endpoints', 'last_heartbeat_at']);
  }
  if (sub === 'nodes') {
    const r = await ctx.api.admin<{ storage_nodes: (Record<string, unknown> & { projects: string[] })[] }>('GET', '/storage_nodes');
    const rows = r.storage_nodes.map((n) => ({ ...n, projects: n.projects.length }));
    return show(ctx.out, r, rows, ['name', 'state', 'durability', 'url', 'projects', 'timelines', 'error']);
  }
  if (sub === 'drain') return drain(ctx);
  throw new CliError(USAGE, 2);
}

const USAGE = 'usage: lakebase admin hosts | nodes | drain NODE [--to NODE]';

function drainArgs(args: string[]) {
  try {
    return parseArgs({ args, options: { to: { type: 'string' } }, allowPositionals: true });
  } catch (e) {
    throw new CliError(`${(e as Error).message}; ${USAGE}`, 2);
  }
}

async function drain(ctx: CommandContext): Promise<void> {
  const parsed = drainArgs(ctx.args.slice(1));
  const [node, ...extra] = parsed.positionals;
  if (!node || extra.length > 0) throw new CliError(USAGE, 2);
  process.stderr.write(`lakebase: draining ${node}: each project's computes stop, its timelines go to the bucket, then to ${parsed.values.to ?? 'the least loaded node'}...\n`);
  const body = parsed.values.to === undefined ? {} : { to: parsed.values.to };
  const r = await ctx.api.admin<{ moved: Record<string, unknown>[] }>('POST', `/storage_nodes/${encodeURIComponent(node)}/drain`, body);
  return show(ctx.out, r, r.moved, ['project_id', 'from', 'to', 'timelines', 'ms']);
}
