// Errors the engine answers with: each has a stable machine-readable code; the class picks the HTTP status.

export class CodedError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A request that names something that does not exist (404). */
export class NotFoundError extends CodedError {}

/** A request that conflicts with the state (409): children exist, another writer or node got there first. */
export class ConflictError extends CodedError {}

/** A request whose arguments are wrong (400). */
export class InvalidRequestError extends CodedError {}

/** A batch refused for what it asks (400, or 409 for an LSN mismatch): nothing of it was applied. */
export class BatchRejectedError extends CodedError {}

/** A read at an LSN the timeline cannot serve (400). */
export class LsnOutOfRangeError extends CodedError {
  constructor(message: string) {
    super('lsn_out_of_range', message);
  }
}

/** A read of a file that does not exist at that LSN (404). */
export class FileNotFoundError extends CodedError {
  constructor(path: string, lsn: number) {
    super('no_such_file', `file ${JSON.stringify(path)} does not exist at LSN ${lsn}`);
  }
}
