// Runs SQL-over-HTTP queries on a compute connection with the extended protocol (Parse without parameter
// types, Bind in text, Describe, Execute, Sync in one write) and builds the JSON of each result as it streams,
// so the response-size limit can stop a huge result early.
import type { BackendConnection } from '../compute/connection.ts';
import { PgServerError, ProxyError } from '../errors.ts';
import {
  bind,
  describe,
  execute,
  parse,
  parseCommandComplete,
  parseDataRow,
  parseErrorFields,
  parseReadyForQuery,
  parseRowDescription,
  query,
  sync,
  type FieldDescription,
} from '../../lib/pg-wire/index.ts';
import { textToJson, type Json } from './json-values.ts';

export interface QueryRequest {
  query: string;
  params: (string | null)[];
  arrayMode: boolean;
}

export interface OutputOptions {
  /** Neon-Raw-Text-Output: values stay Postgres text. */
  rawText: boolean;
}

/**
 * Messages to send in the same write as the last statement of a request (the session reset, so the compute
 * runs it right after the query without another round trip); `sent` tells whether they went out.
 */
export interface Trailer {
  readonly bytes: Uint8Array;
  sent: boolean;
}

/** Bytes of encoded rows left before the response exceeds its limit; shared by the queries of a batch. */
export interface ResponseBudget {
  remaining: number;
  readonly max: number;
}

export class ResponseTooLarge extends Error {
  override name = 'ResponseTooLarge';
  constructor(max: number) {
    super(`response is too large (max is ${max} bytes)`);
  }
}

/** Command tag parsing exactly like node-postgres' Result.addCommandComplete. */
export function parseCommandTag(tag: string): { command: string; rowCount: number | null } {
  const m = /^([A-Za-z]+)(?: (\d+))?(?: (\d+))?/.exec(tag);
  if (!m) return { command: '', rowCount: null };
  if (m[3] !== undefined) return { command: m[1], rowCount: Number.parseInt(m[3], 10) };
  if (m[2] !== undefined) return { command: m[1], rowCount: Number.parseInt(m[2], 10) };
  return { command: m[1], rowCount: null };
}

function fieldJson(f: FieldDescription): string {
  // Exactly node-postgres' FieldDef keys, in a stable order.
  return JSON.stringify({
    name: f.name,
    dataTypeID: f.dataTypeID,
    tableID: f.tableID,
    columnID: f.columnID,
    dataTypeSize: f.dataTypeSize,
    dataTypeModifier: f.dataTypeModifier,
    format: 'text',
  });
}

function rowJson(values: (string | null)[], fields: FieldDescription[], req: QueryRequest, out: OutputOptions): string {
  let conv: Json[] = values;
  if (!out.rawText) {
    try {
      conv = values.map((v, i) => textToJson(v, fields[i]?.dataTypeID ?? 25));
    } catch {
      throw new ProxyError('could not parse postgres response', 500, 'bad_row');
    }
  }
  if (req.arrayMode) return JSON.stringify(conv);
  const obj: Record<string, Json> = {};
  fields.forEach((f, i) => {
    obj[f.name] = conv[i];
  });
  return JSON.stringify(obj);
}

/** One query; resolves to its JSON object text. Throws PgServerError for a Postgres error. */
export async function runQuery(
  conn: BackendConnection,
  req: QueryRequest,
  out: OutputOptions,
  budget: ResponseBudget,
  trailer?: Trailer,
): Promise<string> {
  const parts = [parse(req.query), bind(req.params), describe('P'), execute(), sync()];
  if (trailer) {
    parts.push(trailer.bytes);
    trailer.sent = true;
  }
  conn.write(Buffer.concat(parts));
  let fields: FieldDescription[] = [];
  const rows: string[] = [];
  let tag = '';
  let error: Record<string, string> | null = null;
  await conn.read((m) => {
    switch (m.type) {
      case 'T':
        fields = parseRowDescription(m.body);
        return false;
      case 'D': {
        if (error) return false;
        const json = rowJson(parseDataRow(m.body), fields, req, out);
        budget.remaining -= Buffer.byteLength(json) + 1;
        if (budget.remaining < 0) throw new ResponseTooLarge(budget.max);
        rows.push(json);
        return false;
      }
      case 'C':
        tag = parseCommandComplete(m.body);
        return false;
      case 'E':
        error = parseErrorFields(m.body);
        return false;
      case 'Z':
        conn.txStatus = parseReadyForQuery(m.body);
        return true;
      default:
        return false; // ParseComplete, BindComplete, NoData, EmptyQuery, notices, notifications
    }
  });
  if (error) throw new PgServerError(error);
  const { command, rowCount } = parseCommandTag(tag);
  return `{"fields":[${fields.map(fieldJson).join(',')}],"rows":[${rows.join(',')}],"command":${JSON.stringify(command)},"rowCount":${rowCount === null ? 'null' : rowCount},"rowAsArray":${req.arrayMode}}`;
}

/** A simple-protocol statement whose result is not needed (transaction control, session reset). */
export async function runSimple(conn: BackendConnection, sql: string, trailer?: Trailer): Promise<void> {
  if (trailer) {
    conn.write(Buffer.concat([query(sql), trailer.bytes]));
    trailer.sent = true;
  } else conn.write(query(sql));
  await readSimpleResult(conn);
}

/** Reads the result of one simple-protocol Query already written: up to its ReadyForQuery. */
export async function readSimpleResult(conn: BackendConnection): Promise<void> {
  let error: Record<string, string> | null = null;
  await conn.read((m) => {
    if (m.type === 'E') error ??= parseErrorFields(m.body);
    if (m.type !== 'Z') return false;
    conn.txStatus = parseReadyForQuery(m.body);
    return true;
  });
  if (error) throw new PgServerError(error);
}

export interface BatchOptions {
  isolationLevel: string | null;
  readOnly: boolean;
  deferrable: boolean;
}

const ISOLATION_SQL: Record<string, string> = {
  ReadUncommitted: 'READ UNCOMMITTED',
  ReadCommitted: 'READ COMMITTED',
  RepeatableRead: 'REPEATABLE READ',
  Serializable: 'SERIALIZABLE',
};

export function isIsolationLevel(v: string): boolean {
  return Object.hasOwn(ISOLATION_SQL, v);
}

export function startTransactionSql(o: BatchOptions): string {
  const clauses: string[] = [];
  if (o.isolationLevel) clauses.push(`ISOLATION LEVEL ${ISOLATION_SQL[o.isolationLevel]}`);
  if (o.readOnly) clauses.push('READ ONLY');
  if (o.deferrable) clauses.push('DEFERRABLE');
  return clauses.length ? `START TRANSACTION ${clauses.join(', ')}` : 'START TRANSACTION';
}

/** All queries in one transaction: every result, or the first error after a ROLLBACK. */
export async function runBatch(
  conn: BackendConnection,
  queries: QueryRequest[],
  batch: BatchOptions,
  out: OutputOptions,
  budget: ResponseBudget,
  trailer?: Trailer,
): Promise<string> {
  await runSimple(conn, startTransactionSql(batch));
  const results: string[] = [];
  try {
    for (const q of queries) results.push(await runQuery(conn, q, out, budget));
  } catch (err) {
    if (err instanceof PgServerError && !conn.closed) await runSimple(conn, 'ROLLBACK');
    throw err;
  }
  await runSimple(conn, 'COMMIT', trailer);
  return `{"results":[${results.join(',')}]}`;
}
