// The public API's field checks as valibot schemas (lib/validate.ts), with the messages its clients know: each
// names the field as the caller wrote it ("branch.name must be a string") and fails as a 400 BAD_REQUEST. A field
// absent or null is undefined, as Neon treats it; fields a route does not know are ignored (Neon's clients send
// extras). api/schemas.ts builds one schema per request from these; bodyOf/queryOf read a request through one.
import type { Context } from 'hono';
import { parse, readJson, v } from '../../lib/validate.ts';
import { badRequest } from '../errors.ts';
import { parseLsn } from '../lsn.ts';

/** A schema of any input with output T. */
export type Field<T> = v.GenericSchema<unknown, T>;

const MAX_BODY_BYTES = 1024 * 1024;
const fail = (message: string) => badRequest(message);

/**
 * The request's JSON object body checked against `schema` (an empty body is `{}`). Read inside the handler, after
 * its lookups: an unknown project or branch answers 404 before the body is judged.
 */
export async function bodyOf<S extends v.GenericSchema>(c: Context, schema: S): Promise<v.InferOutput<S>> {
  // the router's body limit (http/public-api.ts) refuses more while reading; this holds once it is read too
  if (Buffer.byteLength(await c.req.text()) > MAX_BODY_BYTES) throw badRequest('request body is too large (1 MiB at most)');
  const json = await readJson(c, { emptyAs: {}, notJson: () => badRequest('request body is not valid JSON') });
  return parse(schema, json, fail);
}

/** The query string checked against `schema` (in the handler, after its lookups, as bodyOf). */
export function queryOf<S extends v.GenericSchema>(c: Context, schema: S): v.InferOutput<S> {
  return parse(schema, c.req.query(), fail);
}

