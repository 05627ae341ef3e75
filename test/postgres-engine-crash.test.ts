// Crash safety of the postgres engine, on a whole lakebase: under 4 concurrent writers that record every commit
// PostgreSQL acknowledged, kill -9 the postmaster, the FUSE server (the compute host's child that serves the data
// directory) and the storage node, three rounds each; after each round every acknowledged row is there.
// Why it holds: a commit is acknowledged only after its WAL fsync, which ships every change to the storage node and
// answers only on its acknowledgement; a restart mounts the timeline's durable state and PostgreSQL's crash
// recovery replays the WAL from there.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLakebaseStack } from './support/lakebase-stack.ts';
import type { LakebaseStack } from './support/lakebase-stack.ts';
import { computeHostApi, computeInfo } from './support/postgres-engine.ts';

let stack: LakebaseStack;

beforeAll(async () => {
  stack = await startLakebaseStack({ env: { LAKEBASE_ENGINE: 'postgres' } });
  const c = new pg.Client({ connectionString: stack.project.connectionString });
  await c.connect();
  await c.query('CREATE TABLE acked (writer int, n int, PRIMARY KEY (writer, n))');
  await c.end();
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writers that insert (writer, n) one commit at a time, reconnecting after errors; `acked` holds what Postgres confirmed. */
function startWriters(count: number, firstWriter: number): { acked: Set<string>; stop: () => Promise<void> } {
  const acked = new Set<string>();
  let running = true;
  const one = async (w: number): Promise<void> => {
    let n = 0;
    while (running) {
      const c = new pg.Client({ connectionString: stack.project.connectionString, connectionTimeoutMillis: 5000 });
      c.on('error', () => undefined);
      try {
        await c.connect();
        while (running) {
          n++;
          await c.query('INSERT INTO acked VALUES ($1, $2)', [w, n]);
          acked.add(`${w}/${n}`);
        }
      } catch (e) {
        if (process.env.DEBUG_WRITERS) console.error('writer', w, (e as Error).message);
        await sleep(100); // the compute is restarting: try again
      } finally {
        await c.end().catch(() => undefined);
      }
    }
  };
  const all = Promise.all(Array.from({ length: count }, (_, w) => one(firstWriter + w)));
  return { acked, stop: async () => { running = false; await all; } };
}

async function servicePid(name: string): Promise<number> {
  return (JSON.parse(await readFile(join(stack.dir, 'services.json'), 'utf8')) as Record<string, number>)[name];
}

/** The FUSE server of the compute: a child process of the compute host running compute/fuse/main.ts. */
async function fuseServerPid(): Promise<number> {
  const host = await servicePid('compute-host-1');
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid !== host) continue;
    const cmd = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('fuse')) return Number(name);
  }
  throw new Error('no FUSE server under the compute host');
}

async function postmasterPid(): Promise<number> {
  const api = await computeHostApi(stack);
  for (let i = 0; i < 100; i++) {
    const info = await computeInfo(api, stack.project.endpointId).catch(() => null);
    if (info?.state === 'running' && info.postmasterPid) return info.postmasterPid;
    await sleep(100);
  }
  throw new Error('the compute is not running');
}

/** Every acknowledged row must be in the table; answers how many there were. */
async function verify(acked: Set<string>): Promise<number> {
  for (let i = 0; ; i++) {
    const c = new pg.Client({ connectionString: stack.project.connectionString, connectionTimeoutMillis: 10_000 });
    try {
      await c.connect();
      const rows = (await c.query<{ writer: number; n: number }>('SELECT writer, n FROM acked')).rows;
      const have = new Set(rows.map((r) => `${r.writer}/${r.n}`));
      const missing = [...acked].filter((k) => !have.has(k));
      expect(missing, `acknowledged but missing after the crash: ${missing.slice(0, 10).join(', ')}`).toEqual([]);
      return acked.size;
    } catch (e) {
      if ((e as Error).message.includes('acknowledged but missing')) throw e;
      if (i >= 30) throw new Error(`the compute did not come back: ${(e as Error).message}\n${stack.log().slice(-6000)}`);
      await sleep(500);
    } finally {
      await c.end().catch(() => undefined);
    }
  }
}

let writerIds = 0;

async function crashRounds(kill: () => Promise<void>): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const writers = startWriters(4, writerIds);
    writerIds += 4;
    await sleep(1500);
    await kill();
    await sleep(2500); // writers go on against the restarted compute
    await writers.stop();
    expect(writers.acked.size).toBeGreaterThan(0);
    await verify(writers.acked);
  }
}

describe('kill -9 under 4 concurrent writers loses nothing acknowledged', () => {
  it('of the postmaster', async () => {
    await crashRounds(async () => {
      process.kill(await postmasterPid(), 'SIGKILL');
    });
  }, 120_000);

  it('of the FUSE server', async () => {
    await crashRounds(async () => {
      await postmasterPid();
      process.kill(await fuseServerPid(), 'SIGKILL');
    });
  }, 120_000);

  it('of the storage node', async () => {
    await crashRounds(async () => {
      await postmasterPid();
      process.kill(await servicePid('storage-node-1'), 'SIGKILL');
    });
  }, 180_000);
});
