// Wake storms (issue 13): many suspended endpoints woken at once all answer, queued for the compute host's memory
// and its pooled workers instead of failing; a wake that truly cannot be served answers the client with Neon's
// text while the logs name the cause. The storm runs on a real `lakebase start` (default pglite engine and budget);
// the host's line (full, deadline, suspending an idle compute for it) on a host in process with a tiny budget.
// Durations are printed, never asserted.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { neon, neonConfig } from '@neondatabase/serverless';
import pg from 'pg';
import ws from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTemplateTimeline } from '../compute/template.ts';
import type { TemplateResult } from '../compute/template.ts';
import { DEFAULT_HOST_OPTIONS } from '../compute/host/host.ts';
import type { HostOptions } from '../compute/host/host.ts';
import { startComputeHost } from '../compute/host/server.ts';
import type { RunningHost } from '../compute/host/server.ts';
import { createLogger } from '../lib/logger.ts';
import { StorageClient } from '../storage-node/client.ts';
import { LocalFolderStore } from '../storage-node/object-store/local-folder.ts';
import { startStorageNode } from '../storage-node/server.ts';
import type { StorageNode } from '../storage-node/server.ts';
import { HostApi, type HostApiError, connectPg } from './support/compute-host.ts';
import { startLakebaseStack } from './support/lakebase-stack.ts';
import type { LakebaseStack } from './support/lakebase-stack.ts';

const MiB = 1024 * 1024;

interface Created {
  project: { id: string };
  endpoints: { id: string }[];
  connection_uris: { connection_parameters: { role: string; password: string; database: string } }[];
}

const STORM = Number(process.env.WAKE_STORM_SIZE ?? 50);

/** A connection string of the stack's own form (127.0.0.1, options=endpoint=...) for a created project. */
function connString(s: LakebaseStack, p: Created): string {
  const u = new URL(s.project.connectionString);
  const c = p.connection_uris[0].connection_parameters;
  u.username = encodeURIComponent(c.role);
  u.password = encodeURIComponent(c.password);
  u.pathname = `/${c.database}`;
  u.searchParams.set('options', `endpoint=${p.endpoints[0].id}`);
  return u.toString();
}

function configureDriver(s: LakebaseStack): void {
  neonConfig.fetchEndpoint = () => s.sqlUrl;
  neonConfig.wsProxy = () => s.wsProxy;
  neonConfig.useSecureWebSocket = false;
  neonConfig.webSocketConstructor = ws;
}

/** One first query: neon() over HTTP for even i, pg over TCP for odd i; answers its ms. */
async function firstQuery(uri: string, i: number): Promise<number> {
  const t0 = performance.now();
  if (i % 2 === 0) {
    const rows = await neon(uri)`SELECT ${i}::int AS n`;
    expect(rows).toEqual([{ n: i }]);
  } else {
    const c = new pg.Client({ connectionString: uri });
    c.on('error', () => {});
    await c.connect();
    try {
      expect((await c.query('SELECT $1::int AS n', [i])).rows).toEqual([{ n: i }]);
    } finally {
      await c.end().catch(() => undefined);
    }
  }
  return performance.now() - t0;
}

/** CPU seconds each service used so far (Linux /proc), for the printed profile of the storm. */
async function serviceCpu(s: LakebaseStack): Promise<Record<string, number>> {
  const pids = JSON.parse(await readFile(join(s.dir, 'services.json'), 'utf8')) as Record<string, number>;
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (f.length > 13) out[name] = (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks (100/s)
  }
  return out;
}

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];

