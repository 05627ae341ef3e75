// Request validation, one way for every API: a valibot schema per body or query, checked through Hono's
// validator middleware, the first issue turned into the API's ServiceError. Schemas carry their own messages
// (each API keeps the wording its clients know); an issue without one is reported as "<path>: <valibot text>".
// The schema's output type is what the route handler and the API's client both use.
import type { Context, MiddlewareHandler } from 'hono';
import { validator } from 'hono/validator';
import * as v from 'valibot';
import { badRequest, type ServiceError } from './errors.ts';

/** Builds the error for a failed check; the default is a 400 `invalid_request`. */
export type Failure = (message: string, issue: v.BaseIssue<unknown> | undefined) => ServiceError;

const invalidRequest: Failure = (message) => badRequest('invalid_request', message);

/** `a.b[2].c` for an issue's path ('' at the root). */
export function issuePath(issue: v.BaseIssue<unknown>): string {
  let out = '';
  for (const item of issue.path ?? []) {
    const key = (item as { key?: unknown }).key;
    out += typeof key === 'number' ? `[${key}]` : out ? `.${String(key)}` : String(key);
  }
  return out;
}

/** The text a caller sees for an issue: the schema's own message, or the path and valibot's. */
export function issueMessage(issue: v.BaseIssue<unknown>): string {
  const path = issuePath(issue);
  // valibot's default messages start with "Invalid "; a schema's own message is a whole sentence
  if (issue.message.startsWith('Invalid ') && path) return `${path}: ${issue.message}`;
  return issue.message;
}

/** `input` checked against `schema`, or the failure of its first issue thrown. */
export function parse<S extends v.GenericSchema>(schema: S, input: unknown, fail: Failure = invalidRequest): v.InferOutput<S> {
  const r = v.safeParse(schema, input, { abortEarly: true });
  if (r.success) return r.output;
  const issue = r.issues[0];
  throw fail(issueMessage(issue), issue);
}

/** The request's JSON body as text-then-JSON.parse, with the API's wording for a body that is not JSON. */
export async function readJson(c: Context, opts: { emptyAs?: unknown; notJson?: (reason: string) => ServiceError } = {}): Promise<unknown> {
  const text = await c.req.text();
  if (opts.emptyAs !== undefined && text.trim() === '') return opts.emptyAs;
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const reason = (e as Error).message;
    throw opts.notJson ? opts.notJson(reason) : badRequest('malformed_json', `request body is not valid JSON: ${reason}`);
  }
}

type Validated<T extends 'json' | 'query', S extends v.GenericSchema> = MiddlewareHandler<
  Record<string, never>,
  string,
  { in: { [K in T]: v.InferInput<S> }; out: { [K in T]: v.InferOutput<S> } }
>;

/**
 * Hono middleware: the JSON body checked against `schema`; read it in the handler with `c.req.valid('json')`.
 * It reads the body itself rather than through Hono's `validator('json')`, which answers a body without
 * `Content-Type: application/json` as `{}` and a malformed one with its own text: each API keeps its wording.
 */
export function jsonBody<S extends v.GenericSchema>(
  schema: S,
  opts: { emptyAs?: unknown; notJson?: (reason: string) => ServiceError; fail?: Failure } = {},
): Validated<'json', S> {
  return async (c, next) => {
    c.req.addValidatedData('json', parse(schema, await readJson(c, opts), opts.fail) as object);
    await next();
  };
}

/** Hono middleware: the query string checked against `schema`; read it with `c.req.valid('query')`. */
export function queryOf<S extends v.GenericSchema>(schema: S, fail?: Failure): Validated<'query', S> {
  return validator('query', (value) => parse(schema, value, fail)) as Validated<'query', S>;
}

export { v };
