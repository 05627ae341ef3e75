// Operations that really run (control-plane/operations/): a branch delete answers at once and its timelines are
// deleted by a background job whose operation goes running -> finished, or failed with its error; transient
// failures are retried; a control plane killed while the job runs resumes it when it starts again; pruning never
// drops a running operation. The storage node is real and in this process; between it and the control plane sits
// a small HTTP relay that can hold or fail the timeline deletions, so the job's states can be seen and steered.
import { createServer, request } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.ts';
import { StorageClient } from '../storage-node/client.ts';
import { LocalFolderStore } from '../storage-node/object-store/local-folder.ts';
import type { StorageNode } from '../storage-node/server.ts';
import { startControlPlane } from '../control-plane/server.ts';
import type { ControlPlane } from '../control-plane/server.ts';
import { emptyState } from '../control-plane/model.ts';
import type { ControlPlaneState, OperationJobInputs, OperationRecord } from '../control-plane/model.ts';
import { KEEP_PER_PROJECT, OperationRunner, beginOperation, recordOperations, runnerOf } from '../control-plane/operations/index.ts';
import type { JobRegistry } from '../control-plane/operations/index.ts';
import { StateStore } from '../control-plane/state-store.ts';
import { API_KEY, INTERNAL_TOKEN, startControlPlaneProcess } from './support/control-plane-stack.ts';
import { startTestStorageNode } from './support/storage-node-in-process.ts';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers under test

/** What the relay does to `DELETE /v1/timelines/...`: pass, hold until released, or answer an error `times` times. */
interface Faults {
  hold: boolean;
  fail: { status: number; times: number } | null;
  deletes: number;
  held: { forward: () => void; drop: () => void }[];
}

function forward(target: URL, req: IncomingMessage, res: ServerResponse): void {
  const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
    res.writeHead(r.statusCode ?? 502, r.headers);
    r.pipe(res);
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
}

async function startRelay(targetUrl: string): Promise<{ url: string; faults: Faults; release(): void; close(): Promise<void> }> {
  const target = new URL(targetUrl);
  const faults: Faults = { hold: false, fail: null, deletes: 0, held: [] };
  const server: Server = createServer((req, res) => {
    if (req.method === 'DELETE' && req.url?.startsWith('/v1/timelines/')) {
      faults.deletes++;
      if (faults.fail && faults.fail.times > 0) {
        faults.fail.times--;
        req.resume();
        res.writeHead(faults.fail.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: `injected_${faults.fail.status}`, message: `injected failure ${faults.fail.status}` } }));
        return;
      }
      if (faults.hold) {
        faults.held.push({ forward: () => forward(target, req, res), drop: () => res.destroy() });
        return;
      }
    }
    forward(target, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    faults,
    release() {
      faults.hold = false;
      for (const h of faults.held.splice(0)) h.forward();
    },
    async close() {
      for (const h of faults.held.splice(0)) h.drop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let dir: string;
let node: StorageNode;
let relay: Awaited<ReturnType<typeof startRelay>>;
let storage: StorageClient;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lakebase-ops-'));
  node = await startTestStorageNode(join(dir, 'node'));
  relay = await startRelay(node.url);
  storage = new StorageClient(node.url, node.token);
});
afterAll(async () => {
  await relay?.close();
  storage?.close();
  await node?.close();
  await rm(dir, { recursive: true, force: true });
});

