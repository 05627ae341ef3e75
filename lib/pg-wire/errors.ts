// The one error of the Postgres wire codec: a message that breaks the protocol (a bad length, a truncated body,
// a missing string terminator, a startup packet of an unknown version) or one over a size limit. It carries the
// SQLSTATE a server answers with (08P01 protocol_violation unless said otherwise) and is a ServiceError of kind
// 'protocol', so it never surfaces as a RangeError out of a bounds check.
import { ServiceError } from '../errors.ts';

export const PROTOCOL_VIOLATION = '08P01';
export const PROGRAM_LIMIT_EXCEEDED = '54000';
export const FEATURE_NOT_SUPPORTED = '0A000';
export const INVALID_AUTHORIZATION_SPECIFICATION = '28000';

export class ProtocolError extends ServiceError {
  override name = 'ProtocolError';

  /** `sqlState` becomes the error's `code`. */
  constructor(message: string, sqlState: string = PROTOCOL_VIOLATION) {
    super(400, sqlState, message, { kind: sqlState === PROGRAM_LIMIT_EXCEEDED ? 'quota' : 'protocol' });
  }

  get sqlState(): string {
    return this.code;
  }
}
