// One query cannot take the compute host past its memory budget: a result larger than the host's limit
// (--max-result-mb) is refused with 54000 while it is produced, not after it was held whole. A real host process
// with a 1 GiB budget and a 32 MiB limit, two tenants: A asks for ~1 GiB over TCP, B keeps answering meanwhile,
// the host's resident memory stays under the budget, and A's session and backend carry on (no restart).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { neon, neonConfig, Pool } from '@neondatabase/serverless';
import ws from 'ws';
import type { StorageNode } from '../storage-node/server.ts';
import { StorageClient } from '../storage-node/client.ts';
import { createTemplateTimeline } from '../compute/template.ts';
import { startTestStorageNode } from './support/storage-node-in-process.ts';
import { connectPg, startHostProcess } from './support/compute-host.ts';
import type { HostProcess, StartedCompute } from './support/compute-host.ts';
import { startLakebaseStack } from './support/lakebase-stack.ts';
import type { LakebaseStack } from './support/lakebase-stack.ts';

const TOKEN = 'result-limit-token';
const MiB = 1024 * 1024;
const BUDGET_MB = 1024;
const LIMIT_MB = 32;
/** ~1.1 GB of rows, 1 MB each. */
const HUGE = "SELECT repeat('x', 1000000) AS pad FROM generate_series(1, 1100)";

let root: string;
let node: StorageNode;
let host: HostProcess;
let a: StartedCompute;
let b: StartedCompute;
const clients: pg.Client[] = [];

/** A session on a compute, ended before the host stops even if its test failed. */
async function session(c: StartedCompute): Promise<pg.Client> {
  const db = await connectPg(c, TOKEN);
  db.on('error', () => {});
  clients.push(db);
  return db;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'lakebase-result-limit-'));
  node = await startTestStorageNode(root);
  const storage = new StorageClient(node.url, node.token);
  const template = await createTemplateTimeline({ storageUrl: node.url, storageToken: node.token });
  const tlA = (await storage.createTimeline({ ancestorTimelineId: template.timelineId })).timelineId;
  const tlB = (await storage.createTimeline({ ancestorTimelineId: template.timelineId })).timelineId;
  host = await startHostProcess({
    storageUrl: node.url, storageToken: node.token, token: TOKEN,
    args: ['--pool-size', '0', '--memory-budget-mb', String(BUDGET_MB), '--max-result-mb', String(LIMIT_MB)],
  });
  a = await host.api.start({ computeId: 'ep-tenant-a', timelineId: tlA });
  b = await host.api.start({ computeId: 'ep-tenant-b', timelineId: tlB });
}, 120_000);

