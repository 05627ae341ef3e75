// lakebase endpoints list | start EP | suspend EP
import type { NeonEndpoint } from '../../control-plane/api/neon-types.ts';
import type { CommandContext } from './context.ts';
import { CliError } from './errors.ts';
import { show } from './output.ts';

const COLUMNS = ['id', 'branch_id', 'type', 'current_state', 'suspend_timeout_seconds', 'host'];

export async function endpoints(ctx: CommandContext): Promise<void> {
  const [sub, id] = ctx.args;
  const { api, out } = ctx;
  const pid = await api.projectId();
  if (sub === 'list') {
    const r = await api.call<{ endpoints: NeonEndpoint[] }>('GET', `/projects/${pid}/endpoints`);
    return show(out, r.endpoints, r.endpoints, COLUMNS);
  }
  if ((sub === 'start' || sub === 'suspend') && id) {
    const r = await api.call<{ endpoint: NeonEndpoint }>('POST', `/projects/${pid}/endpoints/${encodeURIComponent(id)}/${sub}`);
    return show(out, r.endpoint, [r.endpoint], COLUMNS);
  }
  throw new CliError('usage: lakebase endpoints list | start ENDPOINT_ID | suspend ENDPOINT_ID', 2);
}