// ---- objects ----

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * A JSON object whose every entry is judged, present or not (valibot skips absent optional keys and reports an
 * absent required one with the object's message; here each field says it is required itself).
 */
export function fields<E extends v.ObjectEntries>(entries: E, notObject: string) {
  const absent = Object.fromEntries(Object.keys(entries).map((k) => [k, undefined]));
  return v.pipe(
    v.custom<Record<string, unknown>>(isObject, notObject),
    v.transform((o) => ({ ...absent, ...o })),
    v.object(entries),
  );
}

/**
 * `o[key]` must be an object when given (else "<where> must be an object"), checked before the object's other
 * fields (the order the API always checked them in); `o` that is not an object is left to the schema after.
 */
export function objectFirst(key: string, where: string) {
  return v.check((o: unknown) => !isObject(o) || o[key] === undefined || o[key] === null || isObject(o[key]), `${where} must be an object`);
}

/** The body itself as an object of `entries`. */
export const body = <E extends v.ObjectEntries>(entries: E) => fields(entries, 'request body must be a JSON object');

/** The query string's parameters. */
export const params = <E extends v.ObjectEntries>(entries: E) => fields(entries, 'query parameters expected');

/** An object inside the body (`branch`, `project.branch`): absent or null is `{}` unless required. */
export function section<E extends v.ObjectEntries>(where: string, entries: E, opts: { required?: boolean } = {}) {
  return sectionOf(where, fields(entries, `${where} must be an object`), opts);
}

/** section() of an object schema of its own (e.g. inOrder's). */
export function sectionOf<T>(where: string, schema: Field<T>, opts: { required?: boolean } = {}): Field<T> {
  return v.pipe(
    v.unknown(),
    v.check((x) => !opts.required || (x !== undefined && x !== null), `${where} is required`),
    v.transform((x) => x ?? {}),
    schema,
  );
}

/** The output of an object of `E`. */
type Out<E extends v.ObjectEntries> = v.InferOutput<v.ObjectSchema<E, undefined>>;

/**
 * An object whose `first` fields are judged, then `rule` across them (null: fine, else the message), then its
 * `then` fields: the order the API always judged them in, so a body wrong twice names the same fault as before.
 */
export function inOrder<F extends v.ObjectEntries, T extends v.ObjectEntries>(
  first: F, rule: (o: Out<F>) => string | null, then: T, notObject: string,
): Field<Out<F> & Out<T>> {
  const pending = (entries: v.ObjectEntries) => Object.fromEntries(Object.keys(entries).map((k) => [k, v.unknown()]));
  const judge = (o: unknown) => rule(o as Out<F>);
  // typed loosely inside: the result's type is the two objects' outputs together
  const before = fields({ ...first, ...pending(then) }, notObject) as Field<Record<string, unknown>>;
  const after = v.object({ ...pending(first), ...then }) as v.GenericSchema<Record<string, unknown>, Record<string, unknown>>;
  return v.pipe(before, v.check((o) => judge(o) === null, (issue) => judge(issue.input) ?? ''), after) as Field<Out<F> & Out<T>>;
}

// ---- presence ----

/** Absent or null: undefined; anything else is judged by `schema`. */
export function optional<T>(schema: Field<T>): Field<T | undefined> {
  return v.pipe(v.nullish(schema), v.transform((x) => x ?? undefined));
}

/** Absent or null: "<where> is required" (with a hint: "... is required (read_write or read_only)"). */
export function required<T>(where: string, schema: Field<T>, hint?: string): Field<T> {
  return v.pipe(v.unknown(), v.check((x) => x !== undefined && x !== null, `${where} is required${hint ? ` (${hint})` : ''}`), schema);
}

// ---- values ----

/** A pattern a string must match, and what it means in words. */
export interface Rule {
  re: RegExp;
  what: string;
}

export function string(where: string, rule?: Rule): Field<string> {
  const s = v.string(`${where} must be a string`);
  return rule ? v.pipe(s, v.regex(rule.re, `${where} must be ${rule.what}`)) : s;
}

export const optString = (where: string, rule?: Rule): Field<string | undefined> => optional(string(where, rule));
export const reqString = (where: string, rule?: Rule): Field<string> => required(where, string(where, rule));

export const optBool = (where: string): Field<boolean | undefined> => optional(v.boolean(`${where} must be true or false`));

export function optInt(where: string, min: number, max: number): Field<number | undefined> {
  const m = `${where} must be an integer from ${min} to ${max}`;
  return optional(v.pipe(v.number(m), v.check((n) => Number.isInteger(n) && n >= min && n <= max, m)));
}

export function optNumber(where: string, min: number, max: number): Field<number | undefined> {
  const m = `${where} must be a number from ${min} to ${max}`;
  return optional(v.pipe(v.number(m), v.check((n) => Number.isFinite(n) && n >= min && n <= max, m)));
}

export function oneOf<const T extends string>(where: string, values: readonly T[]): Field<T> {
  return v.picklist(values, `${where} must be one of ${values.join(', ')}`) as Field<T>;
}

export const optEnum = <const T extends string>(where: string, values: readonly T[]): Field<T | undefined> => optional(oneOf(where, values));

const toLsn = (x: unknown): number | null =>
  typeof x === 'string' ? parseLsn(x) : typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x : null;

/** An LSN as "0/16B3748" or as a number. */
export function optLsn(where: string): Field<number | undefined> {
  const message = `${where} must be an LSN such as "0/16B3748"`;
  return optional(v.pipe(
    v.unknown(),
    v.rawTransform<unknown, number>(({ dataset, addIssue, NEVER }) => {
      const n = toLsn(dataset.value);
      if (n !== null) return n;
      addIssue({ message });
      return NEVER;
    }),
  ));
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

export function timestamp(where: string): Field<string> {
  return v.pipe(
    string(where),
    v.check((t) => ISO_TIME.test(t) && !Number.isNaN(Date.parse(t)), `${where} must be an ISO 8601 time such as "2026-01-02T03:04:05Z"`),
  );
}

export const optTimestamp = (where: string): Field<string | undefined> => optional(timestamp(where));

/** Suspend timeout: -1 never, 0 the default, else seconds up to a week (Neon's bounds). */
export const optSuspendTimeout = (where: string): Field<number | undefined> => optInt(where, -1, 604800);

export const optCu = (where: string): Field<number | undefined> => optNumber(where, 0.25, 56);

// ---- names ----

// Postgres identifiers (63 bytes); names the system reserves are refused.
const IDENT: Rule = { re: /^[^\0]{1,63}$/, what: '1 to 63 characters' };
export const RESERVED_ROLES = new Set(['postgres', 'cloud_admin', 'neon_superuser', 'public', 'none', 'current_user', 'session_user']);
const RESERVED_DATABASES = new Set(['postgres', 'template0', 'template1']);

function identifier(where: string, reserved: (name: string) => boolean): Field<string> {
  return v.pipe(
    string(where, IDENT),
    v.check((n) => Buffer.byteLength(n) <= 63, `${where} must be at most 63 bytes`),
    v.check((n) => !reserved(n), (issue) => `${where}: ${JSON.stringify(issue.input)} is reserved by the system; pick another name`),
  );
}

export const roleName = (where: string): Field<string> =>
  required(where, identifier(where, (n) => n.startsWith('pg_') || RESERVED_ROLES.has(n.toLowerCase())));

const databaseName = (where: string): Field<string> => identifier(where, (n) => RESERVED_DATABASES.has(n));
export const reqDatabaseName = (where: string): Field<string> => required(where, databaseName(where));
export const optDatabaseName = (where: string): Field<string | undefined> => optional(databaseName(where));

export const BRANCH_NAME: Rule = { re: /^[^\0]{1,256}$/, what: '1 to 256 characters' };
export const PROJECT_NAME: Rule = { re: /^[^\0]{1,64}$/, what: '1 to 64 characters' };
export const ENDPOINT_NAME: Rule = { re: /^[^\0]{1,64}$/, what: '1 to 64 characters' };
export const CHECKPOINT_NAME: Rule = { re: /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, what: '1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit' };

// ---- query parameters (strings) ----

export function queryBool(key: string): Field<boolean | undefined> {
  const m = `query parameter ${key} must be true or false`;
  return optional(v.pipe(v.string(m), v.picklist(['true', 'false'], m), v.transform((s) => s === 'true')));
}

export function queryInt(key: string, min: number, max: number): Field<number | undefined> {
  const m = `query parameter ${key} must be an integer from ${min} to ${max}`;
  return optional(v.pipe(v.string(m), v.check((s) => /^-?\d+$/.test(s) && Number(s) >= min && Number(s) <= max, m), v.transform(Number)));
}

/** A query parameter read as it comes. */
export const queryString = (): Field<string | undefined> => v.optional(v.string());
