// icebird (the independent Iceberg reader the lake tests use) reads tables by URL with the global fetch, which does
// not do file://. This answers file:// GETs (with a Range header: 206) and HEADs from disk while installed, and
// passes everything else to the real fetch: transport only, the reader does all the Iceberg and Parquet work.
import { open, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

async function fileResponse(url: string, init?: RequestInit): Promise<Response> {
  const path = fileURLToPath(url);
  const size = await stat(path).then((s) => s.size, () => -1);
  if (size < 0) return new Response('not found', { status: 404 });
  if ((init?.method ?? 'GET').toUpperCase() === 'HEAD') return new Response(null, { status: 200, headers: { 'content-length': String(size) } });
  const range = new Headers(init?.headers).get('range');
  const m = range ? /^bytes=(\d+)-(\d*)$/.exec(range) : null;
  const start = m ? Number(m[1]) : 0;
  const end = m && m[2] !== '' ? Math.min(Number(m[2]), size - 1) : size - 1;
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(Math.max(0, end - start + 1));
    await fh.read(buf, 0, buf.length, start);
    const headers = { 'content-length': String(buf.length), ...(m ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}) };
    return new Response(buf, { status: m ? 206 : 200, headers });
  } finally {
    await fh.close();
  }
}

/** Installs the file:// answering fetch; the function it returns restores the real one. */
export function installFileFetch(): () => void {
  const real = globalThis.fetch;
  globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    return url.startsWith('file://') ? fileResponse(url, init) : real(input, init);
  }) as typeof fetch;
  return () => {
    globalThis.fetch = real;
  };
}
