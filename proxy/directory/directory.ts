// The proxy's only view of the rest of the system: who the roles of an endpoint are, and where its compute
// runs. Every call can cross a network (see http-directory.ts), so nothing here shares memory with a
// control plane or compute host.

export interface RoleSecret {
  /** `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`; never a cleartext password. */
  verifier: string;
}

export interface ComputeAddress {
  host: string;
  port: number;
  /** Internal password the proxy presents (cleartext or SCRAM) to the compute, for any role. */
  password: string;
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
}

/**
 * A failure reported by the directory. `status` follows the control plane's HTTP status, which selects
 * Neon's user-facing text (404 not found, 406 disabled, 422/423 unavailable); `retriable` failures are
 * retried with backoff by the wake logic.
 */
export class DirectoryError extends Error {
  override name = 'DirectoryError';
  readonly status: number;
  readonly retriable: boolean;
  /** Text to show the user verbatim, if the control plane gave one. */
  readonly userMessage: string | undefined;

  constructor(message: string, opts: { status?: number; retriable?: boolean; userMessage?: string } = {}) {
    super(message);
    this.status = opts.status ?? 500;
    this.retriable = opts.retriable ?? false;
    this.userMessage = opts.userMessage;
  }
}
