// icebird (the independent Iceberg reader the lake tests use) reads tables by URL with the global fetch, which does
// not do file://, and turns s3://bucket/key into https://bucket.s3.amazonaws.com/key. While installed, this answers
// file:// GETs (a Range header: 206) and HEADs from disk, and, given the test's S3 server (Miniflare's R2), those
// amazonaws.com URLs with signed GetObject/HeadObject calls to it; everything else goes to the real fetch. Transport
// only: the reader does all the Iceberg and Parquet work.
import { open, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { S3ServerConfig } from './miniflare-s3.ts';

function rangeOf(init: RequestInit | undefined): { start: number; end: number | null } | null {
  const range = new Headers(init?.headers).get('range');
  const m = range ? /^bytes=(\d+)-(\d*)$/.exec(range) : null;
  return m ? { start: Number(m[1]), end: m[2] === '' ? null : Number(m[2]) } : null;
}

async function fileResponse(url: string, init?: RequestInit): Promise<Response> {
  const path = fileURLToPath(url);
  const size = await stat(path).then((s) => s.size, () => -1);
  if (size < 0) return new Response('not found', { status: 404 });
  if ((init?.method ?? 'GET').toUpperCase() === 'HEAD') return new Response(null, { status: 200, headers: { 'content-length': String(size) } });
  const r = rangeOf(init);
  const start = r?.start ?? 0;
  const end = r?.end === null || r === null ? size - 1 : Math.min(r.end, size - 1);
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(Math.max(0, end - start + 1));
    await fh.read(buf, 0, buf.length, start);
    const headers = { 'content-length': String(buf.length), ...(r ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}) };
    return new Response(buf, { status: r ? 206 : 200, headers });
  } finally {
    await fh.close();
  }
}

async function s3Response(client: S3Client, bucket: string, key: string, init?: RequestInit): Promise<Response> {
  try {
    if ((init?.method ?? 'GET').toUpperCase() === 'HEAD') {
      const h = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return new Response(null, { status: 200, headers: { 'content-length': String(h.ContentLength ?? 0) } });
    }
    const r = rangeOf(init);
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: r ? `bytes=${r.start}-${r.end ?? ''}` : undefined }));
    const body = Buffer.from(await got.Body!.transformToByteArray());
    return new Response(body, { status: r ? 206 : 200, headers: { 'content-length': String(body.length) } });
  } catch (e) {
    const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 500;
    return new Response(String(e), { status });
  }
}

/** Installs the answering fetch; the function it returns restores the real one. */
export function installFileFetch(s3?: S3ServerConfig): () => void {
  const real = globalThis.fetch;
  const client = s3 && new S3Client({
    endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  const amazon = s3 && `https://${s3.bucket}.s3.amazonaws.com/`;
  globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (url.startsWith('file://')) return fileResponse(url, init);
    if (client && amazon && url.startsWith(amazon)) return s3Response(client, s3.bucket, decodeURIComponent(url.slice(amazon.length)), init);
    return real(input, init);
  }) as typeof fetch;
  return () => {
    globalThis.fetch = real;
    client?.destroy();
  };
}
