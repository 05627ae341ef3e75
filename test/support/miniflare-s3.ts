// One real Miniflare serving an R2 bucket over its S3-compatible endpoint, for tests of the S3 backend.
// Loopback only: `cf: false` (no fetch of cf.json), bound to 127.0.0.1 on a random free port, persisted to a
// fresh temporary directory that stop() removes.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Miniflare } from 'miniflare';

export interface S3ServerConfig {
  /** e.g. `http://127.0.0.1:PORT/cdn-cgi/local/r2/s3`; use with `forcePathStyle: true`. */
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface S3Server extends S3ServerConfig {
  /** Disposes Miniflare (and its workerd) and removes the persist directory. */
  stop(): Promise<void>;
}

const BUCKET = 'bucket';

export async function startS3Server(): Promise<S3Server> {
  const persistDir = await mkdtemp(join(tmpdir(), 'lakebase-miniflare-'));
  const accessKeyId = `test-${randomBytes(6).toString('hex')}`;
  const secretAccessKey = randomBytes(24).toString('hex');
  const mf = new Miniflare({
    cf: false,
    host: '127.0.0.1',
    port: 0,
    defaultPersistRoot: persistDir,
    r2Persist: join(persistDir, 'r2'),
    modules: true,
    script: 'export default { fetch() { return new Response("lakebase test worker"); } };',
    r2Buckets: { B: { id: BUCKET, s3Credentials: { accessKeyId, secretAccessKey } } },
  });
  let url: URL;
  try {
    url = await mf.ready;
  } catch (err) {
    await mf.dispose().catch(() => {});
    await rm(persistDir, { recursive: true, force: true });
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${url.port}/cdn-cgi/local/r2/s3`,
    bucket: BUCKET,
    region: 'auto',
    accessKeyId,
    secretAccessKey,
    stop() {
      stopped ??= (async () => {
        await mf.dispose();
        await rm(persistDir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
