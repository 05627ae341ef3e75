// Beyond Neon, for agents that experiment: create_checkpoint, list_checkpoints, rewind_to_checkpoint,
// branch_from_checkpoint. Each is one API call on the branch, O(1) whatever the size of the data.
import * as v from 'valibot';
import type { NeonBranch } from '../../control-plane/api/neon-types.ts';
import { branchId, projectId, text } from '../args.ts';
import { tool } from '../tool.ts';
import type { Tool } from '../tool.ts';

const name = text('name', 'The name of the checkpoint (letters, digits, ".", "_" or "-")');
const at = (projectId: string, branch: string) => `/projects/${encodeURIComponent(projectId)}/branches/${branch}`;

export const checkpointTools: Tool[] = [
  tool({
    name: 'create_checkpoint',
    description: "Names the branch's current state (every committed transaction so far) so that it can be rewound to, or branched from, later.",
    input: v.object({ projectId, branchId, name }),
    run: async (a, { api }) => {
      const b = await api.branch(a.projectId, a.branchId);
      return api.call('POST', `${at(a.projectId, b.id)}/checkpoints`, { name: a.name });
    },
  }),
  tool({
    name: 'list_checkpoints',
    description: "Lists a branch's checkpoints (name, LSN, time).",
    input: v.object({ projectId, branchId }),
    run: async (a, { api }) => {
      const b = await api.branch(a.projectId, a.branchId);
      return api.call('GET', `${at(a.projectId, b.id)}/checkpoints`);
    },
  }),
  tool({
    name: 'rewind_to_checkpoint',
    description: 'Rewinds a branch to a checkpoint: everything written since is gone (its sessions are ended). Later checkpoints stay usable.',
    input: v.object({ projectId, branchId, name }),
    run: async (a, { api }) => {
      const b = await api.branch(a.projectId, a.branchId);
      return api.call('POST', `${at(a.projectId, b.id)}/rewind`, { checkpoint: a.name });
    },
  }),
  tool({
    name: 'branch_from_checkpoint',
    description: 'Creates a branch, with a read-write compute, that starts at a checkpoint of another branch. Answers the branch and its connection string.',
    input: v.object({ projectId, branchId, name, branchName: v.optional(text('branchName', 'An optional name for the new branch')) }),
    run: async (a, { api }) => {
      const b = await api.branch(a.projectId, a.branchId);
      const r = await api.call<{ branch: NeonBranch; connection_uris?: { connection_uri: string }[] }>('POST', `/projects/${encodeURIComponent(a.projectId)}/branches`, {
        branch: { parent_id: b.id, parent_checkpoint: a.name, ...(a.branchName ? { name: a.branchName } : {}) },
        endpoints: [{ type: 'read_write' }],
      });
      return { branch: r.branch, connectionString: r.connection_uris?.[0]?.connection_uri };
    },
  }),
];
