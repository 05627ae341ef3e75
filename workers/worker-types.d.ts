// The few Cloudflare Workers runtime types this code uses beyond the web platform (lib "WebWorker"), declared
// here rather than adding @cloudflare/workers-types.
interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
  passThroughOnException(): void;
}

interface CacheStorage {
  /** The data centre's default cache (Workers Cache API). */
  readonly default: Cache;
}
