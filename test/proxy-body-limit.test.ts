// Issue 9, item 7 for the proxy: a 300 MB POST /sql is refused with 413 (Neon's text) while it streams, and the
// proxy process never grows by more than a few MiB (its peak RSS, VmHWM, is read from /proc). The proxy runs as
// its own process (proxy/main.ts), so the test's own memory does not count.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../proxy/main.ts', import.meta.url));
const MiB = 1024 * 1024;

let child: ChildProcess;
let httpPort = 0;

beforeAll(async () => {
  // No control plane: a body limit must not need one (authentication fails, the body error comes first).
  child = spawn(process.execPath, [MAIN, '--directory-url', 'http://127.0.0.1:9/internal', '--http-port', '0', '--tcp-port', 'off'], {
    env: { ...process.env, LAKEBASE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  httpPort = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{"httpPort"'));
      if (line) resolve((JSON.parse(line) as { httpPort: number }).httpPort);
    });
    child.once('exit', (code) => reject(new Error(`proxy exited with ${code}`)));
  });
});

afterAll(() => {
  child?.kill('SIGKILL');
});

function memoryKiB(field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
  return Number(m![1]);
}

/** Streams `total` bytes of a JSON body in 1 MiB chunks; resolves with the status once the proxy answers. */
function streamBody(total: number, chunked: boolean): Promise<{ status: number; body: string; sent: number }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'Neon-Connection-String': 'postgresql://u:p@ep-body-limit-123456.lakebase.local/db' };
    if (!chunked) headers['content-length'] = total;
    const req = http.request({ host: '127.0.0.1', port: httpPort, path: '/sql', method: 'POST', headers, agent: false });
    let sent = 0;
    let answered = false;
    const chunk = Buffer.alloc(MiB, 0x61);
    req.on('response', (res) => {
      answered = true;
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body, sent });
      });
    });
    // The proxy may answer and close while the client is still writing (EPIPE): the answer is what counts.
    let failure: Error | null = null;
    req.on('error', (e) => (failure ??= e));
    req.on('close', () => setTimeout(() => (answered ? undefined : reject(failure ?? new Error('closed without an answer'))), 100));
    const pump = (): void => {
      if (sent === 0) req.write('{"query":"SELECT $1","params":["');
      while (!answered && sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      if (!answered) req.end('"]}');
    };
    if (chunked) pump();
    else {
      // With a Content-Length the proxy can answer from the headers alone; the body follows only if it does not.
      req.flushHeaders();
      setTimeout(() => (answered ? undefined : pump()), 1000);
    }
  });
}

describe('the proxy refuses a 300 MB body while it streams', () => {
  it('chunked and with a Content-Length: 413 with Neon\'s message, and the process stays within a few MiB', async () => {
    const before = memoryKiB('VmRSS');
    const peakBefore = memoryKiB('VmHWM');
    for (const chunked of [true, false]) {
      const r = await streamBody(300 * MiB, chunked);
      expect(r.status).toBe(413);
      expect(JSON.parse(r.body).message).toBe('request is too large (max is 10485760 bytes)');
      expect(r.sent).toBeLessThan(300 * MiB); // refused before the client had sent it all
    }
    const grew = (Math.max(memoryKiB('VmHWM'), peakBefore) - Math.max(before, peakBefore)) / 1024;
    // The limit itself is 10 MiB of buffered body; anything near 300 MiB would mean the body was read whole.
    expect(grew).toBeLessThan(24);
  }, 60_000);
});
