// lakebase projects list | create [--name N] | get ID | delete ID
import { parseArgs } from 'node:util';
import type { NeonProject, NeonProjectListItem } from '../../control-plane/api/neon-types.ts';
import type { CommandContext } from './context.ts';
import { CliError } from './errors.ts';
import { show } from './output.ts';

const COLUMNS = ['id', 'name', 'region_id', 'created_at'];

export async function projects(ctx: CommandContext): Promise<void> {
  const [sub, ...rest] = ctx.args;
  const { values, positionals } = parseArgs({ args: rest, options: { name: { type: 'string' } }, allowPositionals: true });
  const { api, out } = ctx;
  switch (sub) {
    case 'list': {
      const r = await api.call<{ projects: NeonProjectListItem[] }>('GET', '/projects?limit=400');
      return show(out, r.projects, r.projects, COLUMNS);
    }
    case 'create': {
      const r = await api.call<{ project: NeonProject; connection_uris: { connection_uri: string }[] }>('POST', '/projects', { project: values.name ? { name: values.name } : {} });
      return show(out, r, [{ ...r.project, connection_uri: r.connection_uris[0]?.connection_uri }], [...COLUMNS, 'connection_uri']);
    }
    case 'get':
    case 'delete': {
      const id = positionals[0];
      if (!id) throw new CliError(`usage: lakebase projects ${sub} PROJECT_ID`, 2);
      const r = await api.call<{ project: NeonProject }>(sub === 'get' ? 'GET' : 'DELETE', `/projects/${encodeURIComponent(id)}`);
      return show(out, r.project, [r.project], COLUMNS);
    }
    default:
      throw new CliError('usage: lakebase projects list | create [--name N] | get ID | delete ID', 2);
  }
}