describe('a wake storm on lakebase start', () => {
  let stack: LakebaseStack;
  const projects: Created[] = [];

  beforeAll(async () => {
    // default settings: the proxy's handshake timer (15 s) ends at authentication, so a TCP client whose wake waits in
    // the compute host's line longer is not cut (proxy/wire/session.ts)
    stack = await startLakebaseStack();
    configureDriver(stack);
    for (let i = 0; i < STORM; i += 10) {
      const batch = await Promise.all(Array.from({ length: Math.min(10, STORM - i) }, (_, k) => stack.api<Created>('POST', '/projects', { project: { name: `storm-${i + k}` } })));
      projects.push(...batch);
    }
  }, 180_000);

  afterAll(async () => {
    if (process.env.WAKE_STORM_LOG && stack) await writeFile(process.env.WAKE_STORM_LOG, stack.log());
    await stack?.stop();
  });

  it(`${STORM} suspended endpoints woken at once all answer their first query`, async () => {
    const cpu0 = await serviceCpu(stack);
    const t0 = performance.now();
    const storm = Promise.allSettled(projects.map((p, i) => firstQuery(connString(stack, p), i)));
    // while the host's line holds most of the wakes, their endpoints show Neon's pending state
    await new Promise((r) => setTimeout(r, 1500));
    const views = await Promise.all(projects.map((p) => stack.api<{ endpoint: { current_state: string; pending_state?: string } }>('GET', `/projects/${p.project.id}/endpoints/${p.endpoints[0].id}`)));
    const pending = views.filter((v) => v.endpoint.pending_state === 'active' && v.endpoint.current_state === 'idle').length;
    const results = await storm;
    const totalMs = performance.now() - t0;
    const cpu1 = await serviceCpu(stack);
    console.log(`CPU seconds during the storm: ${Object.keys(cpu1).map((k) => `${k} ${(cpu1[k] - (cpu0[k] ?? 0)).toFixed(1)}`).join(', ')}; this test process ${(process.cpuUsage().user / 1e6).toFixed(1)} (whole run)`);
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`#${i} ${i % 2 === 0 ? 'http' : 'tcp'}: ${String(r.reason)}`] : []));
    const ms = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])).sort((a, b) => a - b);
    console.log(`wake storm: ${pending} endpoints pending at 1.5 s; ${STORM} endpoints, ${ms.length} answered, all in ${Math.round(totalMs)} ms; first query p50 ${Math.round(pct(ms, 50))} ms, p90 ${Math.round(pct(ms, 90))} ms, max ${Math.round(ms.at(-1) ?? 0)} ms`);
    if (failed.length) console.log(failed.join('\n'), '\n', stack.log().split('\n').filter((l) => /refus|fail|error/i.test(l)).slice(-30).join('\n'));
    expect(failed).toEqual([]);
    expect(pending).toBeGreaterThan(0);
  }, 240_000);
});

