// Validation of request bodies and query strings: every field a route reads is checked, and a wrong one gets a
// 400 that names it. Fields a route does not know are ignored, as Neon does (its clients send extras).
import type { Context } from 'hono';
import { badRequest } from '../errors.ts';
import { parseLsn } from '../lsn.ts';

export type Json = Record<string, unknown>;

const MAX_BODY_BYTES = 1024 * 1024;

/** The JSON object body (empty body: `{}`). */
export async function readBody(c: Context): Promise<Json> {
  const text = await c.req.text();
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) throw badRequest('request body is too large (1 MiB at most)');
  if (!text.trim()) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw badRequest('request body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw badRequest('request body must be a JSON object');
  return parsed as Json;
}

/** `o[key]` as an object; absent or null gives `{}` unless required. */
export function object(o: Json, key: string, where: string, required = false): Json {
  const v = o[key];
  if (v === undefined || v === null) {
    if (required) throw badRequest(`${where} is required`);
    return {};
  }
  if (typeof v !== 'object' || Array.isArray(v)) throw badRequest(`${where} must be an object`);
  return v as Json;
}

export function optString(o: Json, key: string, where: string, rule?: { re: RegExp; what: string }): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw badRequest(`${where} must be a string`);
  if (rule && !rule.re.test(v)) throw badRequest(`${where} must be ${rule.what}`);
  return v;
}

export function reqString(o: Json, key: string, where: string, rule?: { re: RegExp; what: string }): string {
  const v = optString(o, key, where, rule);
  if (v === undefined) throw badRequest(`${where} is required`);
  return v;
}

export function optBool(o: Json, key: string, where: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badRequest(`${where} must be true or false`);
  return v;
}

export function optInt(o: Json, key: string, where: string, min: number, max: number): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw badRequest(`${where} must be an integer from ${min} to ${max}`);
  return v;
}

export function optNumber(o: Json, key: string, where: string, min: number, max: number): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw badRequest(`${where} must be a number from ${min} to ${max}`);
  return v;
}

export function optEnum<T extends string>(o: Json, key: string, where: string, values: readonly T[]): T | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) throw badRequest(`${where} must be one of ${values.join(', ')}`);
  return v as T;
}

export function optLsn(o: Json, key: string, where: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' ? parseLsn(v) : typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null;
  if (n === null) throw badRequest(`${where} must be an LSN such as "0/16B3748"`);
  return n;
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

export function optTimestamp(o: Json, key: string, where: string): string | undefined {
  const v = optString(o, key, where);
  if (v === undefined) return undefined;
  if (!ISO_TIME.test(v) || Number.isNaN(Date.parse(v))) throw badRequest(`${where} must be an ISO 8601 time such as "2026-01-02T03:04:05Z"`);
  return v;
}

/** Suspend timeout: -1 never, 0 the default, else seconds up to a week (Neon's bounds). */
export const optSuspendTimeout = (o: Json, key: string, where: string): number | undefined => optInt(o, key, where, -1, 604800);

export const optCu = (o: Json, key: string, where: string): number | undefined => optNumber(o, key, where, 0.25, 56);

// Postgres identifiers (63 bytes); names the system reserves are refused.
const IDENT = { re: /^[^\0]{1,63}$/, what: '1 to 63 characters' };
export const RESERVED_ROLES = new Set(['postgres', 'cloud_admin', 'neon_superuser', 'public', 'none', 'current_user', 'session_user']);

export function roleName(o: Json, key: string, where: string): string {
  const v = reqString(o, key, where, IDENT);
  if (Buffer.byteLength(v) > 63) throw badRequest(`${where} must be at most 63 bytes`);
  if (v.startsWith('pg_') || RESERVED_ROLES.has(v.toLowerCase())) throw badRequest(`${where}: ${JSON.stringify(v)} is reserved by the system; pick another name`);
  return v;
}

export function databaseName(o: Json, key: string, where: string, required = true): string | undefined {
  const v = required ? reqString(o, key, where, IDENT) : optString(o, key, where, IDENT);
  if (v !== undefined && Buffer.byteLength(v) > 63) throw badRequest(`${where} must be at most 63 bytes`);
  if (v !== undefined && ['postgres', 'template0', 'template1'].includes(v)) throw badRequest(`${where}: ${JSON.stringify(v)} is reserved by the system; pick another name`);
  return v;
}

export const BRANCH_NAME = { re: /^[^\0]{1,256}$/, what: '1 to 256 characters' };
export const PROJECT_NAME = { re: /^[^\0]{1,64}$/, what: '1 to 64 characters' };
export const CHECKPOINT_NAME = { re: /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, what: '1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit' };

/** A query parameter that must be a boolean when present. */
export function queryBool(c: Context, key: string): boolean | undefined {
  const v = c.req.query(key);
  if (v === undefined) return undefined;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw badRequest(`query parameter ${key} must be true or false`);
}

export function queryInt(c: Context, key: string, min: number, max: number): number | undefined {
  const v = c.req.query(key);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^-?\d+$/.test(v) || n < min || n > max) throw badRequest(`query parameter ${key} must be an integer from ${min} to ${max}`);
  return n;
}
