// The FUSE server of the postgres engine (compute/fuse): a real storage node, real FUSE mounts served by forked
// FUSE server processes, touched only from other processes (sh, dd, cat, setpriv, initdb). Durability at fsync,
// remounts from the node, kill -9, renames and truncates under a tiny page cache, a read-only mount at an older
// LSN, fencing by a second writer, isolation between uids, initdb of PostgreSQL 15 on a mount, and the prefetch
// hint a clean stop writes for the next start.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FuseServer } from '../compute/fuse/fuse-server.ts';
import type { FuseEvent, FuseMountOptions } from '../compute/fuse/fuse-server.ts';
import { HINT_PATH, decodeHint } from '../compute/storage-fs/prefetch.ts';
import { createLogger } from '../lib/logger.ts';
import type { StorageNode } from '../storage-node/server.ts';
import { StorageClient } from '../storage-node/client.ts';
import { startTestStorageNode } from './support/storage-node-in-process.ts';

const INITDB = '/usr/lib/postgresql/15/bin/initdb';
const OWNER = 2000111;
const INTRUDER = 2000123;

interface Ran {
  code: number;
  stdout: Buffer;
  stderr: string;
}

function run(cmd: string, args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'buffer', maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr: stderr.toString() });
    });
  });
}

const sh = (script: string): Promise<Ran> => run('sh', ['-c', script]);
const asUser = (uid: number, gid: number, args: string[]): Promise<Ran> => run('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', ...args]);

async function ok(r: Promise<Ran>): Promise<Ran> {
  const done = await r;
  if (done.code !== 0) throw new Error(`command failed (${done.code}): ${done.stderr}`);
  return done;
}

/** A file's bytes read by another process; `direct` bypasses the kernel's page cache (reads reach the server). */
async function bytesOf(path: string, direct = false): Promise<Buffer> {
  return (await ok(sh(`dd if='${path}' bs=1M status=none${direct ? ' iflag=direct' : ''}`))).stdout;
}

let root: string;
let node: StorageNode;
let client: StorageClient;
let src: string;
const servers: FuseServer[] = [];
const log = createLogger('compute-fuse-test', 'warn');

beforeAll(async () => {
  root = await mkdtemp('/tmp/lakebase-fuse-test-');
  await chmod(root, 0o755); // the compute uids must reach their mountpoints
  node = await startTestStorageNode(join(root, 'node'));
  client = new StorageClient(node.url, node.token);
  src = join(root, 'src');
});

