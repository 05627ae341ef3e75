// Runs a storage node as a real process (`node storage-node/main.ts`) for tests that kill it.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { S3ServerConfig } from './miniflare-s3.ts';

const MAIN = fileURLToPath(new URL('../../storage-node/main.ts', import.meta.url));

export interface StorageProcess {
  url: string;
  /** Its bearer token (a random one unless env gave LAKEBASE_STORAGE_TOKEN; '' there means none). */
  token: string | undefined;
  proc: ChildProcess;
  /** SIGKILL, and wait for the process to be gone. */
  kill9(): Promise<void>;
  /** SIGTERM (graceful: flush and upload), and wait. */
  stop(): Promise<void>;
  output(): string;
}

export function s3Env(s3: S3ServerConfig, prefix: string): Record<string, string> {
  return {
    LAKEBASE_S3_ENDPOINT: s3.endpoint,
    LAKEBASE_S3_BUCKET: s3.bucket,
    LAKEBASE_S3_REGION: s3.region,
    LAKEBASE_S3_PREFIX: prefix,
    LAKEBASE_S3_FORCE_PATH_STYLE: 'true',
    LAKEBASE_S3_ACCESS_KEY_ID: s3.accessKeyId,
    LAKEBASE_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
  };
}

export async function startStorageProcess(args: string[], env: Record<string, string> = {}): Promise<StorageProcess> {
  const token = env.LAKEBASE_STORAGE_TOKEN ?? randomBytes(16).toString('hex');
  const proc = spawn(process.execPath, [MAIN, '--port', '0', ...args], {
    env: { ...process.env, LAKEBASE_LOG_LEVEL: 'info', ...env, LAKEBASE_STORAGE_TOKEN: token },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL'); // never leave a half-started node behind
      reject(new Error(`storage node did not start in 30 s:\n${out}`));
    }, 30_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('"storage node listening"')) continue;
        clearTimeout(timer);
        resolve((JSON.parse(line) as { url: string }).url);
        return;
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`storage node exited with ${code} before listening:\n${out}`));
    });
  });
  return {
    url,
    token: token || undefined,
    proc,
    output: () => out,
    kill9: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}
