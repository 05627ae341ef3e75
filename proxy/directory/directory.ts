// The proxy's only view of the rest of the system: who the roles of an endpoint are, and where its compute
// runs. Every call can cross a network (see http-directory.ts), so nothing here shares memory with a
// control plane or compute host.
import { type ErrorStatus, ServiceError } from '../../lib/errors.ts';

export interface RoleSecret {
  /** `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`; never a cleartext password. */
  verifier: string;
}

/**
 * What serves an endpoint, which decides how the proxy logs in to it. `pglite`: the compute host's PGlite, which
 * takes one internal password for any role. `postgres`: a real PostgreSQL that holds each role's verifier literal
 * and asks for SCRAM: the proxy logs in as the client's own role with the keys the client proved (auth/scram.ts).
 */
export type ComputeEngine = 'pglite' | 'postgres';

export interface ComputeAddress {
  host: string;
  port: number;
  engine: ComputeEngine;
  /** Internal password the proxy presents (cleartext or SCRAM) to a `pglite` compute, for any role; absent for `postgres`. */
  password?: string;
  /** The steps of the wake that produced this address, in ms (control plane and compute host), for Server-Timing. */
  phases?: Record<string, number>;
}

export interface EndpointDirectory {
  /** The role's verifier, or null if the endpoint or the role is unknown. */
  // Unknown endpoints and unknown roles are indistinguishable to clients (no enumeration), so one call
  // answers both.
  lookupRole(endpointId: string, role: string): Promise<RoleSecret | null>;
  /** Blocks until a compute for the endpoint accepts connections. Throws DirectoryError on failure. */
  wake(endpointId: string): Promise<ComputeAddress>;
  /** Called on every session and HTTP query so the owner can keep the compute from being suspended. */
  noteActivity?(endpointId: string): void;
  /** Follows the control plane's role invalidations (password change, role or endpoint deleted); returns a stop. */
  watchInvalidations?(handler: InvalidationHandler): () => void;
}

/** What the invalidation feed tells a proxy's verifier cache to drop. */
export interface InvalidationHandler {
  /** One role of an endpoint, or every role of it (role null). */
  role(endpointId: string, role: string | null): void;
  /** Everything: the feed restarted (new epoch) or the proxy fell too far behind it. */
  all(): void;
  /** The endpoint's compute moved (its host was taken out): drop its cached address and idle connections. */
  compute?(endpointId: string): void;
}

/** Statuses a DirectoryError keeps as they are; any other is its class's generic one (400 or 500). */
const KNOWN_STATUSES = new Set<number>([400, 401, 403, 404, 405, 406, 409, 410, 412, 413, 415, 422, 423, 429, 500, 502, 503, 504, 507]);

function knownStatus(status: number): ErrorStatus {
  if (KNOWN_STATUSES.has(status)) return status as ErrorStatus;
  return status < 500 ? 400 : 500;
}

/**
 * A failure reported by the directory. `status` follows the control plane's HTTP status, which selects
 * Neon's user-facing text (404 not found, 406 disabled, 422/423 unavailable); `retriable` failures are
 * retried with backoff by the wake logic. A ServiceError (lib/errors.ts): a refusal (4xx) has the kind of its
 * status, a failure (5xx, unreachable) is `control_plane`; `code` is the control plane's reason when it gave one.
 */
export class DirectoryError extends ServiceError {
  override name = 'DirectoryError';
  readonly retriable: boolean;
  /** Text to show the user verbatim, if the control plane gave one. */
  readonly userMessage: string | undefined;

  constructor(message: string, opts: { status?: number; retriable?: boolean; userMessage?: string; code?: string; cause?: unknown } = {}) {
    const status = knownStatus(opts.status ?? 500);
    super(status, opts.code ?? 'control_plane_error', message, { kind: status >= 500 ? 'control_plane' : undefined, cause: opts.cause });
    this.retriable = opts.retriable ?? false;
    this.userMessage = opts.userMessage;
  }
}
