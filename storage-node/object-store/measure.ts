// Times one object-store call and reports it (with the bytes it moved) to the backend's metrics hook.
import type { ObjectStoreMetrics } from './object-store.ts';

export type ObjectStoreOp = 'get' | 'head' | 'put' | 'delete' | 'list';

export async function measured<T>(metrics: ObjectStoreMetrics | undefined, op: ObjectStoreOp, fn: () => Promise<{ value: T; bytes: number }>): Promise<T> {
  const t0 = performance.now();
  try {
    const { value, bytes } = await fn();
    metrics?.request(op, (performance.now() - t0) / 1000, bytes, true);
    return value;
  } catch (err) {
    metrics?.request(op, (performance.now() - t0) / 1000, 0, false);
    throw err;
  }
}