afterAll(async () => {
  for (const s of servers) await s.kill(); // SIGKILL if still running, then fusermount -uz
  client?.close();
  await node?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function newTimeline(): Promise<string> {
  return (await client.createTimeline({})).timelineId;
}

async function mount(timelineId: string, name: string, opts: Partial<FuseMountOptions> = {}): Promise<FuseServer> {
  const s = await FuseServer.start(
    { storageUrl: node.url, storageToken: node.token, timelineId, readOnly: false, mountpoint: join(root, name), uid: OWNER, gid: OWNER, cacheBytes: 1 << 20, ...opts },
    log,
  );
  servers.push(s);
  return s;
}

/** Writes `data` to `path` (through a local file and dd), with an fsync at the end when `fsync`. */
async function put(path: string, data: Buffer, opts: { fsync?: boolean; notrunc?: boolean } = {}): Promise<Ran> {
  await writeFile(src, data);
  const conv = [opts.fsync ? 'fsync' : '', opts.notrunc ? 'notrunc' : ''].filter(Boolean).join(',');
  return sh(`dd if='${src}' of='${path}' bs=64k status=none${conv ? ` conv=${conv}` : ''}`);
}

async function isMounted(dir: string): Promise<boolean> {
  return (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').some((l) => l.split(' ')[4] === dir);
}

describe('compute/fuse: a data directory served from a storage-node timeline', () => {
  it('ships at fsync; stop unmounts; a remount reads the same bytes from the storage node', async () => {
    const tl = await newTimeline();
    const a = await mount(tl, 'basic');
    const events: FuseEvent[] = [];
    a.onEvent((e) => events.push(e));
    expect((await ok(sh(`stat -c '%a %u %g' '${a.mountpoint}'`))).stdout.toString().trim()).toBe(`700 ${OWNER} ${OWNER}`);
    const data = randomBytes(300_000);
    await ok(sh(`mkdir '${a.mountpoint}/d'`));
    await ok(put(`${a.mountpoint}/d/f`, data, { fsync: true }));
    expect(events.some((e) => e.type === 'shipped')).toBe(true);
    expect(a.lsn).toBeGreaterThan(0);
    expect((await client.listFiles(tl)).files).toContainEqual({ path: 'd/f', type: 'file', size: data.length });
    const st = await a.stats();
    expect(st.ops.fsync).toBeGreaterThan(0);
    expect(st.ops.write).toBeGreaterThan(0);
    expect(st.batches).toBeGreaterThan(0);
    expect(st.batchBytes).toBeGreaterThanOrEqual(data.length);
    expect(st.batchSeconds.count).toBe(st.batches);
    expect(st.dirtyBytes).toBe(0);

    const { lsn } = await a.stop();
    expect(lsn).toBe(a.lsn);
    expect(await isMounted(a.mountpoint)).toBe(false);
    expect(events.at(-1)).toEqual({ type: 'exit', code: 0, signal: null });

    const b = await mount(tl, 'basic', { cacheBytes: 64 * 1024 });
    expect(b.startInfo).toMatchObject({ lsn, files: 2, bytes: data.length });
    expect((await bytesOf(`${b.mountpoint}/d/f`)).equals(data)).toBe(true);
    const st2 = await b.stats();
    expect(st2.pagesFetched).toBeGreaterThan(0);
    expect(st2.cachedBytes).toBeLessThanOrEqual(64 * 1024);
    expect((await b.stop()).lsn).toBe(lsn); // nothing to ship
  });

  it('after kill -9 of the FUSE server, everything fsynced is there on remount', async () => {
    const tl = await newTimeline();
    const a = await mount(tl, 'crash');
    const synced = randomBytes(100_000);
    await ok(put(`${a.mountpoint}/f`, synced, { fsync: true }));
    const unsynced = randomBytes(50_000);
    await ok(put(`${a.mountpoint}/f`, unsynced, { notrunc: true }));
    await ok(put(`${a.mountpoint}/g`, unsynced));
    await a.kill();
    expect(await isMounted(a.mountpoint)).toBe(false);

    const b = await mount(tl, 'crash');
    const f = await bytesOf(`${b.mountpoint}/f`);
    const overwritten = Buffer.concat([unsynced, synced.subarray(unsynced.length)]);
    expect(f.equals(synced) || f.equals(overwritten)).toBe(true); // the unsynced write may be lost
    const g = await sh(`cat '${b.mountpoint}/g'`);
    if (g.code === 0) expect(g.stdout.equals(unsynced)).toBe(true);
    await b.stop();
  });

  it('renames and truncates hold under a tiny page cache (evicted pages come back from their durable path) and survive a remount', async () => {
    const tl = await newTimeline();
    const small = { cacheBytes: 16 * 1024 };
    const a = await mount(tl, 'rename', small);
    const x = randomBytes(200_000);
    const inner = randomBytes(70_000);
    await ok(sh(`mkdir '${a.mountpoint}/dd'`));
    await ok(put(`${a.mountpoint}/dd/in`, inner));
    await ok(put(`${a.mountpoint}/x`, x, { fsync: true }));
    // not shipped yet: the pages evicted since the ack must be read back under x and dd/in
    await ok(sh(`mv '${a.mountpoint}/x' '${a.mountpoint}/y' && mv '${a.mountpoint}/dd' '${a.mountpoint}/ee'`));
    expect((await bytesOf(`${a.mountpoint}/y`, true)).equals(x)).toBe(true);
    expect((await bytesOf(`${a.mountpoint}/ee/in`, true)).equals(inner)).toBe(true);
    const st = await a.stats();
    expect(st.cachedBytes).toBeLessThanOrEqual(16 * 1024);
    expect(st.pagesFetched).toBeGreaterThan(30); // evicted pages were read back
    // a cut, then growth: the old bytes past the cut must read as zeros, before and after the ship
    await ok(sh(`truncate -s 10000 '${a.mountpoint}/y' && truncate -s 50000 '${a.mountpoint}/y'`));
    const expected = Buffer.concat([x.subarray(0, 10_000), Buffer.alloc(40_000)]);
    expect((await bytesOf(`${a.mountpoint}/y`, true)).equals(expected)).toBe(true);
    await ok(sh(`sync '${a.mountpoint}/y'`)); // fsync: ships the renames and truncates
    expect((await bytesOf(`${a.mountpoint}/y`, true)).equals(expected)).toBe(true);
    expect((await bytesOf(`${a.mountpoint}/ee/in`, true)).equals(inner)).toBe(true);
    await a.stop();

    const paths = (await client.listFiles(tl)).files.map((f) => f.path).sort();
    expect(paths).toEqual(['ee', 'ee/in', 'y']);
    const b = await mount(tl, 'rename', small);
    expect((await bytesOf(`${b.mountpoint}/y`)).equals(expected)).toBe(true);
    expect((await bytesOf(`${b.mountpoint}/ee/in`)).equals(inner)).toBe(true);
    await b.stop();
  });

  it('a file unlinked while open keeps working for its holder, and its unlink is shipped', async () => {
    const tl = await newTimeline();
    const a = await mount(tl, 'unlinked');
    const script = [
      "const fs = require('node:fs');",
      'const p = process.argv[1];',
      "const fd = fs.openSync(p, 'w+');",
      "fs.writeSync(fd, Buffer.from('hello world'));",
      'fs.fsyncSync(fd);',
      'fs.unlinkSync(p);',
      "fs.writeSync(fd, Buffer.from('HELLO'), 0, 5, 0);",
      'const b = Buffer.alloc(32);',
      'const n = fs.readSync(fd, b, 0, 32, 0);',
      'fs.fsyncSync(fd);',
      'fs.closeSync(fd);',
      "process.stdout.write(b.subarray(0, n).toString() + ' ' + fs.readdirSync(require('node:path').dirname(p)).length);",
    ].join('\n');
    const r = await ok(run(process.execPath, ['-e', script, `${a.mountpoint}/u`]));
    expect(r.stdout.toString()).toBe('HELLO world 0');
    expect((await client.listFiles(tl)).files).toEqual([]);
    await a.stop();
  });

  it('a read-only mount at an older LSN shows the old bytes and ships nothing', async () => {
    const tl = await newTimeline();
    const a = await mount(tl, 'versions');
    const v1 = randomBytes(40_000);
    const v2 = randomBytes(40_000);
    await ok(put(`${a.mountpoint}/f`, v1, { fsync: true }));
    const lsn1 = a.lsn;
    await ok(put(`${a.mountpoint}/f`, v2, { fsync: true, notrunc: true }));
    const lsn2 = (await a.stop()).lsn;
    expect(lsn2).toBeGreaterThan(lsn1);

    const ro = await mount(tl, 'versions-ro', { readOnly: true, lsn: lsn1 });
    expect(ro.startInfo.lsn).toBe(lsn1);
    expect((await bytesOf(`${ro.mountpoint}/f`)).equals(v1)).toBe(true);
    await ok(put(`${ro.mountpoint}/f`, v2, { fsync: true })); // accepted, kept in memory
    await ok(put(`${ro.mountpoint}/new`, v2, { fsync: true }));
    expect((await bytesOf(`${ro.mountpoint}/f`, true)).equals(v2)).toBe(true);
    expect((await ro.stats()).batches).toBe(0);
    expect((await ro.stop()).lsn).toBe(lsn1);
    expect((await client.getTimeline(tl)).lastLsn).toBe(lsn2);
    expect((await client.listFiles(tl)).files.map((f) => f.path)).toEqual(['f']);
  });

  it('a second writer fences the first: its next fsync fails with EIO and it reports fenced', async () => {
    const tl = await newTimeline();
    const a = await mount(tl, 'fence-a');
    await ok(put(`${a.mountpoint}/f`, randomBytes(10_000), { fsync: true }));
    const fenced = new Promise<FuseEvent>((resolve) => a.onEvent((e) => e.type === 'fenced' && resolve(e)));
    const b = await mount(tl, 'fence-b');
    await ok(put(`${b.mountpoint}/g`, randomBytes(10_000), { fsync: true }));

    const r = await put(`${a.mountpoint}/h`, randomBytes(10_000), { fsync: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Input\/output error/);
    expect((await fenced).type).toBe('fenced');
    expect((await a.stats()).failed).toBe('fenced');
    expect((await sh(`sync '${a.mountpoint}/f'`)).code).not.toBe(0); // every later fsync fails too
    await a.kill();
    await b.stop();
    expect((await client.listFiles(tl)).files.map((f) => f.path).sort()).toEqual(['f', 'g']);
  });

  it('start rejects with the reason when the mount cannot be made, and leaves nothing mounted', async () => {
    const missing = randomBytes(16).toString('hex');
    await expect(mount(missing, 'bad')).rejects.toThrow(new RegExp(`${missing}.*(not found|does not exist|no such|unknown)`, 'i'));
    expect(await isMounted(join(root, 'bad'))).toBe(false);
    await expect(mount(await newTimeline(), 'bad', { mountpoint: 'relative/dir' })).rejects.toThrow(/absolute/);
    await expect(mount(await newTimeline(), 'bad', { lsn: 0 })).rejects.toThrow(/read-only/);
  });

  it('a clean stop writes the pages read in the start window as the prefetch hint; the next start fetches them in bulk', async () => {
    const tl = await newTimeline();
    const big = { cacheBytes: 8 << 20 };
    const a = await mount(tl, 'hint', big);
    await ok(sh(`mkdir -p '${a.mountpoint}/base/1' && printf '15\\n' > '${a.mountpoint}/PG_VERSION'`));
    await ok(put(`${a.mountpoint}/base/1/100`, randomBytes(40 * 8192), { fsync: true }));
    await a.stop(); // no data directory at its mount: no hint
    const hintOf = async (): Promise<{ path: string; page: number }[]> => decodeHint((await client.readPages(tl, [{ path: HINT_PATH, page: 0 }]))[0]);
    const readPages = (dir: string, file: string): Promise<Ran[]> =>
      Promise.all([`skip=0 count=8`, `skip=20 count=4`].map((r) => ok(sh(`dd if='${dir}/base/1/${file}' of=/dev/null bs=8192 ${r} iflag=direct status=none`))));

    const b = await mount(tl, 'hint', big);
    await readPages(b.mountpoint, '100');
    b.startDone();
    await ok(sh(`dd if='${b.mountpoint}/base/1/100' of=/dev/null bs=8192 skip=30 count=1 iflag=direct status=none`)); // after the window
    expect((await b.stats()).startPages).toBe(12);
    await b.stop();
    const want = [...[0, 1, 2, 3, 4, 5, 6, 7, 20, 21, 22, 23].map((page) => ({ path: 'base/1/100', page }))];
    expect(await hintOf()).toEqual(want);

    // the next start prefetches them in bulk, and they are recorded again (the hint does not shrink)
    const c = await mount(tl, 'hint', big);
    expect(c.startInfo.hintPages).toBe(12);
    expect(c.startInfo.prefetchPages).toBeGreaterThanOrEqual(12);
    expect(c.startInfo.roundTrips).toBeLessThan(12);
    await readPages(c.mountpoint, '100');
    const st = await c.stats();
    expect(st).toMatchObject({ fetchRequests: 0, pagesFetched: 0, startPages: 12 });
    await ok(sh(`mv '${c.mountpoint}/base/1/100' '${c.mountpoint}/base/1/200'`));
    await c.stop(); // the hint follows the rename: it names the path the next start sees
    expect(await hintOf()).toEqual(want.map((r) => ({ ...r, path: 'base/1/200' })));

    const lsn = (await client.getTimeline(tl)).lastLsn;
    const ro = await mount(tl, 'hint-ro', { ...big, readOnly: true });
    expect(ro.startInfo.hintPages).toBe(12);
    await ok(sh(`dd if='${ro.mountpoint}/base/1/200' of=/dev/null bs=8192 skip=30 count=1 iflag=direct status=none`));
    ro.startDone();
    await ro.stop();
    expect((await client.getTimeline(tl)).lastLsn).toBe(lsn); // a read-only mount never writes the hint
  });

  it('initdb of PostgreSQL 15 runs on a mount; another uid is refused on a remount that the owner can read', async () => {
    const pgUid = Number((await ok(run('id', ['-u', 'postgres']))).stdout.toString());
    const pgGid = Number((await ok(run('id', ['-g', 'postgres']))).stdout.toString());
    const tl = await newTimeline();
    // initdb needs a passwd entry for its uid (postgres itself does not), hence the postgres system user here
    const a = await mount(tl, 'initdb', { uid: pgUid, gid: pgGid, cacheBytes: 8 << 20 });
    const init = await asUser(pgUid, pgGid, [INITDB, '-D', a.mountpoint, '-U', 'cloud_admin', '--auth=trust', '-N']);
    expect(init.stderr).not.toMatch(/error/i);
    expect(init.code).toBe(0);
    await a.stop(); // -N: initdb never fsyncs, stop ships it all

    const b = await mount(tl, 'pgdata', { uid: OWNER, gid: OWNER, localFiles: [{ path: 'standby.signal', data: new Uint8Array(0) }] });
    expect(b.startInfo.files).toBeGreaterThan(900);
    const owner = await asUser(OWNER, OWNER, ['cat', `${b.mountpoint}/PG_VERSION`]);
    expect(owner.stdout.toString()).toBe('15\n');
    expect((await asUser(OWNER, OWNER, ['ls', `${b.mountpoint}/standby.signal`])).code).toBe(0);
    const intruder = await asUser(INTRUDER, INTRUDER, ['cat', `${b.mountpoint}/PG_VERSION`]);
    expect(intruder.code).not.toBe(0);
    expect(intruder.stderr).toMatch(/Permission denied/);
    expect((await asUser(INTRUDER, INTRUDER, ['touch', `${b.mountpoint}/x`])).stderr).toMatch(/Permission denied/);
    await ok(sh(`sync '${b.mountpoint}/PG_VERSION'`));
    await b.stop();
    const paths = (await client.listFiles(tl)).files.map((f) => f.path);
    expect(paths).toContain('global/pg_control');
    expect(paths).not.toContain('standby.signal'); // local files are never shipped
  });
});
