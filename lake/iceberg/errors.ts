// The one error type of the Iceberg writer. It is a ServiceError (lib/errors.ts) so services that expose tables
// report it like any other failure: a 400 when the caller's input is wrong, a 500 when the table on storage is not
// what this writer can handle. The message says what failed and what to do about it.
import { ServiceError, type ErrorStatus } from '../../lib/errors.ts';

export class IcebergError extends ServiceError {
  override name = 'IcebergError';

  constructor(code: string, message: string, opts: { status?: ErrorStatus; cause?: unknown } = {}) {
    const status = opts.status ?? 400;
    super(status, `iceberg_${code}`, message, { cause: opts.cause, kind: status >= 500 ? 'storage' : 'user' });
  }
}

/** A table on storage this writer cannot read or trust (corrupt, foreign, or of an unsupported kind). */
export function tableError(code: string, message: string, cause?: unknown): IcebergError {
  return new IcebergError(code, message, { status: 500, cause });
}
