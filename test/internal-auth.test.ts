// No door without a key: the storage node, the compute host's control API and the control plane's internal API
// answer 401 without their credential or with a wrong one, and such a request changes nothing. Bodies are limited
// while they are read: 300 MB streamed at each HTTP service is refused (413) without the process growing. A
// service refuses to listen off loopback without its token. Real processes on loopback.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBatch } from '../storage-node/api/batch-codec.ts';
import { StorageClient } from '../storage-node/client.ts';
import { startHostProcess } from './support/compute-host.ts';
import type { HostProcess } from './support/compute-host.ts';
import { API_KEY, INTERNAL_TOKEN, startControlPlaneProcess } from './support/control-plane-stack.ts';
import type { ControlPlaneProcess } from './support/control-plane-stack.ts';
import { startStorageProcess } from './support/storage-process.ts';
import type { StorageProcess } from './support/storage-process.ts';

const MiB = 1024 * 1024;
const WRONG = 'wrong-token-0123456789abcdef';
const BAD_CREDENTIALS: [string, Record<string, string>][] = [
  ['without a credential', {}],
  ['with a wrong token', { authorization: `Bearer ${WRONG}` }],
];

let root: string;
let storage: StorageProcess;
let host: HostProcess;
let cp: ControlPlaneProcess;
let client: StorageClient;
let project: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'lakebase-auth-'));
  storage = await startStorageProcess(['--data-dir', join(root, 'storage')], { LAKEBASE_OBJECT_STORE_DIR: join(root, 'objects') });
  host = await startHostProcess({ storageUrl: storage.url, storageToken: storage.token, token: 'compute', args: ['--pool-size', '0'] });
  // the control plane makes the template timeline through the storage node's token and reconciles via the host's
  cp = await startControlPlaneProcess({
    storageUrl: storage.url, storageToken: storage.token, computeHostUrl: host.url, computeApiToken: host.apiToken, objectStoreDir: join(root, 'cp-objects'),
  });
  client = new StorageClient(storage.url, storage.token);
  const [template] = await client.listTimelines();
  project = (await client.createTimeline({ ancestorTimelineId: template.timelineId })).timelineId;
}, 240_000); // initdb of the template is ~4 s, but minutes on a loaded machine

afterAll(async () => {
  client?.close();
  await cp?.stop();
  await host?.stop();
  await storage?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

async function call(url: string, method: string, headers: Record<string, string>, body?: string | Uint8Array): Promise<{ status: number; challenge: string | null; text: string }> {
  const res = await fetch(url, { method, headers, body });
  return { status: res.status, challenge: res.headers.get('www-authenticate'), text: await res.text() };
}

function expectRefused(r: { status: number; challenge: string | null }, what: string): void {
  expect(r.status, what).toBe(401);
  expect(r.challenge, what).toBe('Bearer');
}

// first, while no compute runs on the host: a running compute's own memory moves by more than the bound
function rssBytes(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!kb) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb[1]) * 1024;
}

/**
 * POSTs up to `total` bytes, chunked (no Content-Length, so the server must count while reading), and stops
 * sending once the answer comes. Samples the target's RSS all along: answers the status, the bytes sent and the
 * largest RSS growth seen.
 */
async function streamHuge(url: string, headers: Record<string, string>, pid: number, total = 300 * MiB): Promise<{ status: number; sent: number; grewBy: number }> {
  const base = rssBytes(pid);
  let peak = base;
  const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 10);
  const chunk = Buffer.alloc(MiB, 0x20);
  const u = new URL(url);
  const agent = new http.Agent({ keepAlive: true });
  try {
    const { status, sent } = await new Promise<{ status: number; sent: number }>((resolve, reject) => {
      let sent = 0;
      let answered = false;
      // kept alive, as the services' own clients are: a client that asks to close gets the socket closed right
      // after the answer, which can reset the connection before the answer is read
      const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers: { ...headers, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } });
      req.on('response', (res) => {
        answered = true;
        res.resume();
        res.on('end', () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, sent });
        });
      });
      req.on('error', (e) => {
        if (!answered) reject(e);
      });
      // one chunk per turn of the event loop, so that an early answer is seen as soon as it comes
      const pump = (): void => {
        if (answered) return;
        if (sent >= total) return void req.end();
        sent += chunk.length;
        if (req.write(chunk)) setImmediate(pump);
        else req.once('drain', pump);
      };
      pump();
    });
    // the server drains what was in flight, then closes: the growth must not come later either
    await new Promise((r) => setTimeout(r, 700));
    peak = Math.max(peak, rssBytes(pid));
    return { status, sent, grewBy: peak - base };
  } finally {
    clearInterval(sampler);
    agent.destroy();
  }
}