describe('the compute host line for memory (in process)', () => {
  const TOKEN = 'wake-storm-token';
  let root: string;
  let node: StorageNode;
  let template: TemplateResult;
  let host: RunningHost;
  let api: HostApi;
  const clients: pg.Client[] = [];

  const hostOptions = (over: Partial<HostOptions>): HostOptions => ({
    ...DEFAULT_HOST_OPTIONS, limits: { ...DEFAULT_HOST_OPTIONS.limits }, storageUrl: node.url, token: TOKEN,
    advertiseHost: '127.0.0.1', poolSize: 0, log: createLogger('compute-host', 'warn'), ...over,
  });
  const timeline = async (): Promise<string> => (await new StorageClient(node.url).createTimeline({ ancestorTimelineId: template.timelineId })).timelineId;
  const refusal = (p: Promise<unknown>): Promise<HostApiError> => p.then(() => { throw new Error('the start was not refused'); }, (e: HostApiError) => e);

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'lakebase-wake-line-'));
    node = await startStorageNode({
      dataDir: join(root, 'storage'), objectStore: new LocalFolderStore(join(root, 'objects')),
      host: '127.0.0.1', port: 0, durability: 'local', logger: createLogger('storage-node', 'warn'),
    });
    template = await createTemplateTimeline({ storageUrl: node.url, setupSql: [] });
    // room for exactly one compute (100 MiB), a line of one, a short deadline, idle computes suspended after 300 ms
    host = await startComputeHost(hostOptions({ memoryBudgetBytes: 100 * MiB, startQueueLength: 1, startQueueTimeoutMs: 1500, evictIdleMs: 300 }));
    api = new HostApi(host.url);
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    await host?.close();
    await node?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('refuses at once a compute the budget can never hold, naming the budget', async () => {
    const tiny = await startComputeHost(hostOptions({ memoryBudgetBytes: 64 * MiB, poolSize: 1 }));
    try {
      const e = await refusal(new HostApi(tiny.url).start({ computeId: 'ep-never-fits', timelineId: await timeline() }));
      expect(e.status).toBe(503);
      expect(e.code).toBe('memory_budget_exceeded');
      expect(e.message).toMatch(/needs 100 MiB, more than the host's memory budget of 64 MiB leaves beside its pooled workers \(48 MiB\)/);
    } finally {
      await tiny.close();
    }
  });

  it('queues a start for memory: a full line and a passed deadline are refused with the budget and its use', async () => {
    const a = await api.start({ computeId: 'ep-line-a', timelineId: await timeline() });
    const client = await connectPg(a, TOKEN);
    client.on('error', () => {});
    clients.push(client);
    await client.query('BEGIN'); // a compute in a transaction is never suspended for others
    await client.query('SELECT 1');
    const t0 = performance.now();
    const waiting = refusal(api.start({ computeId: 'ep-line-b', timelineId: await timeline() }));
    await new Promise((r) => setTimeout(r, 200));
    const health = await (await fetch(`${host.url}/healthz`)).json() as { startsWaiting: number };
    expect(health.startsWaiting).toBe(1);
    const full = await refusal(api.start({ computeId: 'ep-line-c', timelineId: await timeline() }));
    expect(full.code).toBe('start_queue_full');
    expect(full.message).toMatch(/1 starts already wait for memory .*memory budget 100 MiB, 100 MiB in use by 1 computes/);
    const late = await waiting;
    expect(late.code).toBe('start_queue_timeout');
    expect(late.message).toMatch(/ep-line-b waited 1\.\d s for memory and was not started: memory budget 100 MiB, 100 MiB in use by 1 computes/);
    console.log(`a start refused after waiting ${Math.round(performance.now() - t0)} ms (deadline 1500 ms)`);
    await client.query('COMMIT');
  });

  it('suspends the least recently used idle compute for a waiting start, which then starts', async () => {
    // ep-line-a is idle since its COMMIT (over 300 ms ago by the time the start below waits)
    await new Promise((r) => setTimeout(r, 400));
    const [client] = clients;
    const ended = new Promise<string>((resolve) => client.once('error', (e: Error) => resolve(e.message)));
    const d = await api.start({ computeId: 'ep-line-d', timelineId: await timeline() });
    expect(d.port).toBeGreaterThan(0);
    expect(await ended).toMatch(/terminating connection due to administrator command/);
    expect((await api.list()).map((c) => c.computeId)).toEqual(['ep-line-d']);
    const metrics = await (await fetch(`${host.url}/metrics`)).text();
    expect(metrics).toMatch(/^compute_host_idle_suspends_total 1$/m);
    console.log(`a start that waited for an idle compute's suspend: phases ${JSON.stringify(d.phases)}`);
  });
});

describe('a wake that cannot be served, through lakebase start', () => {
  let stack: LakebaseStack;

  beforeAll(async () => {
    // no pooled workers and a 64 MiB budget: no compute (100 MiB) ever fits
    stack = await startLakebaseStack({ env: { LAKEBASE_COMPUTE_MEMORY_BUDGET_MB: '64', LAKEBASE_COMPUTE_POOL_SIZE: '0' } });
    configureDriver(stack);
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it("answers the client with Neon's text, while the logs name the memory budget", async () => {
    const uri = stack.project.connectionString;
    // at once, not after retries: the host has no room and a retry would only queue again (423, Neon's text)
    const neonText = 'Control plane request failed: endpoint is temporarily unavailable. Check your quotas and/or contact our support.';
    await expect(neon(uri)`SELECT 1`).rejects.toThrow(neonText);
    const c = new pg.Client({ connectionString: uri });
    c.on('error', () => {});
    await expect(c.connect()).rejects.toMatchObject({ message: neonText });
    await c.end().catch(() => undefined);
    const log = stack.log();
    expect(log).toMatch(/"component":"compute-host".*start refused: compute ep-[a-z0-9-]+ needs 100 MiB, more than the host's memory budget of 64 MiB/);
    expect(log).toMatch(/"component":"control-plane".*wake failed: compute host http:\/\/127\.0\.0\.1:\d+: compute ep-[a-z0-9-]+ needs 100 MiB/);
  }, 60_000);
});
