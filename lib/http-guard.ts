// Guards for the internal HTTP services (storage node, compute host API, control plane): no door without a key,
// no body read past its limit. One module so that every service checks credentials and bodies the same way.
//
// The credential check is an interface (InternalAuth): today a bearer token compared in constant time; mutual TLS
// for multi-machine deployments can replace it later (verify the peer certificate of the request's socket)
// without touching the routes.
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';

/** How an internal service recognises its callers. */
export interface InternalAuth {
  /** The `WWW-Authenticate` challenge answered with a 401. */
  readonly challenge: string;
  /** True when the request carries the credential. Must not leak, by timing, how close a wrong one came. */
  verify(req: Request): boolean;
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/**
 * `Authorization: Bearer <token>`, compared in constant time: both sides are hashed first (SHA-256), so neither
 * the content nor the length of the expected token shows in the time a wrong one takes.
 */
export function bearerAuth(token: string): InternalAuth {
  if (!token) throw new Error('a bearer token must not be empty');
  const want = sha256(token);
  return {
    challenge: 'Bearer',
    verify(req: Request): boolean {
      const header = req.headers.get('authorization') ?? '';
      const m = /^Bearer +(.*)$/i.exec(header);
      // a missing header hashes '' so that it costs what a wrong token costs
      return timingSafeEqual(sha256(m ? m[1] : ''), want) && m !== null;
    },
  };
}

/** The `Authorization` header a client of an internal service sends (none without a token). */
export function bearerHeader(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

export interface RequireAuthOptions {
  /** The service's own 401 body (each service keeps its usual error shape). */
  unauthorized: (c: Context) => Response;
  /** Told that a request failed authentication: never the presented credential. */
  onFailure?: (fields: { method: string; path: string }) => void;
}

/** Refuses requests without the credential (401 + `WWW-Authenticate`). No auth configured: every request passes. */
export function requireAuth(auth: InternalAuth | undefined, opts: RequireAuthOptions): MiddlewareHandler {
  return async (c, next) => {
    if (auth && !auth.verify(c.req.raw)) {
      opts.onFailure?.({ method: c.req.method, path: c.req.path });
      c.header('WWW-Authenticate', auth.challenge);
      return opts.unauthorized(c);
    }
    await next();
  };
}

/**
 * Refuses a body over `maxBytes` while it is read: a Content-Length over the limit is refused before any byte is
 * read, a chunked body as soon as the bytes read pass the limit (hono/body-limit, which buffers at most
 * `maxBytes`). @hono/node-server then reads and discards the unread rest (at most 64 MiB or 500 ms) before it
 * closes the connection; nothing of it is held.
 */
export function limitBody(maxBytes: number, tooLarge: (c: Context) => Response): MiddlewareHandler {
  return bodyLimit({ maxSize: maxBytes, onError: tooLarge });
}

/** 127.0.0.0/8, ::1, ::ffff:127.x.y.z and `localhost`: reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

export class InsecureBindError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InsecureBindError';
  }
}

/**
 * A service may run without its token only on loopback (with a loud warning): on any other address it would be
 * a door without a key, so this throws.
 */
export function requireTokenOffLoopback(host: string, token: string | undefined, serviceName: string, warn: (msg: string) => void = (m) => process.stderr.write(m + '\n')): void {
  if (token) return;
  if (!isLoopback(host)) {
    throw new InsecureBindError(`${serviceName} refuses to listen on ${host} without a token: anyone who can reach it could use it. Set its token (see --help), or listen on 127.0.0.1`);
  }
  warn(`WARNING: ${serviceName} runs WITHOUT authentication (no token): any process on this machine can use it. Set its token (see --help)`);
}