afterAll(async () => {
  await Promise.all(clients.map((db) => db.end().catch(() => {})));
  await host?.stop();
  await node?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

/** The host process' resident memory now and its peak (VmRSS, VmHWM), in MiB. */
async function rssOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

async function computeInfo(id: string): Promise<{ restarts: number; state: string }> {
  const all = (await host.api.list()) as unknown as { computeId: string; restarts: number; state: string }[];
  const c = all.find((x) => x.computeId === id);
  if (!c) throw new Error(`no compute ${id}`);
  return c;
}

async function expectRefused(q: Promise<unknown>, limitMb = LIMIT_MB): Promise<pg.DatabaseError> {
  const err = (await q.then(() => null, (e: unknown) => e)) as pg.DatabaseError | null;
  expect(err, 'the query was answered in full').not.toBeNull();
  expect(err!.code).toBe('54000');
  expect(err!.message).toContain(`limit of ${limitMb} MB`);
  expect(err!.hint).toMatch(/LIMIT.*cursor.*--max-result-mb/);
  return err!;
}

describe('result limit of the compute host', () => {
  it('refuses a 1 GiB result over TCP with 54000, within the budget, while another tenant keeps answering', { timeout: 120_000 }, async () => {
    const dbA = await session(a);
    const dbB = await session(b);
    const pid = host.proc.pid!;
    const before = await rssOf(pid);
    let peak = before.rss;
    let done = false;
    const sampler = (async () => {
      while (!done) {
        peak = Math.max(peak, (await rssOf(pid)).rss);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    // tenant B: a stream of small queries for as long as A's query runs
    const answers: number[] = [];
    const streamB = (async () => {
      for (let i = 0; !done; i++) {
        const r = await dbB.query<{ n: number }>('SELECT $1::int + 1 AS n', [i]);
        answers.push(r.rows[0].n - 1 - i);
      }
    })();

    await expectRefused(dbA.query(HUGE));
    done = true;
    await Promise.all([sampler, streamB]);
    const after = await rssOf(pid);
    console.log(`host RSS MiB: before ${before.rss.toFixed(0)}, sampled peak ${peak.toFixed(0)}, VmHWM ${after.hwm.toFixed(0)}, after ${after.rss.toFixed(0)}; B answered ${answers.length} queries meanwhile`);

    expect(answers.length).toBeGreaterThan(0);
    expect(answers.every((d) => d === 0)).toBe(true);
    expect(after.hwm).toBeLessThan(BUDGET_MB);
    // the statement was stopped in place: the session and the backend carry on, nothing was restarted
    expect((await dbA.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    expect(await computeInfo('ep-tenant-a')).toMatchObject({ restarts: 0, state: 'running' });
  });

  it('keeps the transaction state Postgres gave and the results under the limit whole', { timeout: 60_000 }, async () => {
    const db = await session(a);
    // inside a transaction block the refused statement fails the block, as any error does
    await db.query('BEGIN');
    await expectRefused(db.query(HUGE));
    const inFailed = await db.query('SELECT 1').then(() => 'ran', (e: pg.DatabaseError) => e.code);
    expect(inFailed).toBe('25P02');
    await db.query('ROLLBACK');
    // a result just under the limit arrives whole, rows intact
    const rows = Math.floor((LIMIT_MB * MiB) / 1_000_100) - 2;
    const r = await db.query<{ len: number; last: string }>(`SELECT length(repeat('y', 1000000)) AS len, right(repeat('y', 999999) || g::text, 4) AS last FROM generate_series(1, ${rows}) g`);
    expect(r.rows.length).toBe(rows);
    expect(r.rows[rows - 1]).toEqual({ len: 1_000_000, last: `yyyy${rows}`.slice(-4) });
    // the extended protocol (a parameter): same refusal, and the session goes on
    await expectRefused(db.query("SELECT repeat('x', $1::int) FROM generate_series(1, 200)", [1_000_000]));
    expect((await db.query<{ n: number }>('SELECT $1::int AS n', [7])).rows).toEqual([{ n: 7 }]);
    expect(await computeInfo('ep-tenant-a')).toMatchObject({ restarts: 0 });
  });

  it('applies the same limit to COPY ... TO STDOUT', { timeout: 60_000 }, async () => {
    const db = await session(a);
    await expectRefused(db.query("COPY (SELECT repeat('z', 1000000) FROM generate_series(1, 200)) TO STDOUT"));
    expect((await db.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });
});

describe('result limit through the whole stack (lakebase start)', () => {
  // the compute's limit (4 MiB) is under the proxy's HTTP response limit (10 MiB): the compute's error reaches the driver
  const STACK_LIMIT_MB = 4;
  let stack: LakebaseStack;

  beforeAll(async () => {
    stack = await startLakebaseStack({ env: { LAKEBASE_COMPUTE_MAX_RESULT_MB: String(STACK_LIMIT_MB) } });
    neonConfig.fetchEndpoint = () => stack.sqlUrl;
    neonConfig.wsProxy = () => stack.wsProxy;
    neonConfig.useSecureWebSocket = false;
    neonConfig.webSocketConstructor = ws;
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('answers 54000 over HTTP (neon()) and WebSocket (Pool), and the sessions go on', { timeout: 120_000 }, async () => {
    const sql = neon(stack.project.connectionString);
    await expectRefused(sql.query(HUGE), STACK_LIMIT_MB);
    expect(await sql.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);

    const pool = new Pool({ connectionString: stack.project.connectionString });
    pool.on('error', () => {});
    const client = await pool.connect();
    try {
      await expectRefused(client.query(HUGE), STACK_LIMIT_MB);
      expect((await client.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    } finally {
      client.release();
      await pool.end();
    }
  });
});