function client(baseUrl: string) {
  return async (method: string, path: string, body?: unknown): Promise<{ status: number; body: J }> => {
    const res = await fetch(`${baseUrl}/api/v2${path}`, {
      method, headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as J };
  };
}
type Call = ReturnType<typeof client>;

/** Polls an operation as a client does until it leaves `running`; returns every status seen and the last answer. */
async function pollUntilEnded(call: Call, projectId: string, opId: string, timeoutMs = 30_000): Promise<{ seen: string[]; op: J }> {
  const seen: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await call('GET', `/projects/${projectId}/operations/${opId}`);
    expect(r.status).toBe(200);
    seen.push(r.body.operation.status);
    if (r.body.operation.status !== 'running') return { seen, op: r.body.operation };
    if (Date.now() > deadline) throw new Error(`operation ${opId} still running after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function timelineExists(id: string): Promise<boolean> {
  try {
    await storage.getTimeline(id);
    return true;
  } catch (e) {
    if ((e as { status?: number }).status === 404) return false;
    throw e;
  }
}

async function until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('background operations through the API (control plane in this process)', () => {
  let cp: ControlPlane;
  let call: Call;
  let projectId: string;

  beforeAll(async () => {
    cp = await startControlPlane({
      storageUrls: [relay.url], storageToken: node.token, computeHostUrls: [], objectStore: new LocalFolderStore(join(dir, 'cp')), apiKey: API_KEY,
      internalToken: INTERNAL_TOKEN, computePassword: 'compute', baseDomain: 'lakebase.localhost', proxyPort: 5433, logger: createLogger('control-plane', 'warn'),
    });
    call = client(cp.url);
    const p = await call('POST', '/projects', { project: { name: 'ops' } });
    expect(p.status).toBe(201);
    expect(p.body.operations.every((o: J) => o.status === 'finished')).toBe(true); // inline changes: finished at once
    projectId = p.body.project.id;
  });
  afterAll(async () => {
    relay.release();
    relay.faults.fail = null;
    if (cp) await runnerOf(cp.projects.state)?.idle();
    await cp?.close();
  });

  const state = (): ControlPlaneState => cp.projects.state.current;

  async function branchToDelete(name: string): Promise<{ id: string; timeline: string }> {
    const b = await call('POST', `/projects/${projectId}/branches`, { branch: { name } });
    expect(b.status).toBe(201);
    return { id: b.body.branch.id, timeline: state().branches[b.body.branch.id].timeline_id };
  }

  it('a branch delete answers at once; its delete_timeline job goes running -> finished while a client polls', async () => {
    const b = await branchToDelete('slow');
    relay.faults.hold = true;
    const del = await call('DELETE', `/projects/${projectId}/branches/${b.id}`);
    expect(del.status).toBe(200);
    const op = del.body.operations.find((o: J) => o.action === 'delete_timeline');
    expect(op).toMatchObject({ status: 'running', branch_id: b.id, failures_count: 0 });
    expect((await call('GET', `/projects/${projectId}/branches/${b.id}`)).status).toBe(404); // gone from the records at once
    await until(() => relay.faults.held.length > 0, 'the job to ask the storage node');
    const mid = await call('GET', `/projects/${projectId}/operations/${op.id}`);
    expect(mid.body.operation.status).toBe('running');
    const listed = await call('GET', `/projects/${projectId}/operations`);
    expect(listed.body.operations.find((o: J) => o.id === op.id)?.status).toBe('running');
    expect(await timelineExists(b.timeline)).toBe(true);
    expect(state().operation_jobs?.[op.id]).toEqual({ action: 'delete_timeline', input: { timeline_ids: [b.timeline], storage_node: 'storage-node-1' } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    relay.release();
    const { seen, op: end } = await pollUntilEnded(call, projectId, op.id);
    expect(seen[0]).toBe('running');
    expect(end).toMatchObject({ status: 'finished', failures_count: 0 });
    expect(end.error).toBeUndefined();
    expect(end.total_duration_ms).toBeGreaterThanOrEqual(300);
    expect(await timelineExists(b.timeline)).toBe(false);
    expect(state().operation_jobs?.[op.id]).toBeUndefined(); // the job is forgotten once its operation ended
  });

  it('a job that fails for good ends failed with its error, without retries', async () => {
    const b = await branchToDelete('refused');
    const before = relay.faults.deletes;
    relay.faults.fail = { status: 401, times: 1 };
    const del = await call('DELETE', `/projects/${projectId}/branches/${b.id}`);
    const op = del.body.operations.find((o: J) => o.action === 'delete_timeline');
    const { op: end } = await pollUntilEnded(call, projectId, op.id);
    expect(end).toMatchObject({ status: 'failed', failures_count: 1, error_code: 'STORAGE_ERROR' });
    expect(end.error).toContain('injected failure 401');
    expect(relay.faults.deletes - before).toBe(1);
    expect(await timelineExists(b.timeline)).toBe(true);
    expect(state().operation_jobs?.[op.id]).toBeUndefined();
  });

  it('a job that fails transiently is retried with backoff, and finishes', async () => {
    const b = await branchToDelete('flaky');
    const before = relay.faults.deletes;
    relay.faults.fail = { status: 503, times: 2 };
    const del = await call('DELETE', `/projects/${projectId}/branches/${b.id}`);
    const op = del.body.operations.find((o: J) => o.action === 'delete_timeline');
    const { op: end } = await pollUntilEnded(call, projectId, op.id);
    expect(end).toMatchObject({ status: 'finished', failures_count: 2 });
    expect(relay.faults.deletes - before).toBe(3);
    expect(await timelineExists(b.timeline)).toBe(false);
  });

  it('a job whose transient failures do not stop fails after its last attempt, with the error', async () => {
    const b = await branchToDelete('down');
    const before = relay.faults.deletes;
    relay.faults.fail = { status: 500, times: 1000 };
    const del = await call('DELETE', `/projects/${projectId}/branches/${b.id}`);
    const op = del.body.operations.find((o: J) => o.action === 'delete_timeline');
    const { seen, op: end } = await pollUntilEnded(call, projectId, op.id);
    relay.faults.fail = null;
    expect(seen.length).toBeGreaterThan(1); // seen running while it retried
    expect(end).toMatchObject({ status: 'failed', failures_count: 5, error_code: 'STORAGE_UNAVAILABLE' });
    expect(relay.faults.deletes - before).toBe(5);
  });

  it('pruning keeps a running operation however many operations follow it', async () => {
    const b = await branchToDelete('pinned');
    relay.faults.hold = true;
    const del = await call('DELETE', `/projects/${projectId}/branches/${b.id}`);
    const op = del.body.operations.find((o: J) => o.action === 'delete_timeline');
    const ep = state().projects[projectId].default_branch_id;
    const endpoint = Object.values(state().endpoints).find((e) => e.branch_id === ep)!;
    for (let i = 0; i < KEEP_PER_PROJECT + 5; i++) {
      expect((await call('PATCH', `/projects/${projectId}/endpoints/${endpoint.id}`, { endpoint: { suspend_timeout_seconds: 60 + i } })).status).toBe(200);
    }
    const all = (await call('GET', `/projects/${projectId}/operations?limit=1000`)).body.operations as J[];
    expect(all.length).toBe(KEEP_PER_PROJECT);
    expect(all.find((o) => o.id === op.id)?.status).toBe('running');
    relay.release();
    expect((await pollUntilEnded(call, projectId, op.id)).op.status).toBe('finished');
  });

  it('a project delete waits for its running jobs, then forgets them with the project', async () => {
    const p = (await call('POST', '/projects', { project: { name: 'gone' } })).body;
    const b = (await call('POST', `/projects/${p.project.id}/branches`, { branch: { name: 'child' } })).body.branch;
    const timeline = state().branches[b.id].timeline_id;
    const mainTimeline = state().branches[p.branch.id].timeline_id;
    relay.faults.hold = true;
    const del = await call('DELETE', `/projects/${p.project.id}/branches/${b.id}`);
    const op = del.body.operations.find((o: J) => o.action === 'delete_timeline');
    await until(() => relay.faults.held.length > 0, 'the job to ask the storage node');
    const gone = call('DELETE', `/projects/${p.project.id}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    relay.release();
    expect((await gone).status).toBe(200);
    expect(await timelineExists(timeline)).toBe(false);
    expect(await timelineExists(mainTimeline)).toBe(false); // deleted after its child: nothing left behind
    expect(state().operations?.some((o) => o.id === op.id || o.project_id === p.project.id)).toBe(false);
  });
});

