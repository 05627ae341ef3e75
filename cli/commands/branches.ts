// lakebase branches list | create | delete | reset | restore | checkpoint | checkpoints | rewind
import { parseArgs } from 'node:util';
import type { Json } from './api.ts';
import type { NeonBranch, NeonEndpoint } from '../../control-plane/api/neon-types.ts';
import type { CheckpointView } from '../../control-plane/api/views.ts';
import type { CommandContext } from './context.ts';
import { CliError } from './errors.ts';
import { show } from './output.ts';

const COLUMNS = ['id', 'name', 'default', 'parent_id', 'parent_lsn', 'created_at'];
const USAGE = `usage:
  lakebase branches list
  lakebase branches create [--name N] [--parent BRANCH] [--at LSN|TIMESTAMP] [--no-endpoint] [--read-only]
  lakebase branches delete BRANCH
  lakebase branches reset BRANCH [--preserve-under-name N]          (to its parent's head)
  lakebase branches restore BRANCH --source BRANCH [--at LSN|TIMESTAMP] [--preserve-under-name N]
  lakebase branches checkpoint BRANCH NAME                           (names the branch's current state)
  lakebase branches checkpoints BRANCH
  lakebase branches rewind BRANCH NAME                               (back to a checkpoint; later changes go)`;

/** `--at` is an LSN ("0/3E8" or a number) or an ISO 8601 time. */
export function point(at: string | undefined, lsnKey: string, timeKey: string): Json {
  if (at === undefined) return {};
  if (/^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/.test(at) || /^\d+$/.test(at)) return { [lsnKey]: at };
  if (!Number.isNaN(Date.parse(at))) return { [timeKey]: new Date(at).toISOString() };
  throw new CliError(`--at ${JSON.stringify(at)} is neither an LSN (like 0/16B3748) nor a time (like 2026-01-02T03:04:05Z)`, 2);
}

export async function branches(ctx: CommandContext): Promise<void> {
  const [sub, ...rest] = ctx.args;
  const { values, positionals } = parseArgs({
    args: rest, allowPositionals: true,
    options: {
      name: { type: 'string' }, parent: { type: 'string' }, at: { type: 'string' }, source: { type: 'string' },
      'preserve-under-name': { type: 'string' }, 'no-endpoint': { type: 'boolean' }, 'read-only': { type: 'boolean' },
    },
  });
  const { api, out } = ctx;
  const pid = await api.projectId();
  const need = (n: number): string[] => {
    if (positionals.length < n) throw new CliError(USAGE, 2);
    return positionals;
  };
  switch (sub) {
    case 'list': {
      const r = await api.call<{ branches: NeonBranch[] }>('GET', `/projects/${pid}/branches`);
      return show(out, r.branches, r.branches, COLUMNS);
    }
    case 'create': {
      const parent = values.parent ? await api.branch(pid, values.parent) : undefined;
      const body = {
        branch: { ...(values.name ? { name: values.name } : {}), ...(parent ? { parent_id: parent.id } : {}), ...point(values.at, 'parent_lsn', 'parent_timestamp') },
        endpoints: values['no-endpoint'] ? [] : [{ type: values['read-only'] ? 'read_only' : 'read_write' }],
      };
      const r = await api.call<{ branch: NeonBranch; endpoints: NeonEndpoint[]; connection_uris?: { connection_uri: string }[] }>('POST', `/projects/${pid}/branches`, body);
      return show(out, r, [{ ...r.branch, endpoint: r.endpoints[0]?.id }], [...COLUMNS, 'endpoint']);
    }
    case 'delete': {
      const b = await api.branch(pid, need(1)[0]);
      const r = await api.call<{ branch: NeonBranch }>('DELETE', `/projects/${pid}/branches/${b.id}`);
      return show(out, r.branch, [r.branch], COLUMNS);
    }
    case 'reset':
    case 'restore': {
      const b = await api.branch(pid, need(1)[0]);
      let source: string;
      if (sub === 'reset') {
        if (!b.parent_id) throw new CliError(`branch ${b.name} has no parent to reset to`);
        source = String(b.parent_id);
      } else {
        if (!values.source) throw new CliError('restore needs --source BRANCH (the branch itself, with --at, to go back in its own history)', 2);
        source = (await api.branch(pid, values.source)).id;
      }
      const r = await api.call<{ branch: NeonBranch }>('POST', `/projects/${pid}/branches/${b.id}/restore`, {
        source_branch_id: source, ...point(values.at, 'source_lsn', 'source_timestamp'),
        ...(values['preserve-under-name'] ? { preserve_under_name: values['preserve-under-name'] } : {}),
      });
      return show(out, r.branch, [r.branch], [...COLUMNS, 'last_reset_at']);
    }
    case 'checkpoint': {
      const [ref, name] = need(2);
      const b = await api.branch(pid, ref);
      const r = await api.call<{ checkpoint: CheckpointView }>('POST', `/projects/${pid}/branches/${b.id}/checkpoints`, { name });
      return show(out, r.checkpoint, [r.checkpoint], ['name', 'lsn', 'created_at']);
    }
    case 'checkpoints': {
      const b = await api.branch(pid, need(1)[0]);
      const r = await api.call<{ checkpoints: CheckpointView[] }>('GET', `/projects/${pid}/branches/${b.id}/checkpoints`);
      return show(out, r.checkpoints, r.checkpoints, ['name', 'lsn', 'created_at']);
    }
    case 'rewind': {
      const [ref, name] = need(2);
      const b = await api.branch(pid, ref);
      const r = await api.call<{ branch: NeonBranch; checkpoint: CheckpointView }>('POST', `/projects/${pid}/branches/${b.id}/rewind`, { checkpoint: name });
      return show(out, r, [{ ...r.branch, checkpoint: r.checkpoint.name, lsn: r.checkpoint.lsn }], ['id', 'name', 'checkpoint', 'lsn', 'last_reset_at']);
    }
    default:
      throw new CliError(USAGE, 2);
  }
}
