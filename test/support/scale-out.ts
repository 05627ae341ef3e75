// What the scale-out tests share: a `lakebase start` with several compute hosts and storage nodes, its admin view,
// freezing a service (SIGSTOP of it and every process under it: a hung machine), projects on both engines, and
// writers that count what was acknowledged.
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import type { LakebaseStack } from './lakebase-stack.ts';
import type { J } from './neonctl.ts';

export interface HostView {
  name: string;
  state: string;
  computes: number | null;
  memory_used_bytes: number | null;
  endpoints: string[];
}

export interface NodeView {
  name: string;
  state: string;
  durability: string | null;
  projects: string[];
}

export interface Project {
  id: string;
  endpointId: string;
  uri: string;
  engine: 'pglite' | 'postgres';
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function admin<T>(stack: LakebaseStack, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${stack.controlPlaneUrl}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`admin API ${method} ${path} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}

export async function hosts(stack: LakebaseStack): Promise<HostView[]> {
  return (await admin<{ compute_hosts: HostView[] }>(stack, 'GET', '/compute_hosts')).compute_hosts;
}

export async function nodes(stack: LakebaseStack): Promise<NodeView[]> {
  return (await admin<{ storage_nodes: NodeView[] }>(stack, 'GET', '/storage_nodes')).storage_nodes;
}

export interface Moved {
  project_id: string;
  to: string;
  ms: number;
}

export async function drain(stack: LakebaseStack, node: string, to?: string): Promise<Moved[]> {
  return (await admin<{ moved: Moved[] }>(stack, 'POST', `/storage_nodes/${node}/drain`, to ? { to } : {})).moved;
}

export function servicePid(stack: LakebaseStack, name: string): number {
  return (JSON.parse(readFileSync(`${stack.dir}/services.json`, 'utf8')) as Record<string, number>)[name];
}

/** The process and every process under it (a host's PostgreSQL postmasters, backends and FUSE servers). */
export function tree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      // gone meanwhile
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []));
  return out;
}

/** Freezes (SIGSTOP) or thaws (SIGCONT) a process and everything under it; `frozen` remembers what to thaw. */
export function signalTree(root: number, sig: 'SIGSTOP' | 'SIGCONT', frozen?: Set<number>): void {
  for (const pid of tree(root)) {
    try {
      process.kill(pid, sig);
    } catch {
      // exited
    }
  }
  if (sig === 'SIGSTOP') frozen?.add(root);
  else frozen?.delete(root);
}

export async function makeProject(stack: LakebaseStack, name: string, engine: Project['engine']): Promise<Project> {
  const made = await stack.api<J>('POST', '/projects', { project: { name, pg_version: engine === 'postgres' ? 15 : 18 } });
  return { id: made.project.id, endpointId: made.endpoints[0].id, uri: made.connection_uris[0].connection_uri, engine };
}

export function client(uri: string): pg.Client {
  // a query to a frozen machine never answers: the client gives up and reconnects, as an application would
  const c = new pg.Client({ connectionString: uri, query_timeout: 4000, connectionTimeoutMillis: 15_000 });
  c.on('error', () => {});
  return c;
}

export async function createTable(p: Project): Promise<void> {
  const c = client(p.uri);
  await c.connect();
  await c.query('CREATE TABLE t (id int PRIMARY KEY)');
  await c.end();
}

export interface Writer {
  p: Project;
  acked: { id: number; at: number }[];
  stop(): Promise<void>;
}

/** Inserts rows (ids from `firstId` up) until stopped, reconnecting after failures; remembers which were acknowledged and when. */
export function writer(p: Project, firstId = 1): Writer {
  const acked: { id: number; at: number }[] = [];
  let stopped = false;
  const done = (async () => {
    let c: pg.Client | null = null;
    for (let i = firstId; !stopped; i++) {
      try {
        if (!c) {
          c = client(p.uri);
          await c.connect();
        }
        await c.query('INSERT INTO t (id) VALUES ($1)', [i]);
        acked.push({ id: i, at: Date.now() });
        await sleep(20);
      } catch {
        const old = c;
        c = null;
        void old?.end().catch(() => {});
        await sleep(200);
      }
    }
    await c?.end().catch(() => {});
  })();
  const stop = async () => {
    stopped = true;
    await done;
  };
  return { p, acked, stop };
}

/** Every row each writer had acknowledged is in its project; it acknowledged some. */
export async function missingRows(w: Writer): Promise<number[]> {
  const c = client(w.p.uri);
  await c.connect();
  const have = new Set((await c.query<{ id: number }>('SELECT id FROM t')).rows.map((r) => r.id));
  await c.end();
  return w.acked.filter((a) => !have.has(a.id)).map((a) => a.id);
}

/** Polls `probe` until it answers something, or fails saying what did not happen within `deadlineMs`. */
export async function until<T>(what: string, deadlineMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const got = await probe();
      if (got !== undefined) return got;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`${what} did not happen within ${deadlineMs / 1000} s (last error: ${String(last)})`);
    await sleep(250);
  }
}
