// What the benchmarks that set a lakebase against native PostgreSQL 15 share (bench/engines.ts, bench/http-path.ts):
// their knobs, verdicts and ratios, a closed-loop throughput run, and the run itself (native PostgreSQL with fsync
// on, and a lakebase whose default engine is postgres, both stopped whatever happens).
import { startLakebaseStack, type LakebaseStack } from '../../test/support/lakebase-stack.ts';
import { startNativePostgres, type NativePostgres } from '../../test/support/native-postgres.ts';
import { nowMs, progress } from './stats.ts';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** A positive number from the environment, or the fallback. */
export function knob(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

export const met = (ok: boolean): string => (ok ? 'met' : 'not met');
export const ratio = (x: number, ref: number): string => `${(x / ref).toFixed(2)}x`;
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** pg_ctl on the native cluster, as the postgres user when we are root (as test/support/native-postgres.ts runs it). */
export function pgCtl(native: NativePostgres, args: string[]): Promise<unknown> {
  const ctl = join(native.binDir, 'pg_ctl');
  const [file, argv] = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', ctl, ...args]] : [ctl, args];
  return promisify(execFile)(file, argv);
}

/** Queries/s of `workers` closed loops calling fn for `seconds`. */
export async function throughput(seconds: number, workers: number, fn: (w: number) => Promise<unknown>): Promise<number> {
  let n = 0;
  const end = nowMs() + seconds * 1000;
  await Promise.all(Array.from({ length: workers }, async (_, w) => {
    while (nowMs() < end) {
      await fn(w);
      n++;
    }
  }));
  return n / seconds;
}

/** Runs fn with native PostgreSQL 15 (fsync on) and a lakebase (LAKEBASE_ENGINE=postgres); stops both after. */
export async function withNativeAndLakebase<T>(fn: (stack: LakebaseStack, native: NativePostgres) => Promise<T>): Promise<T> {
  progress('starting native PostgreSQL 15 (fsync on) and a lakebase with LAKEBASE_ENGINE=postgres');
  const native = await startNativePostgres({ settings: { fsync: 'on' } });
  let stack: LakebaseStack | null = null;
  try {
    stack = await startLakebaseStack({ env: { LAKEBASE_ENGINE: 'postgres' } });
    return await fn(stack, native);
  } finally {
    progress('stopping the lakebase and native PostgreSQL');
    await stack?.stop().catch((e: Error) => progress(`stopping the lakebase: ${e.message}`));
    await native.stop();
  }
}
