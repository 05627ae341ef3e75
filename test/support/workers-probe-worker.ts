// A Worker used only by tests: runs the SQL it is given through the unmodified driver inside workerd, over
// HTTP (`neon()`) or WebSocket (`Pool`), and returns the results with types preserved (see workers-values.ts),
// so that Node can compare them with what `pg` returns over TCP.
import { Pool, neon, type FieldDef, type FullQueryResults } from '@neondatabase/serverless';
import { configureLakebase, lakebaseCache } from '../../workers/lakebase-config.ts';
import { encodeValue, type EncodedValue } from './workers-values.ts';

interface Env {
  DATABASE_URL: string;
  LAKEBASE_PROXY: string;
}

export interface ProbeStatement {
  text: string;
  params?: unknown[];
}

export interface ProbeRequest {
  /** `http`: one `neon()` query per statement; `ws`: one Pool client, statements in order on one session. */
  via: 'http' | 'ws';
  statements: ProbeStatement[];
  /** Origin to use instead of LAKEBASE_PROXY (e.g. the edge gateway). */
  proxy?: string;
  /** With `http`: ask the gateway to cache each read for this many seconds. */
  cacheTtl?: number;
}

export interface ProbeResult {
  command: string;
  rowCount: number | null;
  fields: Array<Pick<FieldDef, 'name' | 'dataTypeID'>>;
  rows: Array<Record<string, EncodedValue>>;
}

export type ProbeResponse = { ok: true; results: ProbeResult[]; ms: number[] } | { ok: false; error: { message: string; code?: string } };

interface DriverResult {
  command: string;
  rowCount: number | null;
  fields: FieldDef[];
  rows: Array<Record<string, unknown>>;
}

function encodeResult(r: DriverResult): ProbeResult {
  return {
    command: r.command,
    rowCount: r.rowCount,
    fields: r.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
    rows: r.rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, encodeValue(v)]))),
  };
}

async function run(req: ProbeRequest, env: Env, ctx: ExecutionContext): Promise<ProbeResponse> {
  configureLakebase({ LAKEBASE_PROXY: req.proxy ?? env.LAKEBASE_PROXY });
  const results: ProbeResult[] = [];
  const ms: number[] = [];
  if (req.via === 'http') {
    const sql = neon(env.DATABASE_URL, { fullResults: true });
    const opts = req.cacheTtl === undefined ? {} : lakebaseCache(req.cacheTtl);
    for (const s of req.statements) {
      const t0 = Date.now();
      const r: FullQueryResults<false> = await sql.query(s.text, s.params ?? [], opts);
      ms.push(Date.now() - t0);
      results.push(encodeResult(r));
    }
    return { ok: true, results, ms };
  }
  const pool = new Pool({ connectionString: env.DATABASE_URL });
  try {
    const client = await pool.connect();
    try {
      for (const s of req.statements) {
        const t0 = Date.now();
        const r = await client.query(s.text, s.params ?? []);
        ms.push(Date.now() - t0);
        results.push(encodeResult(r));
      }
    } finally {
      client.release();
    }
  } finally {
    ctx.waitUntil(pool.end());
  }
  return { ok: true, results, ms };
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const req = (await request.json()) as ProbeRequest;
    try {
      return Response.json(await run(req, env, ctx));
    } catch (err) {
      const e = err as { message?: string; code?: string };
      const body: ProbeResponse = { ok: false, error: { message: String(e.message ?? err), code: e.code } };
      return Response.json(body);
    }
  },
};

interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
}