describe('a control plane killed while a job runs', () => {
  it('resumes the job when it starts again; an operation it cannot resume is marked failed', async () => {
    const objects = join(dir, 'cp-process');
    const start = () => startControlPlaneProcess({ storageUrl: relay.url, storageToken: node.token, computeHostUrl: 'http://127.0.0.1:9', objectStoreDir: objects });
    const first = await start();
    let second: Awaited<ReturnType<typeof start>> | undefined;
    try {
      let call = client(first.url);
      const p = (await call('POST', '/projects', { project: { name: 'killed' } })).body;
      const projectId = p.project.id as string;
      const b = (await call('POST', `/projects/${projectId}/branches`, { branch: { name: 'doomed' } })).body.branch;
      const store = new LocalFolderStore(objects);
      // the state as the bucket holds it (snapshot + changes), read by a store of its own
      const readState = async (): Promise<{ state: ControlPlaneState; store: StateStore }> => {
        const st = new StateStore(store);
        await st.load();
        return { state: st.current, store: st };
      };
      const timeline = (await readState()).state.branches[b.id].timeline_id;
      relay.faults.hold = true;
      const op = (await call('DELETE', `/projects/${projectId}/branches/${b.id}`)).body.operations.find((o: J) => o.action === 'delete_timeline');
      expect(op.status).toBe('running');
      await until(() => relay.faults.held.length > 0, 'the job to ask the storage node');
      first.proc.kill('SIGKILL');
      await new Promise<void>((resolve) => (first.proc.exitCode !== null || first.proc.signalCode !== null ? resolve() : first.proc.once('exit', () => resolve())));
      for (const h of relay.faults.held.splice(0)) h.drop(); // the killed process's request dies with it
      relay.faults.hold = false;
      expect(await timelineExists(timeline)).toBe(true);

      // An operation of an action without a resumable job, left running by an older control plane.
      const { state, store: writer } = await readState(); // the only writer now: the first control plane is dead
      expect(state.operations?.find((o) => o.id === op.id)?.status).toBe('running');
      const stale: OperationRecord = { ...state.operations!.find((o) => o.id === op.id)!, id: '00000000-0000-4000-8000-000000000001', action: 'start_compute', branch_id: p.branch.id };
      await writer.mutate((draft) => {
        draft.operations!.push(stale);
      });

      second = await start();
      call = client(second.url);
      const { op: end } = await pollUntilEnded(call, projectId, op.id);
      expect(end).toMatchObject({ status: 'finished', failures_count: 0 });
      expect(await timelineExists(timeline)).toBe(false);
      const interrupted = (await call('GET', `/projects/${projectId}/operations/${stale.id}`)).body.operation;
      expect(interrupted).toMatchObject({ status: 'failed', error_code: 'OPERATION_INTERRUPTED' });
      expect(interrupted.error).toContain('interrupted by a control-plane restart');
      expect((await readState()).state.operation_jobs ?? {}).toEqual({});
    } finally {
      relay.release();
      if (first.proc.exitCode === null && first.proc.signalCode === null) first.proc.kill('SIGKILL');
      await second?.stop();
    }
  }, 120_000);
});

