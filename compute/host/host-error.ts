// The compute host's refusals: an HTTP status and a stable code (a ServiceError, answered by the API's onError).
// Its own module so that the host's parts (host.ts, admission.ts) throw the same class without importing each other.
import { ServiceError } from '../../lib/errors.ts';

/** Codes of a host that cannot take a compute now (memory): the caller may try another host, or later. */
export const CAPACITY_CODES: readonly string[] = ['memory_budget_exceeded', 'start_queue_full', 'start_queue_timeout'];

/** A refused request: an HTTP status and a stable code. */
export class HostError extends ServiceError {
  override name = 'HostError';
  declare readonly status: 400 | 404 | 409 | 503;
  constructor(status: HostError['status'], code: string, message: string) {
    super(status, code, message, { kind: CAPACITY_CODES.includes(code) ? 'quota' : undefined });
  }
}