describe('body limits while reading', () => {
  // a write batch (limit 64 MiB) without Content-Length is held to 1 MiB, so it is never buffered past that
  const cases: [string, () => { url: string; headers: Record<string, string>; pid: number; status: number }][] = [
    ['storage node', () => ({ url: `${storage.url}/v1/timelines`, headers: { authorization: `Bearer ${storage.token}` }, pid: storage.proc.pid!, status: 413 })],
    ['storage node write batch', () => ({ url: `${storage.url}/v1/timelines/${project}/batches`, headers: { authorization: `Bearer ${storage.token}` }, pid: storage.proc.pid!, status: 413 })],
    ['compute host API', () => ({ url: `${host.url}/v1/computes`, headers: { authorization: `Bearer ${host.apiToken}` }, pid: host.proc.pid!, status: 413 })],
    ['control plane public API (with the key)', () => ({ url: `${cp.url}/api/v2/projects`, headers: { authorization: `Bearer ${API_KEY}` }, pid: cp.proc.pid!, status: 413 })],
  ];
  for (const [name, target] of cases) {
    it(`300 MB to the ${name} is refused while it is read`, async () => {
      const t = target();
      const r = await streamHuge(t.url, t.headers, t.pid);
      expect(r.status).toBe(t.status);
      expect(r.sent).toBeLessThan(300 * MiB);
      expect(r.grewBy).toBeLessThan(32 * MiB);
    });
  }

  it('a Content-Length over the batch limit is refused before a byte is read', async () => {
    const r = await new Promise<number>((resolve, reject) => {
      const u = new URL(`${storage.url}/v1/timelines/${project}/batches`);
      const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false, headers: { authorization: `Bearer ${storage.token}`, 'content-length': String(300 * MiB) } });
      req.on('response', (res) => {
        res.resume();
        req.destroy();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(r).toBe(413);
  });
});

describe('storage node', () => {
  it('refuses every route but /healthz without its token, and nothing changes', async () => {
    const victim = (await client.createTimeline()).timelineId;
    await client.writeBatch(victim, { ops: [{ op: 'create', path: 'f' }, { op: 'write', path: 'f', offset: 0, data: Buffer.from('keep') }] });
    const before = await client.getTimeline(victim);
    const evil = encodeBatch({ expectedLsn: before.lastLsn, ops: [{ op: 'write', path: 'f', offset: 0, data: Buffer.from('evil') }] });
    const tl = `${storage.url}/v1/timelines/${victim}`;
    for (const [label, headers] of BAD_CREDENTIALS) {
      const list = await call(`${storage.url}/v1/timelines`, 'GET', headers);
      expectRefused(list, `list ${label}`);
      expect(list.text).not.toContain(victim);
      const page = await call(`${tl}/page?path=f&page=0`, 'GET', headers);
      expectRefused(page, `read a page ${label}`);
      expect(page.text).not.toContain('keep');
      expectRefused(await call(`${tl}/batches`, 'POST', { ...headers, 'content-type': 'application/octet-stream' }, evil), `write a batch ${label}`);
      expectRefused(await call(tl, 'DELETE', headers), `delete ${label}`);
      expectRefused(await call(`${storage.url}/metrics`, 'GET', headers), `metrics ${label}`);
    }
    expect((await call(`${storage.url}/healthz`, 'GET', {})).status).toBe(200);
    expect(await client.getTimeline(victim)).toEqual(before);
    expect((await client.readPage(victim, 'f', 0)).subarray(0, 4).toString()).toBe('keep');
    // the refused requests were valid ones: with the token, the same batch is applied
    expect((await call(`${tl}/batches`, 'POST', { authorization: `Bearer ${storage.token}`, 'content-type': 'application/octet-stream' }, evil)).status).toBe(200);
    expect((await client.readPage(victim, 'f', 0)).subarray(0, 4).toString()).toBe('evil');
    expect(storage.output()).toContain('storage node API authentication failed');
    expect(storage.output()).not.toContain(WRONG);
  });
});

describe('compute host', () => {
  it('refuses /v1 and /metrics without its API token: no compute listed, started or stopped', async () => {
    await host.api.start({ computeId: 'ep-owner', timelineId: project });
    for (const [label, headers] of BAD_CREDENTIALS) {
      const list = await call(`${host.url}/v1/computes`, 'GET', headers);
      expectRefused(list, `list ${label}`);
      expect(list.text).not.toContain(project);
      const start = JSON.stringify({ computeId: 'ep-intruder', timelineId: project, readOnly: true });
      expectRefused(await call(`${host.url}/v1/computes`, 'POST', { ...headers, 'content-type': 'application/json' }, start), `start ${label}`);
      expectRefused(await call(`${host.url}/v1/computes/ep-owner`, 'DELETE', headers), `stop ${label}`);
      expectRefused(await call(`${host.url}/metrics`, 'GET', headers), `metrics ${label}`);
    }
    expect((await call(`${host.url}/healthz`, 'GET', {})).status).toBe(200);
    const computes = await host.api.list();
    expect(computes.map((c) => [c.computeId, c.state])).toEqual([['ep-owner', 'running']]);
    expect(host.output()).not.toContain(WRONG);
    expect((await host.api.stop('ep-owner')).clean).toBe(true);
  });
});

describe('control plane internal API', () => {
  it('refuses role lookups, wakes, activity and /metrics without the internal token', async () => {
    const base = `${cp.url}/internal/v1/endpoints/ep-nowhere`;
    for (const [label, headers] of BAD_CREDENTIALS) {
      expectRefused(await call(`${base}/roles/neondb_owner`, 'GET', headers), `role lookup ${label}`);
      expectRefused(await call(`${base}/wake`, 'POST', headers), `wake ${label}`);
      expectRefused(await call(`${base}/activity`, 'POST', headers), `activity ${label}`);
      expectRefused(await call(`${cp.url}/metrics`, 'GET', headers), `metrics ${label}`);
    }
    expect((await call(`${cp.url}/metrics`, 'GET', { authorization: `Bearer ${INTERNAL_TOKEN}` })).status).toBe(200);
    // with the token the door opens (an unknown endpoint: 404)
    expect((await call(`${base}/roles/neondb_owner`, 'GET', { authorization: `Bearer ${INTERNAL_TOKEN}` })).status).toBe(404);
    expect(cp.output()).not.toContain(WRONG);
  });
});

describe('loopback rule', () => {
  it('a storage node or compute host API refuses a non-loopback address without its token', async () => {
    // 192.0.2.1 (TEST-NET-1) is never this machine's: nothing can listen there even if the rule were broken
    await expect(startStorageProcess(['--data-dir', join(root, 'open'), '--host', '192.0.2.1'], { LAKEBASE_STORAGE_TOKEN: '', LAKEBASE_OBJECT_STORE_DIR: join(root, 'open-objects') }))
      .rejects.toThrow(/exited with 2[\s\S]*refuses to listen on 192\.0\.2\.1 without a token/);
    await expect(startHostProcess({ storageUrl: storage.url, token: 'compute', args: ['--host', '192.0.2.1', '--pool-size', '0'], env: { LAKEBASE_COMPUTE_API_TOKEN: '' } }))
      .rejects.toThrow(/exited with 2[\s\S]*refuses to listen on 192\.0\.2\.1 without a token/);
  });
});
