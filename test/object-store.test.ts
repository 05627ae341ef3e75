// One contract for every ObjectStore backend, run against a local folder and against S3 (a real Miniflare R2 bucket
// over its S3 endpoint, started once by test/support/global-setup.ts), plus backend-specific tests: S3 retries
// through a failing proxy, LocalFolderStore conditional writes raced by separate processes, stale lock recovery.

import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { fork, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  PreconditionFailedError,
  type ObjectStore,
  type ObjectStoreMetrics,
} from '../storage-node/object-store/object-store.ts';
import { LocalFolderStore } from '../storage-node/object-store/local-folder.ts';
import { S3Store, type S3StoreConfig } from '../storage-node/object-store/s3.ts';
import {
  createObjectStore,
  objectStoreConfigFromEnv,
  objectStoreFromEnv,
  ObjectStoreConfigError,
} from '../storage-node/object-store/from-config.ts';

// ---------------------------------------------------------------------------------------------------------------
// helpers

class RecordingMetrics implements ObjectStoreMetrics {
  requests: { op: string; seconds: number; bytes: number; ok: boolean }[] = [];
  retries: string[] = [];
  request(op: 'get' | 'head' | 'put' | 'delete' | 'list', seconds: number, bytes: number, ok: boolean): void {
    this.requests.push({ op, seconds, bytes, ok });
  }
  retry(op: string): void {
    this.retries.push(op);
  }
}

const text = (s: string) => Buffer.from(s, 'utf8');

async function expectPreconditionFailed(p: Promise<unknown>): Promise<void> {
  await expect(p).rejects.toBeInstanceOf(PreconditionFailedError);
}

async function settleAll<T>(ps: Promise<T>[]): Promise<{ won: T[]; lost: number; other: unknown[] }> {
  const results = await Promise.allSettled(ps);
  const won: T[] = [];
  const other: unknown[] = [];
  let lost = 0;
  for (const r of results) {
    if (r.status === 'fulfilled') won.push(r.value);
    else if (r.reason instanceof PreconditionFailedError) lost++;
    else other.push(r.reason);
  }
  return { won, lost, other };
}

