// Why a source cannot be loaded, as the control plane's API answers it: a ServiceError with a Neon-style code and
// the status the caller's mistake deserves (a location outside the bucket is a 400, nothing there a 404...).
import { type ErrorStatus, ServiceError } from '../../lib/errors.ts';

export function loadError(status: ErrorStatus, code: string, message: string, cause?: unknown): ServiceError {
  return new ServiceError(status, code, message, cause === undefined ? {} : { cause });
}
