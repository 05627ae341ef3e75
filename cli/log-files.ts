// Reading the services' log files that `lakebase start` writes (cli/service-logs.ts), for `lakebase logs` and the
// start's own failure messages: which services have one, a file's last lines (read from its end, however large the
// file), and what is appended to it afterwards.
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The folder of the log files in a state directory. */
export function logDir(stateDir: string): string {
  return join(stateDir, 'logs');
}

/** Each service that has a log file in the state directory, by name. */
export function serviceLogFiles(stateDir: string): { service: string; path: string }[] {
  const dir = logDir(stateDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .sort()
    .map((f) => ({ service: f.slice(0, -'.log'.length), path: join(dir, f) }));
}

const BLOCK = 64 * 1024;

/** The last `n` non-empty lines of a file (none if it does not exist), and the size they were read at. */
export function lastLines(path: string, n: number): { lines: string[]; size: number } {
  if (!existsSync(path)) return { lines: [], size: 0 };
  const fd = openSync(path, 'r');
  try {
    const size = statSync(path).size;
    const chunks: Buffer[] = [];
    let newlines = 0;
    // Back from the end a block at a time, until the blocks hold n + 1 line ends (or the whole file).
    for (let end = size; end > 0 && newlines <= n; ) {
      const start = Math.max(0, end - BLOCK);
      const b = Buffer.alloc(end - start);
      readSync(fd, b, 0, b.length, start);
      chunks.unshift(b);
      for (const byte of b) if (byte === 10) newlines++;
      end = start;
    }
    const lines = Buffer.concat(chunks).toString('utf8').split('\n').filter((l) => l.trim());
    return { lines: lines.slice(-n), size };
  } finally {
    closeSync(fd);
  }
}

/**
 * The complete lines appended to a file since `from.offset` (which moves past them; a partial last line waits for
 * the next call). A file smaller than the offset was replaced, and is read from its start.
 */
export function readAppended(path: string, from: { offset: number }): string[] {
  if (!existsSync(path)) return [];
  const size = statSync(path).size;
  if (size < from.offset) from.offset = 0;
  if (size === from.offset) return [];
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(size - from.offset);
    readSync(fd, b, 0, b.length, from.offset);
    const end = b.lastIndexOf(10);
    if (end < 0) return [];
    from.offset += end + 1;
    return b.subarray(0, end).toString('utf8').split('\n').filter((l) => l.trim());
  } finally {
    closeSync(fd);
  }
}
