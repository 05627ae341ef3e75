// vitest globalSetup: one Miniflare (R2 over its S3 endpoint) for the whole run. Tests reach it with
// `inject('s3')` and must each use their own key prefix, as they share the bucket.

import type { TestProject } from 'vitest/node';
import { startS3Server, type S3ServerConfig } from './miniflare-s3.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    s3: S3ServerConfig;
  }
}

export default async function setup({ provide }: Pick<TestProject, 'provide'>): Promise<() => Promise<void>> {
  const server = await startS3Server();
  const { endpoint, bucket, region, accessKeyId, secretAccessKey } = server;
  provide('s3', { endpoint, bucket, region, accessKeyId, secretAccessKey });
  return () => server.stop();
}