function uniquePrefix(label: string): string {
  return `test-object-store/${label}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

interface Backend {
  name: string;
  make(options?: { metrics?: ObjectStoreMetrics; listPageSize?: number }): Promise<ObjectStore>;
}

const tempDirs: string[] = [];
afterAll(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(label: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), `lakebase-${label}-`));
  tempDirs.push(d);
  return d;
}

function s3Config(): S3StoreConfig {
  const s3 = inject('s3');
  return {
    endpoint: s3.endpoint,
    region: s3.region,
    bucket: s3.bucket,
    forcePathStyle: true,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    prefix: uniquePrefix('s3'),
  };
}

const backends: Backend[] = [
  {
    name: 'LocalFolderStore',
    async make(options = {}) {
      return new LocalFolderStore(await tempDir('objects'), { metrics: options.metrics });
    },
  },
  {
    name: 'S3Store (Miniflare R2)',
    async make(options = {}) {
      return new S3Store({ ...s3Config(), metrics: options.metrics, listPageSize: options.listPageSize });
    },
  },
];

// ---------------------------------------------------------------------------------------------------------------
// the contract

describe.each(backends)('ObjectStore contract: $name', (backend) => {
  const stores: ObjectStore[] = [];
  const make = async (options?: { metrics?: ObjectStoreMetrics; listPageSize?: number }) => {
    const s = await backend.make(options);
    stores.push(s);
    return s;
  };
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close?.()));
  });

  it('puts, gets and heads objects with matching ETags; overwrites change the ETag', async () => {
    const store = await make();
    const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const { etag } = await store.put('dir/obj', binary);
    expect(etag).toMatch(/^".+"$/);

    const got = await store.get('dir/obj');
    expect(got).not.toBeNull();
    expect(Buffer.compare(got!.body, binary)).toBe(0);
    expect(got!.etag).toBe(etag);
    expect(await store.head('dir/obj')).toEqual({ key: 'dir/obj', size: 256, etag });

    const second = await store.put('dir/obj', text('replaced'));
    expect(second.etag).not.toBe(etag);
    expect((await store.get('dir/obj'))!.body.toString()).toBe('replaced');
    expect((await store.head('dir/obj'))!.etag).toBe(second.etag);

    // Same bytes, same ETag (content hashes), on another key too.
    expect((await store.put('other', text('replaced'))).etag).toBe(second.etag);

    const empty = await store.put('empty', new Uint8Array(0));
    expect((await store.get('empty'))!.body.length).toBe(0);
    expect(await store.head('empty')).toEqual({ key: 'empty', size: 0, etag: empty.etag });
    expect(store.description).toMatch(/^(file|s3):\/\//);
  });

  it('returns null for missing objects and deletes idempotently', async () => {
    const store = await make();
    expect(await store.get('nope')).toBeNull();
    expect(await store.get('nope', { start: 0, end: 10 })).toBeNull();
    expect(await store.head('nope')).toBeNull();
    expect(await store.head('a/b/c/nope')).toBeNull();
    await store.delete('nope');

    await store.put('a/b/c', text('x'));
    expect(await store.head('a/b')).toBeNull(); // a "directory" is not an object
    await store.delete('a/b/c');
    expect(await store.get('a/b/c')).toBeNull();
    expect(await store.head('a/b/c')).toBeNull();
    await store.delete('a/b/c');
    expect(await store.list('')).toEqual([]);
    // The key can be written again after a delete (parent directories pruned meanwhile, locally).
    await store.put('a/b/c', text('again'));
    expect((await store.get('a/b/c'))!.body.toString()).toBe('again');
  });

  it('lists by prefix, sorted, with sizes and ETags', async () => {
    const store = await make({ listPageSize: 2 }); // S3: several ListObjectsV2 pages with continuation tokens
    const keys = ['a/2', 'a/10', 'a/1', 'ab', 'a/sub/deep/x', 'b/x', 'a-', 'z'];
    const etags = new Map<string, string>();
    for (const k of keys) etags.set(k, (await store.put(k, text(`value of ${k}`))).etag);

    const all = await store.list('');
    expect(all.map((o) => o.key)).toEqual(['a-', 'a/1', 'a/10', 'a/2', 'a/sub/deep/x', 'ab', 'b/x', 'z']);
    for (const o of all) {
      expect(o.etag).toBe(etags.get(o.key));
      expect(o.size).toBe(Buffer.byteLength(`value of ${o.key}`));
    }
    expect((await store.list('a/')).map((o) => o.key)).toEqual(['a/1', 'a/10', 'a/2', 'a/sub/deep/x']);
    expect((await store.list('a')).map((o) => o.key)).toEqual(['a-', 'a/1', 'a/10', 'a/2', 'a/sub/deep/x', 'ab']);
    expect((await store.list('a/1')).map((o) => o.key)).toEqual(['a/1', 'a/10']);
    expect((await store.list('a/s')).map((o) => o.key)).toEqual(['a/sub/deep/x']);
    expect((await store.list('a/sub/deep/x')).map((o) => o.key)).toEqual(['a/sub/deep/x']);
    expect(await store.list('c')).toEqual([]);
    expect(await store.list('a/sub/nothing/')).toEqual([]);

    await store.delete('a/10');
    expect((await store.list('a/1')).map((o) => o.key)).toEqual(['a/1']);
  });

  it('reads byte ranges (end exclusive, clamped to the object)', async () => {
    const store = await make();
    const body = text('0123456789abcdef');
    const { etag } = await store.put('r', body);
    const read = async (start: number, end: number) => {
      const r = await store.get('r', { start, end });
      expect(r).not.toBeNull();
      expect(r!.etag).toBe(etag);
      return r!.body.toString();
    };
    expect(await read(0, 4)).toBe('0123');
    expect(await read(4, 10)).toBe('456789');
    expect(await read(15, 16)).toBe('f');
    expect(await read(10, 100)).toBe('abcdef');
    expect(await read(0, 16)).toBe('0123456789abcdef');
    expect(await read(5, 5)).toBe('');
    expect(await read(16, 20)).toBe('');
    expect(await read(100, 200)).toBe('');
    await expect(store.get('r', { start: 5, end: 4 })).rejects.toThrow(RangeError);
    await expect(store.get('r', { start: -1, end: 4 })).rejects.toThrow(RangeError);

    // A larger object, read at an offset.
    const big = randomBytes(300_000);
    await store.put('big', big);
    const part = await store.get('big', { start: 123_457, end: 200_001 });
    expect(Buffer.compare(part!.body, big.subarray(123_457, 200_001))).toBe(0);
  });

  it('ifNoneMatch: * creates once and leaves an existing object unchanged', async () => {
    const store = await make();
    const first = await store.put('once', text('first'), { ifNoneMatch: '*' });
    await expectPreconditionFailed(store.put('once', text('second'), { ifNoneMatch: '*' }));
    const got = await store.get('once');
    expect(got!.body.toString()).toBe('first');
    expect(got!.etag).toBe(first.etag);
    // Deleted, the key can be created again.
    await store.delete('once');
    await store.put('once', text('third'), { ifNoneMatch: '*' });
    expect((await store.get('once'))!.body.toString()).toBe('third');
  });

  it('ifMatch: a stale or missing ETag fails and changes nothing; the current ETag succeeds', async () => {
    const store = await make();
    const v1 = await store.put('m', text('v1'));
    const v2 = await store.put('m', text('v2'), { ifMatch: v1.etag });
    expect((await store.get('m'))!.body.toString()).toBe('v2');

    await expectPreconditionFailed(store.put('m', text('v3'), { ifMatch: v1.etag }));
    const after = await store.get('m');
    expect(after!.body.toString()).toBe('v2');
    expect(after!.etag).toBe(v2.etag);

    // ETags are accepted unquoted too.
    const v4 = await store.put('m', text('v4'), { ifMatch: v2.etag.replace(/"/g, '') });
    expect((await store.head('m'))!.etag).toBe(v4.etag);

    // No object: nothing matches, and nothing is created.
    await expectPreconditionFailed(store.put('missing', text('x'), { ifMatch: v4.etag }));
    expect(await store.head('missing')).toBeNull();

    await expect(store.put('m', text('x'), { ifMatch: v4.etag, ifNoneMatch: '*' })).rejects.toThrow(/combined/);
    expect((await store.get('m'))!.body.toString()).toBe('v4');
  });

  it('concurrent conditional writers: exactly one wins', async () => {
    const store = await make();
    const base = await store.put('race', text('base'));
    const writers = Array.from({ length: 6 }, (_, i) => store.put('race', text(`writer ${i}`), { ifMatch: base.etag }));
    const { won, lost, other } = await settleAll(writers);
    expect(other).toEqual([]);
    expect(won.length).toBe(1);
    expect(lost).toBe(5);
    const final = await store.get('race');
    expect(final!.etag).toBe(won[0].etag);
    expect(final!.body.toString()).toMatch(/^writer \d$/);

    const creators = Array.from({ length: 6 }, (_, i) => store.put('race-create', text(`c${i}`), { ifNoneMatch: '*' }));
    const created = await settleAll(creators);
    expect(created.other).toEqual([]);
    expect(created.won.length).toBe(1);
    expect((await store.head('race-create'))!.etag).toBe(created.won[0].etag);
  });

  it('rejects keys that are not portable paths', async () => {
    const store = await make();
    for (const bad of ['', '../x', 'a/../../x', '/abs', 'a//b', 'a/', './a', 'a\\b', 'x\0y', 'k'.repeat(1025)]) {
      await expect(store.put(bad, text('x')), JSON.stringify(bad)).rejects.toThrow(/invalid object key/);
      await expect(store.get(bad), JSON.stringify(bad)).rejects.toThrow(/invalid object key/);
    }
  });

  it('reports requests to ObjectStoreMetrics', async () => {
    const metrics = new RecordingMetrics();
    const store = await make({ metrics });
    await store.put('m/1', text('12345'));
    await store.get('m/1');
    await store.head('m/1');
    await store.list('m/');
    await expectPreconditionFailed(store.put('m/1', text('x'), { ifNoneMatch: '*' }));
    await store.delete('m/1');
    expect(metrics.requests.map((r) => [r.op, r.bytes, r.ok])).toEqual([
      ['put', 5, true],
      ['get', 5, true],
      ['head', 0, true],
      ['list', 0, true],
      ['put', 0, false],
      ['delete', 0, true],
    ]);
    expect(metrics.requests.every((r) => r.seconds >= 0 && r.seconds < 10)).toBe(true);
    expect(metrics.retries).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// S3: keys under the prefix, retries through a failing proxy

describe('S3Store', () => {
  it('stores keys under its prefix and lists them without it; separate prefixes do not see each other', async () => {
    const config = s3Config();
    const a = new S3Store(config);
    const b = new S3Store({ ...s3Config(), prefix: config.prefix + '-sibling/' });
    try {
      await a.put('k', text('a'));
      await b.put('k', text('b'));
      expect((await a.list('')).map((o) => o.key)).toEqual(['k']);
      expect((await b.get('k'))!.body.toString()).toBe('b');
      expect(a.description).toBe(`s3://${config.bucket}/${config.prefix}/ (${config.endpoint})`);
      const raw = new S3Store({ ...config, prefix: '' });
      expect((await raw.get(`${config.prefix}/k`))!.body.toString()).toBe('a');
      await raw.close();
    } finally {
      await a.close();
      await b.close();
    }
  });

  describe('through a proxy that fails', () => {
    let server: Server;
    let proxyPort = 0;
    let mode: { kind: 'fail'; remaining: number } | { kind: 'hang'; remaining: number } = { kind: 'fail', remaining: 0 };
    let seen = 0;
    const hung: (() => void)[] = [];

    beforeAll(async () => {
      const upstream = new URL(inject('s3').endpoint);
      server = createServer((req, res) => {
        seen++;
        if (mode.remaining > 0) {
          mode.remaining--;
          req.resume();
          if (mode.kind === 'hang') {
            hung.push(() => res.destroy());
            return;
          }
          const body =
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>' +
            '<Message>Please reduce your request rate.</Message></Error>';
          res.writeHead(503, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
          res.end(body);
          return;
        }
        // Forward unchanged, Host header included: SigV4 signed it.
        const up = httpRequest(
          {
            host: upstream.hostname,
            port: upstream.port,
            method: req.method,
            path: req.url,
            headers: req.headers,
          },
          (upRes) => {
            res.writeHead(upRes.statusCode ?? 502, upRes.headers);
            upRes.pipe(res);
          },
        );
        up.on('error', () => res.destroy());
        req.pipe(up);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      proxyPort = (server.address() as AddressInfo).port;
    });
    afterAll(async () => {
      for (const h of hung) h();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    });

    const proxiedStore = (metrics: ObjectStoreMetrics, extra: Partial<S3StoreConfig> = {}) => {
      const upstream = new URL(inject('s3').endpoint);
      return new S3Store({
        ...s3Config(),
        endpoint: `http://127.0.0.1:${proxyPort}${upstream.pathname}`,
        metrics,
        ...extra,
      });
    };

    it('retries 503s with backoff, succeeds and reports the retries', async () => {
      const metrics = new RecordingMetrics();
      const store = proxiedStore(metrics);
      try {
        mode = { kind: 'fail', remaining: 2 };
        seen = 0;
        const { etag } = await store.put('retried', text('made it'), { ifNoneMatch: '*' });
        expect(seen).toBe(3);
        expect(metrics.retries).toEqual(['put', 'put']);

        mode = { kind: 'fail', remaining: 3 };
        const got = await store.get('retried');
        expect(got!.body.toString()).toBe('made it');
        expect(got!.etag).toBe(etag);
        expect(metrics.retries).toEqual(['put', 'put', 'get', 'get', 'get']);

        mode = { kind: 'fail', remaining: 1 };
        expect((await store.list('')).map((o) => o.key)).toEqual(['retried']);
        mode = { kind: 'fail', remaining: 1 };
        expect(await store.head('nope')).toBeNull();
        expect(metrics.retries).toEqual(['put', 'put', 'get', 'get', 'get', 'list', 'head']);
        expect(metrics.requests.every((r) => r.ok)).toBe(true);
      } finally {
        await store.close();
      }
    });

    it('gives up after maxAttempts and reports the failure', async () => {
      const metrics = new RecordingMetrics();
      const store = proxiedStore(metrics, { maxAttempts: 3 });
      try {
        mode = { kind: 'fail', remaining: 3 };
        seen = 0;
        await expect(store.put('doomed', text('x'))).rejects.toMatchObject({ $metadata: { httpStatusCode: 503 } });
        expect(seen).toBe(3);
        expect(metrics.retries).toEqual(['put', 'put']);
        expect(metrics.requests.map((r) => [r.op, r.ok])).toEqual([['put', false]]);
        expect(await store.head('doomed')).toBeNull();
      } finally {
        await store.close();
      }
    });

    it('retries a request that times out', async () => {
      const metrics = new RecordingMetrics();
      const store = proxiedStore(metrics, { requestTimeoutMs: 300 });
      try {
        mode = { kind: 'hang', remaining: 1 };
        const t0 = performance.now();
        await store.put('slow', text('eventually'));
        expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
        expect(metrics.retries).toEqual(['put']);
        expect((await store.get('slow'))!.body.toString()).toBe('eventually');
      } finally {
        await store.close();
      }
    });

    it('a conditional put whose first attempt landed but whose response was lost still succeeds', async () => {
      // Simulate it: the object already holds exactly our bytes, the next attempt answers 412.
      const metrics = new RecordingMetrics();
      const store = proxiedStore(metrics);
      try {
        await store.put('landed', text('mine'));
        mode = { kind: 'fail', remaining: 1 }; // first attempt 503, the retry sees the object: 412
        const r = await store.put('landed', text('mine'), { ifNoneMatch: '*' });
        expect(r.etag).toBe(`"${createHash('md5').update('mine').digest('hex')}"`);
        // Different bytes: a genuine conflict.
        mode = { kind: 'fail', remaining: 1 };
        await expectPreconditionFailed(store.put('landed', text('theirs'), { ifNoneMatch: '*' }));
        expect((await store.get('landed'))!.body.toString()).toBe('mine');
      } finally {
        await store.close();
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// LocalFolderStore: processes racing, locks, files on disk

const CHILD_SCRIPT = `
import { LocalFolderStore } from ${JSON.stringify(new URL('../storage-node/object-store/local-folder.ts', import.meta.url).href)};
import { PreconditionFailedError } from ${JSON.stringify(new URL('../storage-node/object-store/object-store.ts', import.meta.url).href)};
const [root, mode, key, arg, name] = process.argv.slice(2);
const store = new LocalFolderStore(root);
const send = (m) => new Promise((r) => process.send(m, r));
if (mode === 'race') {
  await send({ ready: true });
  await new Promise((r) => process.once('message', r));
  try {
    const { etag } = await store.put(key, Buffer.from(name), { ifMatch: arg });
    await send({ won: true, etag });
  } catch (err) {
    await send({ won: false, precondition: err instanceof PreconditionFailedError, error: String(err) });
  }
} else if (mode === 'count') {
  await send({ ready: true });
  await new Promise((r) => process.once('message', r));
  let conflicts = 0;
  for (let i = 0; i < Number(arg); i++) {
    for (;;) {
      const cur = await store.get(key);
      const next = Buffer.from(String(Number(cur.body.toString()) + 1));
      try { await store.put(key, next, { ifMatch: cur.etag }); break; }
      catch (err) { if (!(err instanceof PreconditionFailedError)) throw err; conflicts++; }
    }
  }
  await send({ done: true, conflicts });
}
process.disconnect();
`;

describe('LocalFolderStore', () => {
  let scriptPath = '';
  beforeAll(async () => {
    scriptPath = join(await tempDir('child'), 'child.mts');
    await writeFile(scriptPath, CHILD_SCRIPT);
  });

  type ChildMsg = { ready?: boolean; won?: boolean; etag?: string; precondition?: boolean; error?: string; done?: boolean; conflicts?: number };

  async function runChildren(args: string[][]): Promise<ChildMsg[]> {
    const children = args.map((a) =>
      fork(scriptPath, a, { execPath: process.execPath, execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
    );
    const exits = children.map(
      (c) =>
        new Promise<number | null>((resolve) => {
          c.on('exit', (code) => resolve(code));
        }),
    );
    const nextMessage = (c: (typeof children)[number]) =>
      new Promise<ChildMsg>((resolve, reject) => {
        c.once('message', (m) => resolve(m as ChildMsg));
        c.once('exit', (code) => reject(new Error(`child exited (${code}) before answering`)));
      });
    try {
      await Promise.all(children.map(nextMessage)); // all ready: start them together
      const results = children.map(nextMessage);
      for (const c of children) c.send('go');
      const out = await Promise.all(results);
      expect(await Promise.all(exits)).toEqual(children.map(() => 0));
      return out;
    } finally {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill();
    }
  }

  it('separate processes racing ifMatch on one key: exactly one wins', async () => {
    const root = await tempDir('race');
    const store = new LocalFolderStore(root);
    const base = await store.put('manifest', text('v0'));
    const results = await runChildren(['a', 'b', 'c', 'd'].map((n) => [root, 'race', 'manifest', base.etag, n]));
    const winners = results.filter((r) => r.won);
    expect(winners.length).toBe(1);
    expect(results.filter((r) => !r.won).every((r) => r.precondition)).toBe(true);
    const final = await store.get('manifest');
    expect(final!.etag).toBe(winners[0].etag);
    expect(['a', 'b', 'c', 'd']).toContain(final!.body.toString());
    expect(await readdir(join(root, '.lakebase-store', 'tmp'))).toEqual([]);
  });

  it('separate processes incrementing a counter with compare-and-swap lose no update', async () => {
    const root = await tempDir('counter');
    const store = new LocalFolderStore(root);
    await store.put('counter', text('0'));
    const results = await runChildren([1, 2, 3].map(() => [root, 'count', 'counter', '15', 'x']));
    expect(results.every((r) => r.done)).toBe(true);
    expect((await store.get('counter'))!.body.toString()).toBe('45');
    expect(await readdir(join(root, '.lakebase-store', 'locks'))).toEqual([]);
  });

  it('breaks stale locks: a dead holder at once, a live one after staleLockMs', async () => {
    const root = await tempDir('locks');
    const store = new LocalFolderStore(root, { staleLockMs: 1_000, lockTimeoutMs: 5_000 });
    const v1 = await store.put('k', text('v1'));
    const lockPath = join(root, '.lakebase-store', 'locks', `${createHash('sha256').update('k').digest('hex')}.lock`);

    // Held by a process that has exited.
    const dead = spawn(process.execPath, ['-e', '0']);
    const deadPid = dead.pid!;
    await new Promise((r) => dead.on('exit', r));
    await writeFile(lockPath, `${deadPid} ${hostname()} ${Date.now()} abc\n`);
    let t0 = performance.now();
    const v2 = await store.put('k', text('v2'), { ifMatch: v1.etag });
    expect(performance.now() - t0).toBeLessThan(900);

    // Held by a live process (this one, as far as the lock says) but old.
    await writeFile(lockPath, `${process.pid} ${hostname()} 0 abc\n`);
    const old = new Date(Date.now() - 60_000);
    await utimes(lockPath, old, old);
    t0 = performance.now();
    await store.put('k', text('v3'), { ifMatch: v2.etag });
    expect(performance.now() - t0).toBeLessThan(900);

    // Held by a live process, fresh: waits until it is stale.
    await writeFile(lockPath, `${process.pid} ${hostname()} ${Date.now()} abc\n`);
    t0 = performance.now();
    await store.delete('k');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(900);
    expect(await store.get('k')).toBeNull();
  });

  it('keeps internal files out of listings, cleans temporary files, and maps keys to files', async () => {
    const root = await tempDir('layout');
    const store = new LocalFolderStore(root);
    await store.put('x/y', text('content'));
    await expectPreconditionFailed(store.put('x/y', text('other'), { ifNoneMatch: '*' }));
    await expectPreconditionFailed(store.put('x/y', text('other'), { ifMatch: '"0"' }));
    expect((await store.list('')).map((o) => o.key)).toEqual(['x/y']);
    expect(await readdir(join(root, '.lakebase-store', 'tmp'))).toEqual([]);
    expect(await readdir(join(root, 'x'))).toEqual(['y']);
    await expect(store.put('.lakebase-store/tmp/z', text('x'))).rejects.toThrow(/reserved/);

    // A file dropped into the folder by hand is an object, hashed on first sight (a fresh store has no cache).
    await writeFile(join(root, 'x', 'z'), 'by hand');
    const fresh = new LocalFolderStore(root);
    const sha = `"${createHash('sha256').update('by hand').digest('hex')}"`;
    expect(await fresh.head('x/z')).toEqual({ key: 'x/z', size: 7, etag: sha });
    expect((await fresh.get('x/z', { start: 3, end: 7 }))!).toEqual({ body: text('hand'), etag: sha });
    expect((await fresh.put('x/z', text('replaced'), { ifMatch: sha })).etag).not.toBe(sha);

    // An object cannot also be a "directory" on a filesystem: a clear error, not a precondition failure.
    await expect(store.put('x/y/under', text('x'))).rejects.toThrow(/both an object and a prefix/);
    await expect(store.put('x/y/a/b', text('x'))).rejects.toThrow(/both an object and a prefix/);
    await expect(store.put('x', text('x'))).rejects.toThrow(/both an object and a prefix/);
    await expect(store.put('x', text('x'), { ifNoneMatch: '*' })).rejects.toThrow(/both an object and a prefix/);
    await expectPreconditionFailed(store.put('x', text('x'), { ifMatch: sha }));
    expect((await store.list('')).map((o) => o.key)).toEqual(['x/y', 'x/z']);
    expect(await readdir(join(root, '.lakebase-store', 'tmp'))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// configuration

describe('object store configuration', () => {
  it('defaults to the local folder, and LAKEBASE_OBJECT_STORE_DIR overrides the default', () => {
    expect(objectStoreConfigFromEnv({}, { localPath: '/var/lib/lakebase' })).toEqual({
      kind: 'local',
      path: '/var/lib/lakebase',
    });
    expect(objectStoreConfigFromEnv({ LAKEBASE_OBJECT_STORE_DIR: '/data', LAKEBASE_S3_BUCKET: '' }, { localPath: '/d' })).toEqual({
      kind: 'local',
      path: '/data',
    });
  });

  it('selects S3 when LAKEBASE_S3_BUCKET is set', () => {
    expect(objectStoreConfigFromEnv({ LAKEBASE_S3_BUCKET: 'lake' }, { localPath: '/d' })).toEqual({
      kind: 's3',
      endpoint: undefined,
      region: 'auto',
      bucket: 'lake',
      prefix: '',
      forcePathStyle: false,
      accessKeyId: undefined,
      secretAccessKey: undefined,
    });
    expect(
      objectStoreConfigFromEnv(
        {
          LAKEBASE_S3_BUCKET: 'lake',
          LAKEBASE_S3_ENDPOINT: 'https://acct.r2.cloudflarestorage.com',
          LAKEBASE_S3_REGION: 'us-east-1',
          LAKEBASE_S3_PREFIX: 'prod/',
          LAKEBASE_S3_ACCESS_KEY_ID: 'id',
          LAKEBASE_S3_SECRET_ACCESS_KEY: 'secret',
        },
        { localPath: '/d' },
      ),
    ).toEqual({
      kind: 's3',
      endpoint: 'https://acct.r2.cloudflarestorage.com',
      region: 'us-east-1',
      bucket: 'lake',
      prefix: 'prod/',
      forcePathStyle: true,
      accessKeyId: 'id',
      secretAccessKey: 'secret',
    });
    const noPathStyle = objectStoreConfigFromEnv(
      { LAKEBASE_S3_BUCKET: 'lake', LAKEBASE_S3_ENDPOINT: 'http://h:9000', LAKEBASE_S3_FORCE_PATH_STYLE: 'false' },
      { localPath: '/d' },
    );
    expect(noPathStyle.kind === 's3' && noPathStyle.forcePathStyle).toBe(false);
  });

  it('rejects bad configurations with messages naming the variable', () => {
    const bad = (env: Record<string, string>, message: RegExp) =>
      expect(() => objectStoreConfigFromEnv(env, { localPath: '/d' })).toThrow(message);
    bad({ LAKEBASE_S3_ENDPOINT: 'http://h' }, /LAKEBASE_S3_ENDPOINT is set but LAKEBASE_S3_BUCKET is not/);
    bad({ LAKEBASE_S3_BUCKET: 'b', LAKEBASE_OBJECT_STORE_DIR: '/x' }, /both LAKEBASE_S3_BUCKET and LAKEBASE_OBJECT_STORE_DIR/);
    bad({ LAKEBASE_S3_BUCKET: 'b/p' }, /LAKEBASE_S3_BUCKET "b\/p" is not a bucket name/);
    bad({ LAKEBASE_S3_BUCKET: 'lake', LAKEBASE_S3_ENDPOINT: 'not a url' }, /LAKEBASE_S3_ENDPOINT "not a url" is not a URL/);
    bad({ LAKEBASE_S3_BUCKET: 'lake', LAKEBASE_S3_ENDPOINT: 'ftp://h' }, /http\(s\) URL/);
    bad({ LAKEBASE_S3_BUCKET: 'lake', LAKEBASE_S3_FORCE_PATH_STYLE: 'maybe' }, /LAKEBASE_S3_FORCE_PATH_STYLE must be true or false/);
    bad({ LAKEBASE_S3_BUCKET: 'lake', LAKEBASE_S3_ACCESS_KEY_ID: 'id' }, /must be set together/);
    bad({ LAKEBASE_S3_BUCKET: 'lake', LAKEBASE_S3_PREFIX: '../up' }, /LAKEBASE_S3_PREFIX/);
    expect(() => objectStoreConfigFromEnv({}, { localPath: '' })).toThrow(ObjectStoreConfigError);
  });

  it('creates working stores of both kinds', async () => {
    const dir = await tempDir('from-env');
    const local = objectStoreFromEnv({ LAKEBASE_OBJECT_STORE_DIR: dir }, { localPath: '/unused' });
    expect(local).toBeInstanceOf(LocalFolderStore);
    expect(local.description).toBe(pathToFileURL(dir).href);
    await local.put('k', text('local'));
    expect((await local.get('k'))!.body.toString()).toBe('local');

    const s3 = inject('s3');
    const metrics = new RecordingMetrics();
    const remote = objectStoreFromEnv(
      {
        LAKEBASE_S3_BUCKET: s3.bucket,
        LAKEBASE_S3_ENDPOINT: s3.endpoint,
        LAKEBASE_S3_PREFIX: uniquePrefix('from-env'),
        LAKEBASE_S3_ACCESS_KEY_ID: s3.accessKeyId,
        LAKEBASE_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      },
      { localPath: '/unused', metrics },
    );
    try {
      expect(remote).toBeInstanceOf(S3Store);
      await remote.put('k', text('remote'));
      expect((await remote.get('k'))!.body.toString()).toBe('remote');
      expect(metrics.requests.map((r) => r.op)).toEqual(['put', 'get']);
    } finally {
      await remote.close?.();
    }
    expect(() => createObjectStore({ kind: 's3', region: 'auto', bucket: 'xyz', prefix: '', forcePathStyle: false, accessKeyId: 'a' })).toThrow(
      /must be set together/,
    );
  });
});
