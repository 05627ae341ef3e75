// Errors the proxy reports to clients, with Neon's texts. A ProxyError is a ServiceError (lib/errors.ts): its
// `kind` is one of the closed ErrorKinds, its `code` a closed, finer label (the metric label of
// lakebase_proxy_errors_total). HTTP maps it to its status and the 17-key body; the wire protocols send it as
// an ErrorResponse (SQLSTATE XX000 unless Postgres said otherwise).
import { type ErrorKind, type ErrorStatus, ServiceError } from '../lib/errors.ts';
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

/** The proxy's own error codes, each with its ErrorKind: a closed set, so safe as a metric label. */
const KIND_OF_CODE = {
  auth_failed: 'auth',
  auth_rate_limited: 'rate_limit',
  rate_limited: 'rate_limit',
  compute_unreachable: 'compute',
  compute_login: 'postgres',
  control_plane: 'control_plane',
  request_too_large: 'quota',
  bad_request: 'user',
  bad_row: 'protocol',
} as const satisfies Record<string, ErrorKind>;
export type ProxyErrorCode = keyof typeof KIND_OF_CODE;
export const PROXY_ERROR_CODES = Object.keys(KIND_OF_CODE) as ProxyErrorCode[];

/** A failure produced by the proxy itself (or a Postgres error it passes on with a chosen status). */
export class ProxyError extends ServiceError {
  override name = 'ProxyError';
  declare readonly code: ProxyErrorCode;
  /** The HTTP status SQL over HTTP answers with (the same as `status`). */
  readonly httpStatus: number;
  readonly pgFields: Record<string, string> | undefined;

  constructor(
    message: string,
    httpStatus: ErrorStatus,
    code: ProxyErrorCode,
    pgFields?: Record<string, string>,
    opts: { kind?: ErrorKind; cause?: unknown } = {},
  ) {
    super(httpStatus, code, message, { kind: opts.kind ?? KIND_OF_CODE[code], cause: opts.cause });
    this.httpStatus = httpStatus;
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

const controlPlane = (message: string, status: 400 | 500, cause: unknown): ProxyError =>
  new ProxyError(message, status, 'control_plane', undefined, {
    kind: cause instanceof DirectoryError ? cause.kind : 'control_plane',
    cause,
  });

/** Neon's wording for control-plane failures: user-caused ones are 400, the rest 500. */
export function fromDirectoryError(err: unknown): ProxyError {
  if (err instanceof ProxyError) return err;
  if (!(err instanceof DirectoryError)) return controlPlane('Control plane request failed', 500, err);
  if (err.userMessage) return controlPlane(err.userMessage, err.status === 404 || err.status === 406 ? 400 : 500, err);
  switch (err.status) {
    case 404:
      return controlPlane('Control plane request failed: endpoint cannot be found', 400, err);
    case 406:
      return controlPlane('Control plane request failed: endpoint is disabled', 400, err);
    case 422:
    case 423:
      return controlPlane(
        'Control plane request failed: endpoint is temporarily unavailable. Check your quotas and/or contact our support.',
        500,
        err,
      );
    default:
      return controlPlane('Control plane request failed', 500, err);
  }
}

/** A Postgres login failure: 3D000 (no such database) is the user's fault, the rest is ours (Neon). */
export function fromLoginError(err: PgServerError): ProxyError {
  return new ProxyError(err.message, err.code === '3D000' ? 400 : 500, 'compute_login', err.fields, { kind: err.code === '3D000' ? 'not_found' : 'postgres' });
}
