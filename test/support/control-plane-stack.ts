// A storage node and a control plane in this process, over a local-folder object store that counts what is
// written (to show that branch, checkpoint and rewind write metadata only). No compute host: endpoints can't
// start, roles and databases are records only. The template timeline is made once per stack (~4 s). The storage
// node requires a random token (storage.token), which the control plane is given.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../lib/logger.ts';
import { LocalFolderStore } from '../../storage-node/object-store/local-folder.ts';
import type { ByteRange, GetResult, ObjectInfo, ObjectStore, PutOptions } from '../../storage-node/object-store/object-store.ts';
import { startStorageNode } from '../../storage-node/server.ts';
import type { StorageNode } from '../../storage-node/server.ts';
import { startControlPlane } from '../../control-plane/server.ts';
import type { ControlPlane } from '../../control-plane/server.ts';

/** Passes through to a store, counting puts and their bytes. */
export class CountingStore implements ObjectStore {
  readonly inner: ObjectStore;
  puts = 0;
  bytes = 0;
  keys: string[] = [];
  constructor(inner: ObjectStore) {
    this.inner = inner;
  }
  get description(): string {
    return this.inner.description;
  }

  get uri(): string {
    return this.inner.uri;
  }
  get(key: string, range?: ByteRange): Promise<GetResult | null> {
    return this.inner.get(key, range);
  }
  head(key: string): Promise<ObjectInfo | null> {
    return this.inner.head(key);
  }
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<{ etag: string }> {
    this.puts++;
    this.bytes += body.byteLength;
    this.keys.push(key);
    return this.inner.put(key, body, options);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  list(prefix: string): Promise<ObjectInfo[]> {
    return this.inner.list(prefix);
  }
  reset(): void {
    this.puts = 0;
    this.bytes = 0;
    this.keys = [];
  }
}

export const API_KEY = 'test-api-key-0123456789';
export const INTERNAL_TOKEN = 'internal';

export interface ControlPlaneStack {
  dir: string;
  store: CountingStore;
  storage: StorageNode;
  cp: ControlPlane;
  apiUrl: string;
  /** Calls the API; answers status and parsed body, never throws on an HTTP error. */
  call<T = Record<string, unknown>>(method: string, path: string, body?: unknown, opts?: { key?: string | null; raw?: string }): Promise<{ status: number; body: T }>;
  restartControlPlane(): Promise<void>;
  close(): Promise<void>;
}

export async function startControlPlaneStack(): Promise<ControlPlaneStack> {
  const dir = await mkdtemp(join(tmpdir(), 'lakebase-cp-'));
  const store = new CountingStore(new LocalFolderStore(join(dir, 'objects')));
  const storage = await startStorageNode({
    dataDir: join(dir, 'storage'), objectStore: store, token: randomBytes(16).toString('hex'), logger: createLogger('storage-node', 'warn'), backgroundIntervalMs: 0,
  });
  const start = () => startControlPlane({
    storageUrls: [storage.url], storageToken: storage.token, computeHostUrls: [], objectStore: store, apiKey: API_KEY, internalToken: INTERNAL_TOKEN, computePassword: 'compute',
    baseDomain: 'lakebase.localhost', proxyPort: 5433, secret: 'test-secret', logger: createLogger('control-plane', 'warn'),
  });
  const stack: ControlPlaneStack = {
    dir, store, storage, cp: await start(), apiUrl: '',
    async call<T>(method: string, path: string, body?: unknown, opts: { key?: string | null; raw?: string } = {}) {
      const key = opts.key === undefined ? API_KEY : opts.key;
      const res = await fetch(stack.apiUrl + path, {
        method,
        headers: { ...(key === null ? {} : { authorization: `Bearer ${key}` }), 'content-type': 'application/json' },
        body: opts.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
    },
    async restartControlPlane() {
      await stack.cp.close();
      stack.cp = await start();
      stack.apiUrl = `${stack.cp.url}/api/v2`;
    },
    async close() {
      await stack.cp.close().catch(() => undefined);
      await storage.close().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
  stack.apiUrl = `${stack.cp.url}/api/v2`;
  return stack;
}

export interface ControlPlaneProcess {
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
  output(): string;
}

/** The control plane as a real process (`node control-plane/main.ts`), with API_KEY and INTERNAL_TOKEN. */
export async function startControlPlaneProcess(opts: {
  storageUrl: string; storageToken?: string; computeHostUrl: string; computeApiToken?: string; objectStoreDir: string;
}): Promise<ControlPlaneProcess> {
  const main = fileURLToPath(new URL('../../control-plane/main.ts', import.meta.url));
  const proc = spawn(process.execPath, [main, '--port', '0', '--storage-url', opts.storageUrl, '--compute-host', opts.computeHostUrl,
    '--api-key', API_KEY, '--internal-token', INTERNAL_TOKEN, '--compute-token', 'compute'], {
    env: {
      ...process.env, LAKEBASE_LOG_LEVEL: 'info', LAKEBASE_OBJECT_STORE_DIR: opts.objectStoreDir,
      LAKEBASE_STORAGE_TOKEN: opts.storageToken ?? '', LAKEBASE_COMPUTE_API_TOKEN: opts.computeApiToken ?? '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`control plane did not start in 200 s:\n${out}`));
    }, 200_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('"control plane listening"'));
      if (!line) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { url: string }).url);
    });
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`control plane exited with ${code} before listening:\n${out}`));
    });
  });
  return {
    url,
    proc,
    output: () => out,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}
