// The services on separate machines: each in its own network namespace (test/support/netlab.ts: a loopback and one
// veth into a bridge, addresses only inside the namespaces), started alone with their addresses from flags and
// environment as an operator would: two storage nodes over one bucket (object-store durability), a control plane,
// two compute hosts that register with it, a proxy, and a client machine. Six projects spread over both hosts and
// both nodes keep being written to while a compute host, then a storage node, is frozen (SIGSTOP: a hung
// machine): within 30 s every project answers again, and every acknowledged row is there.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetLab, type NetLab } from './support/netlab.ts';
import { signalTree, sleep, until } from './support/scale-out.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MACHINES = ['sn1', 'sn2', 'cp', 'ch1', 'ch2', 'proxy', 'client'];
const secret = () => randomBytes(16).toString('hex');
const T = { api: `lb_${secret()}`, internal: secret(), compute: secret(), storage: secret(), hostApi: secret() };

let lab: NetLab;
let dir: string;
const procs = new Map<string, ChildProcess>();
const logs: string[] = [];
const frozen = new Set<number>();

/** Starts a service on its machine and waits for its ready line. */
function service(machine: string, script: string, args: string[], env: Record<string, string>, ready: string): Promise<void> {
  const child = lab.spawn(machine, process.execPath, [join(ROOT, script), ...args], { LAKEBASE_LOG_LEVEL: 'info', ...env });
  procs.set(machine, child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${machine} was not ready in 90 s:\n${logs.filter((l) => l.startsWith(machine)).slice(-20).join('\n')}`)), 90_000);
    createInterface({ input: child.stderr! }).on('line', (l) => logs.push(`${machine} ! ${l}`));
    createInterface({ input: child.stdout! }).on('line', (l) => {
      logs.push(`${machine} ${l}`);
      if (l.includes(ready)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`${machine} exited (${code}) before it was ready:\n${logs.filter((l) => l.startsWith(machine)).slice(-20).join('\n')}`)));
  });
}

/** The client machine: requests over its stdin, answers and acknowledged rows on its stdout. */
const pending = new Map<number, (a: { result?: unknown; error?: string }) => void>();
const acks = new Map<string, { row: number; at: number }[]>();
let nextId = 1;
function ask<T>(req: Record<string, unknown>): Promise<T> {
  const id = nextId++;
  procs.get('client')!.stdin!.write(JSON.stringify({ id, ...req }) + '\n');
  return new Promise((resolve, reject) => pending.set(id, (a) => (a.error !== undefined ? reject(new Error(a.error)) : resolve(a.result as T))));
}
const url = (m: string, port: number) => `http://${lab.address(m)}:${port}`;
const api = <B>(method: string, path: string, body?: unknown) => ask<{ status: number; body: B }>({ op: 'api', url: url('cp', 9871), key: T.api, method, path, body });

beforeAll(async () => {
  lab = createNetLab(MACHINES);
  dir = mkdtempSync(join(tmpdir(), 'lakebase-netlab-'));
  const bucket = { LAKEBASE_OBJECT_STORE_DIR: join(dir, 'objects'), LAKEBASE_DURABILITY: 'object-store' };
  await Promise.all(['sn1', 'sn2'].map((m) => service(m, 'storage-node/main.ts', ['--host', lab.address(m), '--port', '9870', '--data-dir', join(dir, m)], { ...bucket, LAKEBASE_STORAGE_NODE_TOKEN: T.storage }, 'storage node listening')));
  await service('cp', 'control-plane/main.ts', [
    '--host', lab.address('cp'), '--port', '9871', '--storage-url', `${url('sn1', 9870)},${url('sn2', 9870)}`, '--proxy-port', '5432', '--connection-host', lab.address('proxy'),
  ], {
    ...bucket, LAKEBASE_API_KEY: T.api, LAKEBASE_INTERNAL_TOKEN: T.internal, LAKEBASE_COMPUTE_TOKEN: T.compute, LAKEBASE_STORAGE_TOKEN: T.storage, LAKEBASE_COMPUTE_API_TOKEN: T.hostApi,
  }, 'control plane listening');
  await Promise.all(['ch1', 'ch2'].map((m, i) => service(m, 'compute/main.ts', [
    '--host', lab.address(m), '--port', '9872', '--listen-host', lab.address(m), '--storage-url', url('sn1', 9870), '--control-plane-url', url('cp', 9871), '--name', `compute-host-${i + 1}`, '--pool-size', '1',
  ], { LAKEBASE_COMPUTE_TOKEN: T.compute, LAKEBASE_COMPUTE_API_TOKEN: T.hostApi, LAKEBASE_STORAGE_TOKEN: T.storage }, 'registered with the control plane')));
  await service('proxy', 'proxy/main.ts', ['--host', lab.address('proxy'), '--directory-url', `${url('cp', 9871)}/internal`, '--http-port', '4444', '--tcp-port', '5432'], { LAKEBASE_PROXY_DIRECTORY_TOKEN: T.internal }, 'proxy listening');
  const client = lab.spawn('client', process.execPath, [join(ROOT, 'test/support/netlab-client.ts')], {});
  procs.set('client', client);
  createInterface({ input: client.stderr! }).on('line', (l) => logs.push(`client ! ${l}`));
  createInterface({ input: client.stdout! }).on('line', (l) => {
    const m = JSON.parse(l) as { id?: number; event?: string; key?: string; row?: number; at?: number; result?: unknown; error?: string };
    if (m.event === 'ack') acks.get(m.key!)!.push({ row: m.row!, at: m.at! });
    else pending.get(m.id!)?.(m);
  });
}, 240_000);

afterAll(async () => {
  for (const pid of [...frozen]) signalTree(pid, 'SIGCONT', frozen);
  for (const p of procs.values()) p.kill('SIGKILL');
  await sleep(500);
  lab?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Made {
  id: string;
  endpoint: string;
  uri: string;
}

const answeredSince = (made: Made[], since: number) => async () => (made.every((p) => acks.get(p.id)!.some((a) => a.at > since)) ? true : undefined);

describe(`services on separate machines (${process.getuid?.() === 0 ? 'network namespaces' : '127.0.0.x addresses'})`, () => {
  it('a frozen compute host and a frozen storage node are each taken over within 30 s, with every acknowledged row', async () => {
    expect(lab.kind).toBe(process.getuid?.() === 0 ? 'netns' : 'loopback');
    const made: Made[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await api<{ project: { id: string }; endpoints: { id: string }[]; roles: { name: string; password: string }[] }>('POST', '/api/v2/projects', { project: { name: `m${i}` } });
      expect(r.status).toBe(201);
      const role = r.body.roles[0];
      // SCRAM through the proxy, the endpoint named in options (a cleartext password is for loopback and TLS only)
      const uri = `postgresql://${role.name}:${encodeURIComponent(role.password)}@${lab.address('proxy')}:5432/neondb?options=${encodeURIComponent(`endpoint=${r.body.endpoints[0].id}`)}`;
      made.push({ id: r.body.project.id, endpoint: r.body.endpoints[0].id, uri });
      await ask({ op: 'sql', uri, sql: 'CREATE TABLE t (id int PRIMARY KEY)' });
    }
    const hosts = (await api<{ compute_hosts: { name: string; endpoints: string[] }[] }>('GET', '/admin/v1/compute_hosts')).body.compute_hosts;
    const nodes = (await api<{ storage_nodes: { name: string; projects: string[] }[] }>('GET', '/admin/v1/storage_nodes')).body.storage_nodes;
    for (const h of hosts) expect(h.endpoints.length, JSON.stringify(hosts)).toBeGreaterThan(0);
    for (const n of nodes) expect(n.projects.length, JSON.stringify(nodes)).toBeGreaterThan(0);
    for (const p of made) {
      acks.set(p.id, []);
      await ask({ op: 'writer', uri: p.uri, key: p.id });
    }
    await sleep(1500);

    const host = hosts.reduce((a, b) => (b.endpoints.length > a.endpoints.length ? b : a));
    const hostPid = procs.get(host.name === 'compute-host-1' ? 'ch1' : 'ch2')!.pid!;
    signalTree(hostPid, 'SIGSTOP', frozen);
    const hostFrozenAt = Date.now();
    await until(`every project answering with ${host.name} frozen`, 30_000, answeredSince(made, hostFrozenAt + 500));
    signalTree(hostPid, 'SIGCONT', frozen);

    const node = nodes.find((n) => n.name === 'storage-node-2')!;
    expect(node.projects.length).toBeGreaterThan(0);
    const nodePid = procs.get('sn2')!.pid!;
    signalTree(nodePid, 'SIGSTOP', frozen);
    const nodeFrozenAt = Date.now();
    await until('every project answering with storage-node-2 frozen', 30_000, answeredSince(made, nodeFrozenAt + 500)).catch((e: Error) => {
      const late = made.filter((p) => !acks.get(p.id)!.some((a) => a.at > nodeFrozenAt + 500)).map((p) => `${p.id}/${p.endpoint}`);
      throw new Error(`${e.message}; late: ${late.join(', ')}\n${logs.filter((l) => /"level":(40|50)/.test(l) && !/heartbeat/.test(l)).slice(-50).join('\n')}`);
    });
    signalTree(nodePid, 'SIGCONT', frozen);

    for (const p of made) await ask({ op: 'stop', key: p.id });
    for (const p of made) {
      const { rows } = await ask<{ rows: { id: number }[] }>({ op: 'sql', uri: p.uri, sql: 'SELECT id FROM t' });
      const have = new Set(rows.map((r) => r.id));
      const acked = acks.get(p.id)!;
      expect(acked.filter((a) => !have.has(a.row)).map((a) => a.row), `project ${p.id}: acknowledged rows missing`).toEqual([]);
      expect(acked.length).toBeGreaterThan(10);
    }
  }, 240_000);
});
