// Reading and decoding the SQL-over-HTTP request body: size limit (413) while streaming, then Neon's
// "untagged" payload decode: a single query first, then a batch (400 with Neon's message prefix). Bodies
// nested deeper than serde_json allows, numbers beyond f64 and more parameters than the protocol carries are
// refused with 400 before anything reaches a compute.
import type { Readable } from 'node:stream';
import { ProxyError } from '../errors.ts';
import { jsonLimitViolation } from './json-guard.ts';
import { paramToText, type Json } from './json-values.ts';

export interface SingleQuery {
  query: string;
  params: (string | null)[];
  arrayMode: boolean | undefined;
}

export type Payload = { kind: 'single'; query: SingleQuery } | { kind: 'batch'; queries: SingleQuery[] };

export const tooLarge = (max: number): ProxyError =>
  new ProxyError(`request is too large (max is ${max} bytes)`, 413, 'request_too_large');

/** The request body from Node's request stream, refused (413) as soon as it passes `max` bytes. */
export function readIncoming(incoming: Readable, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
    };
    const fail = (message: string): void => {
      cleanup();
      reject(new ProxyError(`could not read the HTTP request body: ${message}`, 400, 'bad_request'));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        // Left unread: Node's server drains what is left after the 413, or closes the connection.
        cleanup();
        incoming.pause();
        reject(tooLarge(max));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    };
    const onError = (err: Error): void => fail(err.message);
    const onClose = (): void => fail('aborted');
    if (incoming.readableEnded) {
      resolve(Buffer.alloc(0));
      return;
    }
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('close', onClose);
  });
}

const UNTAGGED = 'data did not match any variant of untagged enum Payload';

const badBody = (detail: string): ProxyError =>
  new ProxyError(`could not parse the HTTP request body: ${detail}`, 400, 'bad_request');

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Bind carries the parameter count in an unsigned 16-bit field. */
export const MAX_PARAMS = 65535;

function single(v: unknown): SingleQuery | null {
  if (!isObject(v) || typeof v.query !== 'string') return null;
  if (v.params !== undefined && v.params !== null && !Array.isArray(v.params)) return null;
  if (Array.isArray(v.params) && v.params.length > MAX_PARAMS) {
    // libpq's wording for the same limit.
    throw new ProxyError(`number of parameters must be between 0 and ${MAX_PARAMS}`, 400, 'bad_request');
  }
  if (v.arrayMode !== undefined && v.arrayMode !== null && typeof v.arrayMode !== 'boolean') return null;
  const params = ((v.params as Json[] | undefined | null) ?? []).map(paramToText);
  return { query: v.query, params, arrayMode: (v.arrayMode as boolean | null | undefined) ?? undefined };
}

export function decodePayload(raw: Buffer): Payload {
  let doc: unknown;
  const text = raw.toString('utf8');
  const violation = jsonLimitViolation(text);
  if (violation) throw badBody(violation);
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw badBody(err instanceof Error ? err.message : String(err));
  }
  const q = single(doc);
  if (q) return { kind: 'single', query: q };
  if (isObject(doc) && Array.isArray(doc.queries)) {
    const queries = doc.queries.map(single);
    if (queries.every((x): x is SingleQuery => x !== null)) return { kind: 'batch', queries };
  }
  throw badBody(UNTAGGED);
}
