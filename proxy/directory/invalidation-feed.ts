// The proxy's side of the control plane's role-invalidation feed (control-plane/role-invalidations.ts): a long
// poll, `GET <url>?after=N&epoch=E&wait_ms=W`, held by the control plane until there is news. Each answer's
// events drop cache entries (verifiers, or a moved compute's address and connections); a new epoch (the control plane restarted) or `reset` (this proxy fell behind the
// feed's window) drops everything, as does the first answer (events before the subscription are unknown).
// While the control plane is unreachable the loop retries with a capped backoff and the cache keeps serving.

import type { InvalidationHandler } from './directory.ts';

const WAIT_MS = 20_000;

interface FeedAnswer {
  epoch?: unknown;
  reset?: unknown;
  last?: unknown;
  events?: unknown;
}

interface FeedEvent {
  endpoint_id?: unknown;
  role?: unknown;
  kind?: unknown;
}

/** Applies one answer; returns the new cursor, or null if the answer was malformed. */
function apply(body: FeedAnswer, epoch: string | null, handler: InvalidationHandler): { epoch: string; after: number } | null {
  if (typeof body.epoch !== 'string' || typeof body.last !== 'number' || !Array.isArray(body.events)) return null;
  if (body.epoch !== epoch || body.reset === true) {
    handler.all();
    return { epoch: body.epoch, after: body.last };
  }
  for (const e of body.events as FeedEvent[]) {
    if (typeof e.endpoint_id !== 'string') continue;
    if (e.kind === 'compute') {
      handler.compute?.(e.endpoint_id);
      continue;
    }
    handler.role(e.endpoint_id, typeof e.role === 'string' ? e.role : null);
  }
  return { epoch, after: body.last };
}

/** Starts following the feed; returns a function that stops it. */
export function followInvalidations(url: string, headers: Record<string, string>, handler: InvalidationHandler): () => void {
  const stop = new AbortController();
  let epoch: string | null = null;
  let after = 0;
  let backoffMs = 0;
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      stop.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          resolve();
        },
        { once: true },
      );
    });
  const once = async (): Promise<boolean> => {
    const q = `?after=${after}&wait_ms=${WAIT_MS}${epoch === null ? '' : `&epoch=${encodeURIComponent(epoch)}`}`;
    const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(WAIT_MS + 10_000)]);
    const res = await fetch(url + q, { headers, signal });
    if (!res.ok) {
      await res.body?.cancel();
      return false;
    }
    const next = apply((await res.json()) as FeedAnswer, epoch, handler);
    if (!next) return false;
    ({ epoch, after } = next);
    return true;
  };
  void (async () => {
    while (!stop.signal.aborted) {
      const ok = await once().catch(() => false);
      if (stop.signal.aborted) break;
      backoffMs = ok ? 0 : Math.min(2000, Math.max(100, backoffMs * 2));
      if (backoffMs) await sleep(backoffMs);
    }
  })();
  return () => stop.abort();
}
