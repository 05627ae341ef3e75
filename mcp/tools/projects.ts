// Projects: list_projects, create_project, delete_project, describe_project (Neon's tools and arguments).
import * as v from 'valibot';
import { projectId, text } from '../args.ts';
import { tool } from '../tool.ts';
import type { Tool } from '../tool.ts';

const path = (id: string) => `/projects/${encodeURIComponent(id)}`;

export const projectTools: Tool[] = [
  tool({
    name: 'list_projects',
    description: 'Lists the projects (10 by default). Pass the cursor of the previous answer for the next page; search filters by name or id.',
    input: v.object({
      cursor: v.optional(text('cursor', 'The cursor of the previous answer, for the next page')),
      limit: v.optional(v.pipe(v.number('limit must be a number'), v.integer('limit must be an integer'), v.minValue(1, 'limit must be 1 to 400'), v.maxValue(400, 'limit must be 1 to 400'), v.description('How many projects, 1 to 400')), 10),
      search: v.optional(text('search', 'A part of the project name or id')),
    }),
    run: async (a, { api }) => {
      const q = new URLSearchParams({ limit: String(a.limit) });
      if (a.cursor) q.set('cursor', a.cursor);
      if (a.search) q.set('search', a.search);
      return api.call('GET', `/projects?${q}`);
    },
  }),
  tool({
    name: 'create_project',
    description: 'Creates a project: a Postgres database with a default branch (main), a read-write compute that starts on demand, and an owner role. Answers the project and its connection string.',
    input: v.object({ name: v.optional(text('name', 'An optional name of the project')) }),
    run: async (a, { api }) => {
      const r = await api.call<{ project: { id: string; name: string }; branch: unknown; connection_uris?: { connection_uri: string }[] }>(
        'POST', '/projects', { project: a.name ? { name: a.name } : {} });
      return { project: r.project, branch: r.branch, connectionString: r.connection_uris?.[0]?.connection_uri };
    },
  }),
  tool({
    name: 'delete_project',
    description: 'Deletes a project, its branches, computes and data.',
    input: v.object({ projectId }),
    run: async (a, { api }) => api.call('DELETE', path(a.projectId)),
  }),
  tool({
    name: 'describe_project',
    description: 'Describes a project and lists its branches.',
    input: v.object({ projectId }),
    run: async (a, { api }) => {
      const [{ project }, { branches }] = await Promise.all([
        api.call<{ project: unknown }>('GET', path(a.projectId)),
        api.call<{ branches: unknown[] }>('GET', `${path(a.projectId)}/branches`),
      ]);
      return { project, branches };
    },
  }),
];
