// lakebase roles list | create NAME | delete NAME | reset-password NAME   [--branch B]
import { parseArgs } from 'node:util';
import type { NeonRole } from '../../control-plane/api/neon-types.ts';
import type { CommandContext } from './context.ts';
import { CliError } from './errors.ts';
import { show } from './output.ts';

export async function roles(ctx: CommandContext): Promise<void> {
  const [sub, ...rest] = ctx.args;
  const { values, positionals } = parseArgs({ args: rest, options: { branch: { type: 'string' } }, allowPositionals: true });
  const { api, out } = ctx;
  const pid = await api.projectId();
  const b = await api.branch(pid, values.branch);
  const base = `/projects/${pid}/branches/${b.id}/roles`;
  const name = positionals[0];
  switch (sub) {
    case 'list': {
      const r = await api.call<{ roles: NeonRole[] }>('GET', base);
      return show(out, r.roles, r.roles, ['name', 'branch_id', 'created_at']);
    }
    case 'create':
    case 'reset-password': {
      if (!name) break;
      const r = sub === 'create'
        ? await api.call<{ role: NeonRole }>('POST', base, { role: { name } })
        : await api.call<{ role: NeonRole }>('POST', `${base}/${encodeURIComponent(name)}/reset_password`);
      return show(out, r.role, [r.role], ['name', 'password', 'branch_id']);
    }
    case 'delete': {
      if (!name) break;
      const r = await api.call<{ role: NeonRole }>('DELETE', `${base}/${encodeURIComponent(name)}`);
      return show(out, r.role, [r.role], ['name', 'branch_id']);
    }
  }
  throw new CliError('usage: lakebase roles list | create NAME | delete NAME | reset-password NAME  [--branch B]', 2);
}
