// `lakebase start`'s parts that the whole-stack test (lakebase-e2e.test.ts) cannot reach quickly: secrets.json
// of an older version gains the new internal credentials, and the supervisor (real child processes) stops services
// in reverse start order one after the other, kills one that ignores SIGTERM only after its grace period, runs
// each in its own process group, and restarts a crashed service started on port 0 on the port it had.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSecrets } from '../cli/start.ts';
import { Supervisor } from '../cli/supervisor.ts';
import type { ServiceSpec, StopOutcome } from '../cli/supervisor.ts';

let dir: string;

// A service: listens on --port (0 = any), prints a JSON ready line with its url, and on SIGTERM logs, waits
// --stop-ms and exits (or, with --stubborn, ignores SIGTERM).
const SERVICE = `
import net from 'node:net';
import { parseArgs } from 'node:util';
const { values } = parseArgs({ options: { name: { type: 'string' }, port: { type: 'string' }, 'stop-ms': { type: 'string' }, stubborn: { type: 'boolean' } } });
const log = (msg, extra = {}) => process.stdout.write(JSON.stringify({ component: values.name, ...extra, msg }) + '\\n');
const server = net.createServer().listen(Number(values.port ?? 0), '127.0.0.1', () => {
  log('listening', { url: 'http://127.0.0.1:' + server.address().port });
});
process.on('SIGTERM', () => {
  log('got SIGTERM');
  if (values.stubborn) return;
  setTimeout(() => { log('bye'); process.exit(0); }, Number(values['stop-ms'] ?? 0));
});
`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lakebase-start-'));
  await writeFile(join(dir, 'service.mjs'), SERVICE);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function spec(name: string, args: string[] = []): ServiceSpec {
  const withPort = (port: string) => ['--name', name, '--port', port, ...args];
  return {
    name,
    script: join(dir, 'service.mjs'),
    args: withPort('0'),
    restartArgs: (ready) => withPort(new URL(String(ready.url)).port),
    readyMessage: 'listening',
  };
}

function recorder(): { lines: string[]; sv: Supervisor } {
  const lines: string[] = [];
  return { lines, sv: new Supervisor((l) => lines.push(l)) };
}

describe('secrets.json', () => {
  it('an older one (no storage or compute API token) keeps its secrets, gains the new ones, and stays 0600', async () => {
    const d = await mkdtemp(join(dir, 'secrets-'));
    const old = { apiKey: 'lb_old', internalToken: 'internal-old', computeToken: 'compute-old', secretKey: 'secret-old' };
    await writeFile(join(d, 'secrets.json'), JSON.stringify(old), { mode: 0o644 });
    const s = await loadSecrets(d);
    expect(s).toMatchObject(old);
    expect(s.storageToken).toMatch(/^[0-9a-f]{48}$/);
    expect(s.computeApiToken).toMatch(/^[0-9a-f]{48}$/);
    expect(s.storageToken).not.toBe(s.computeApiToken);
    expect(JSON.parse(await readFile(join(d, 'secrets.json'), 'utf8'))).toEqual(s);
    expect((await stat(join(d, 'secrets.json'))).mode & 0o777).toBe(0o600);
    expect(await loadSecrets(d)).toEqual(s); // made once, kept
    const fresh = await loadSecrets(await mkdtemp(join(dir, 'secrets-')));
    expect(Object.keys(fresh).sort()).toEqual(['apiKey', 'computeApiToken', 'computeToken', 'internalToken', 'secretKey', 'storageToken']);
    expect(fresh.storageToken).not.toBe(s.storageToken);
  });
});

describe('supervisor', () => {
  it('stops in reverse start order, each service only after the previous one has exited', async () => {
    const { lines, sv } = recorder();
    for (const name of ['storage', 'compute', 'control', 'proxy']) await sv.start(spec(name, ['--stop-ms', '150']));
    const progress: string[] = [];
    await sv.stopAll(10_000, (name, outcome) => {
      progress.push(`${name} ${outcome ?? 'stopping'}`);
      lines.push(`progress ${name} ${outcome ?? 'stopping'}`);
    });
    expect(progress).toEqual(['proxy stopping', 'proxy exited', 'control stopping', 'control exited', 'compute stopping', 'compute exited', 'storage stopping', 'storage exited']);
    // Nobody got SIGTERM before the one stopped before it said bye (its last line comes before its "exited").
    const events = lines.filter((l) => l.startsWith('progress') || l.includes('"bye"') || l.includes('SIGTERM')).map((l) => (l.startsWith('progress') ? l : `${JSON.parse(l).component} ${JSON.parse(l).msg}`));
    expect(events).toEqual(['proxy', 'control', 'compute', 'storage'].flatMap((n) => [`progress ${n} stopping`, `${n} got SIGTERM`, `${n} bye`, `progress ${n} exited`]));
    expect(sv.pids()).toEqual({});
  });

  it('kills a service that ignores SIGTERM only after its grace period, then goes on', async () => {
    const { lines, sv } = recorder();
    await sv.start(spec('storage', ['--stop-ms', '0']));
    await sv.start(spec('stubborn', ['--stubborn']));
    const outcomes: string[] = [];
    await sv.stopAll(400, (name, outcome?: StopOutcome) => void (outcome && outcomes.push(`${name} ${outcome}`)));
    expect(outcomes).toEqual(['stubborn killed', 'storage exited']);
    expect(lines.some((l) => l.includes('"stubborn"') && l.includes('got SIGTERM'))).toBe(true);
  });

  it('runs each service in its own process group, so a Ctrl-C to the terminal reaches only the supervisor', async () => {
    const { sv } = recorder();
    await sv.start(spec('a'));
    const pid = sv.pids().a;
    const pgid = Number(execFileSync('ps', ['-o', 'pgid=', '-p', String(pid)]).toString().trim());
    expect(pgid).toBe(pid);
    expect(pgid).not.toBe(Number(execFileSync('ps', ['-o', 'pgid=', '-p', String(process.pid)]).toString().trim()));
    await sv.stopAll(5_000);
  });

  it('restarts a crashed service that was started on port 0 on the port it had, where the others reach it', async () => {
    const { lines, sv } = recorder();
    const first = await sv.start(spec('storage'));
    const url = String(first.ready.url);
    const pid = sv.pids().storage;
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && !(sv.pids().storage > 0 && sv.pids().storage !== pid && lines.filter((l) => l.includes('"listening"')).length === 2); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const urls = lines.filter((l) => l.includes('"listening"')).map((l) => JSON.parse(l).url as string);
    expect(urls).toEqual([url, url]);
    const reached = await new Promise<boolean>((resolve) => net.connect(Number(new URL(url).port), '127.0.0.1', function (this: net.Socket) {
      this.end();
      resolve(true);
    }).on('error', () => resolve(false)));
    expect(reached).toBe(true);
    await sv.stopAll(5_000);
  });
});
