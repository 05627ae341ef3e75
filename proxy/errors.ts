// Error kinds the proxy reports to clients, with Neon's texts. HTTP maps them to a status and the 17-key
// body; the wire protocols send them as ErrorResponse (SQLSTATE XX000 unless Postgres said otherwise).
import { DirectoryError } from './directory/directory.ts';

/** An ErrorResponse from Postgres, keeping every field. */
export class PgServerError extends Error {
  override name = 'PgServerError';
  readonly fields: Record<string, string>;

  constructor(fields: Record<string, string>) {
    super(fields.M ?? 'unknown error');
    this.fields = fields;
  }

  get code(): string {
    return this.fields.C ?? '';
  }
}

/** A failure produced by the proxy itself (or a Postgres error it passes on with a chosen status). */
export class ProxyError extends Error {
  override name = 'ProxyError';
  readonly httpStatus: number;
  /** Label for metrics and logs. */
  readonly kind: string;
  readonly pgFields: Record<string, string> | undefined;

  constructor(message: string, httpStatus: number, kind: string, pgFields?: Record<string, string>) {
    super(message);
    this.httpStatus = httpStatus;
    this.kind = kind;
    this.pgFields = pgFields;
  }
}

export const authFailed = (user: string): ProxyError =>
  new ProxyError(`password authentication failed for user '${user}'`, 400, 'auth_failed');

export const rateLimited = (): ProxyError =>
  new ProxyError('Too many connections to this endpoint. Please try again later.', 500, 'rate_limited');

export const couldNotConnect = (): ProxyError => new ProxyError("Couldn't connect to compute node", 500, 'compute_unreachable');

export const ENDPOINT_NOT_SPECIFIED =
  "Endpoint ID is not specified. Either please upgrade the postgres client library (libpq) for SNI support or pass the endpoint ID (first part of the domain name) as a parameter: '?options=endpoint%3D<endpoint-id>'. See more at https://neon.tech/sni";

/** Neon's wording for control-plane failures: user-caused ones are 400, the rest 500. */
export function fromDirectoryError(err: unknown): ProxyError {
  if (err instanceof ProxyError) return err;
  if (!(err instanceof DirectoryError)) return new ProxyError('Control plane request failed', 500, 'control_plane');
  if (err.userMessage) return new ProxyError(err.userMessage, err.status === 404 || err.status === 406 ? 400 : 500, 'control_plane');
  switch (err.status) {
    case 404:
      return new ProxyError('Control plane request failed: endpoint cannot be found', 400, 'control_plane');
    case 406:
      return new ProxyError('Control plane request failed: endpoint is disabled', 400, 'control_plane');
    case 422:
    case 423:
      return new ProxyError(
        'Control plane request failed: endpoint is temporarily unavailable. Check your quotas and/or contact our support.',
        500,
        'control_plane',
      );
    default:
      return new ProxyError('Control plane request failed', 500, 'control_plane');
  }
}

/** A Postgres login failure: 3D000 (no such database) is the user's fault, the rest is ours (Neon). */
export function fromLoginError(err: PgServerError): ProxyError {
  return new ProxyError(err.message, err.code === '3D000' ? 400 : 500, 'compute_login', err.fields);
}