describe('the runner and the records on their own', () => {
  it('pruning drops the oldest ended operations past the bound, never a running one', () => {
    const s = emptyState();
    const running = beginOperation(s, 'p1', Date.now(), { action: 'delete_timeline', branch_id: 'b' }, { timeline_ids: ['t'] });
    const first = recordOperations(s, 'p1', Date.now(), [{ action: 'apply_config' }]);
    recordOperations(s, 'p2', Date.now(), [{ action: 'apply_config' }]);
    for (let i = 0; i < KEEP_PER_PROJECT + 50; i++) recordOperations(s, 'p1', Date.now(), [{ action: 'apply_config' }]);
    const mine = s.operations!.filter((o) => o.project_id === 'p1');
    expect(mine.length).toBe(KEEP_PER_PROJECT);
    expect(mine[0].id).toBe(running.id);
    expect(mine.some((o) => o.id === first[0].id)).toBe(false);
    expect(s.operations!.filter((o) => o.project_id === 'p2').length).toBe(1);
    expect(s.operation_jobs?.[running.id]).toBeDefined();
  });

  it('runs at most maxConcurrent jobs at once, and a stopped runner records nothing more', async () => {
    const state = new StateStore(new LocalFolderStore(join(dir, 'runner')));
    await state.load();
    let now = 0;
    let most = 0;
    const gates: (() => void)[] = [];
    const jobs: JobRegistry = {
      delete_timeline: {
        resumable: true,
        run: async (_input: OperationJobInputs['delete_timeline']) => {
          most = Math.max(most, ++now);
          await new Promise<void>((resolve) => gates.push(resolve));
          now--;
        },
      },
    };
    const runner = new OperationRunner(state, jobs, { maxConcurrent: 2 });
    const ops = await state.mutate((s) => {
      s.projects.p = { id: 'p', name: 'p', region_id: 'local', pg_version: 17, created_at: '', updated_at: '', default_branch_id: 'b' };
      return Array.from({ length: 5 }, (_, i) => runner.begin(s, 'p', Date.now(), { action: 'delete_timeline' }, { timeline_ids: [`t${i}`] }));
    });
    runner.launch(ops);
    await until(() => gates.length === 2, 'two jobs to start');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(gates.length).toBe(2); // the others wait their turn
    const finished = () => state.current.operations!.filter((o) => o.status === 'finished').length;
    for (let i = 1; i <= 3; i++) {
      gates.shift()!();
      await until(() => finished() === i && gates.length === Math.min(2, 5 - i), `job ${i} to end and the next to start`);
    }
    runner.stop();
    for (const g of gates.splice(0)) g();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(most).toBe(2);
    // stopped: the jobs still running end in the process but their operations stay running, for the next start-up
    expect(state.current.operations!.filter((o) => o.status === 'running').length).toBe(2);
    expect(Object.keys(state.current.operation_jobs ?? {}).length).toBe(2);
  });
});
