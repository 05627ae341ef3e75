// Errors the engine answers with: ServiceErrors (lib/errors.ts) with a stable machine-readable code; the class
// fixes the HTTP status the API answers with. The class names stay: tests and callers match on them.
import { ServiceError } from '../../lib/errors.ts';
import type { ErrorStatus, ServiceErrorOptions } from '../../lib/errors.ts';

/** The engine's errors: a ServiceError named after its class. */
export class CodedError extends ServiceError {
  constructor(status: ErrorStatus, code: string, message: string, opts?: ServiceErrorOptions) {
    super(status, code, message, opts);
    this.name = new.target.name;
  }
}

/** A request that names something that does not exist (404). */
export class NotFoundError extends CodedError {
  constructor(code: string, message: string) {
    super(404, code, message);
  }
}

/** A request that conflicts with the state (409): children exist, another writer or node got there first. */
export class ConflictError extends CodedError {
  constructor(code: string, message: string) {
    super(409, code, message);
  }
}

/** A request whose arguments are wrong (400). */
export class InvalidRequestError extends CodedError {
  constructor(code: string, message: string) {
    super(400, code, message);
  }
}

/** A batch refused for what it asks (400, or 409 for an LSN mismatch: another writer): nothing of it was applied. */
export class BatchRejectedError extends CodedError {
  constructor(code: string, message: string) {
    super(code === 'lsn_mismatch' ? 409 : 400, code, message);
  }
}

/** A read at an LSN the timeline cannot serve (400). */
export class LsnOutOfRangeError extends CodedError {
  /** `lsn_ahead` for a position past the head (the control plane says Neon's words for it). */
  constructor(message: string, code: 'lsn_out_of_range' | 'lsn_ahead' = 'lsn_out_of_range') {
    super(400, code, message);
  }
}

/** A read of a file that does not exist at that LSN (404). */
export class FileNotFoundError extends CodedError {
  constructor(path: string, lsn: number) {
    super(404, 'no_such_file', `file ${JSON.stringify(path)} does not exist at LSN ${lsn}`);
  }
}

/**
 * The node's write log failed: it accepts no writes until it is restarted (fail-stop). Answered as the 500
 * `internal_error` it always was; `kind` says the storage failed.
 */
export class WriteLogFailedError extends CodedError {
  constructor(message: string, cause: unknown) {
    super(500, 'internal_error', message, { kind: 'storage', cause });
  }
}

/**
 * The timeline kept moving under a request (released, or found changed by another node, each time it was taken up
 * again): 503, try again.
 */
export class TimelineBusyError extends CodedError {
  constructor(timelineId: string) {
    super(503, 'timeline_busy', `timeline ${timelineId} is being handed over between storage nodes; try again`);
  }
}
