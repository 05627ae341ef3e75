// From an endpoint id to an authenticated compute connection: wake (single-flight per endpoint, bounded
// retries with backoff), cache the address, connect with retries, and wake again when a cached address
// turns out to be stale (the compute was suspended since). A wake may take long when the compute host queues the
// start for memory; one that failed after such a wait is not retried (the retry would queue again).
import type { Logger } from '../../lib/logger.ts';
import type { ScramKeys } from '../auth/scram.ts';
import { BackendConnection, ConnectError, VerifierMismatch, type StartupParams } from './connection.ts';
import { DirectoryError, type ComputeAddress, type EndpointDirectory } from '../directory/directory.ts';
import { PgServerError, couldNotConnect, fromDirectoryError, rateLimited } from '../errors.ts';
import type { EndpointRateLimiter } from './rate-limit.ts';

/** Where a request records the wake it waited for and its login (proxy/http/server-timing.ts). */
export interface StepRecorder {
  addWake(ms: number, phases: Record<string, number> | undefined): void;
  add(name: string, ms: number): void;
}

export interface RetryPolicy {
  retries: number;
  baseDelayMs: number;
  factor: number;
}

export interface ConnectorOptions {
  /** Neon: 8 retries, 100 ms x 1.6^n. */
  wakeRetry: RetryPolicy;
  /** Neon: 5 retries, 200 ms x 2^n. */
  connectRetry: RetryPolicy;
  /** Per TCP attempt (Neon: 2 s). */
  connectTimeoutMs: number;
  /** Forget a cached compute address after this long unused (Neon: 4 min). */
  addressIdleTtlMs: number;
  /**
   * A wake the control plane refused after at least this long is final (default 5 s): it held the wake while a
   * compute host queued the start for memory, and its refusal is the answer, not a blip worth a retry.
   */
  queuedWakeMs?: number;
  onWake?: (endpointId: string, seconds: number, ok: boolean) => void;
  rateLimiter?: EndpointRateLimiter;
  logger: Logger;
}

// SQLSTATEs of a compute that is up but not ready yet: worth another attempt.
const RETRIABLE_LOGIN_CODES = new Set(['57P03', '53300']);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ComputeConnector {
  private readonly inflight = new Map<string, Promise<ComputeAddress>>();
  private readonly cache = new Map<string, { address: ComputeAddress; lastUsed: number }>();
  private readonly directory: EndpointDirectory;
  private readonly opts: ConnectorOptions;

  constructor(directory: EndpointDirectory, opts: ConnectorOptions) {
    this.directory = directory;
    this.opts = opts;
  }

  /**
   * The compute's address, waking it if needed; concurrent callers share one wake. `steps` records a wake the
   * caller waited for (with the steps the control plane reported), not a cached address.
   */
  wake(endpointId: string, steps?: StepRecorder): Promise<ComputeAddress> {
    const cached = this.cache.get(endpointId);
    if (cached && Date.now() - cached.lastUsed < this.opts.addressIdleTtlMs) {
      cached.lastUsed = Date.now();
      return Promise.resolve(cached.address);
    }
    let p = this.inflight.get(endpointId);
    if (!p) {
      p = this.wakeWithRetries(endpointId).finally(() => this.inflight.delete(endpointId));
      this.inflight.set(endpointId, p);
    }
    if (!steps) return p;
    const t0 = performance.now();
    return p.then((address) => {
      steps.addWake(performance.now() - t0, address.phases);
      return address;
    });
  }

  invalidate(endpointId: string, address?: ComputeAddress): void {
    const cached = this.cache.get(endpointId);
    if (cached && (!address || cached.address === address)) this.cache.delete(endpointId);
  }

  private async wakeWithRetries(endpointId: string): Promise<ComputeAddress> {
    const { retries, baseDelayMs, factor } = this.opts.wakeRetry;
    const started = performance.now();
    for (let attempt = 0; ; attempt++) {
      const attemptStarted = performance.now();
      try {
        const address = await this.directory.wake(endpointId);
        this.cache.set(endpointId, { address, lastUsed: Date.now() });
        this.opts.onWake?.(endpointId, (performance.now() - started) / 1000, true);
        return address;
      } catch (err) {
        // Transport failures (no DirectoryError) are retried too: the control plane may be restarting.
        const waitedMs = Math.round(performance.now() - attemptStarted);
        // a refusal the control plane answered after a long wait is final; no answer in time (its wake may still
        // be under way) is retried, and joins that wake
        const answered = err instanceof DirectoryError && err.code !== 'control_plane_unreachable';
        const retriable = (!(err instanceof DirectoryError) || err.retriable) && !(answered && waitedMs >= (this.opts.queuedWakeMs ?? 5000));
        this.opts.logger.warn({ endpointId, attempt, err: String(err), waitedMs, retriable }, 'wake failed');
        if (!retriable || attempt >= retries) {
          this.opts.onWake?.(endpointId, (performance.now() - started) / 1000, false);
          throw fromDirectoryError(err);
        }
        await sleep(baseDelayMs * factor ** attempt);
      }
    }
  }

  /**
   * An authenticated connection to the endpoint's compute; a `postgres` compute is logged in to as the startup's
   * user with `keys` (the client's). Throws ProxyError or PgServerError (LoginError: the compute's own refusal).
   */
  async connect(endpointId: string, startup: StartupParams, keys?: ScramKeys, steps?: StepRecorder): Promise<BackendConnection> {
    if (this.opts.rateLimiter && !this.opts.rateLimiter.tryAcquire(endpointId)) throw rateLimited();
    const { retries, baseDelayMs, factor } = this.opts.connectRetry;
    let rewoken = false;
    for (let attempt = 0; ; attempt++) {
      const fromCache = this.cache.has(endpointId);
      const address = await this.wake(endpointId, steps);
      try {
        const t0 = performance.now();
        const conn = await BackendConnection.connect(address, startup, this.opts.connectTimeoutMs, keys);
        steps?.add('connect', performance.now() - t0);
        return conn;
      } catch (err) {
        if (err instanceof VerifierMismatch) {
          this.opts.logger.warn({ endpointId, user: startup.user, reason: err.reason }, 'compute refused the client role\'s SCRAM keys');
        }
        const retriableLogin = err instanceof PgServerError && RETRIABLE_LOGIN_CODES.has(err.code);
        if (!(err instanceof ConnectError) && !retriableLogin) throw err;
        this.opts.logger.warn({ endpointId, attempt, err: String(err) }, 'connect to compute failed');
        this.invalidate(endpointId, address);
        // A cached address may point at a compute that was suspended since: wake at once, no backoff.
        if (fromCache && !rewoken) {
          rewoken = true;
          attempt--;
          continue;
        }
        if (attempt >= retries) throw err instanceof PgServerError ? err : couldNotConnect();
        await sleep(baseDelayMs * factor ** attempt);
      }
    }
  }
}
