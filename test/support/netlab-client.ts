// A client machine of a NetLab (test/support/netlab.ts): the test cannot open sockets inside a namespace, so it
// runs this there and talks to it over stdin/stdout, one JSON object per line. Requests carry an `id` and get one
// answer with that id: {op: 'api', url, key, method, path, body} (the public API), {op: 'sql', uri, sql} (one query
// on a new connection), {op: 'writer', uri, key} (inserts rows into t until {op: 'stop', key}; every acknowledged
// row is reported as {event: 'ack', key, row, at}).
import { createInterface } from 'node:readline';
import pg from 'pg';

type Request =
  | { id: number; op: 'api'; url: string; key: string; method: string; path: string; body?: unknown }
  | { id: number; op: 'sql'; uri: string; sql: string }
  | { id: number; op: 'writer'; uri: string; key: string }
  | { id: number; op: 'stop'; key: string };

const say = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const writers = new Map<string, { stop: boolean; done: Promise<void> }>();

function client(uri: string): pg.Client {
  const c = new pg.Client({ connectionString: uri, query_timeout: 4000, connectionTimeoutMillis: 15_000 });
  c.on('error', () => {});
  return c;
}

async function sql(uri: string, text: string): Promise<unknown> {
  const c = client(uri);
  try {
    await c.connect();
    return (await c.query(text)).rows;
  } finally {
    await c.end().catch(() => {});
  }
}

function writer(uri: string, key: string): void {
  const w = { stop: false, done: Promise.resolve() };
  w.done = (async () => {
    let c: pg.Client | null = null;
    for (let row = 1; !w.stop; row++) {
      try {
        if (!c) {
          c = client(uri);
          await c.connect();
        }
        await c.query('INSERT INTO t (id) VALUES ($1)', [row]);
        say({ event: 'ack', key, row, at: Date.now() });
        await sleep(20);
      } catch {
        void c?.end().catch(() => {});
        c = null;
        await sleep(200);
      }
    }
    await c?.end().catch(() => {});
  })();
  writers.set(key, w);
}

async function handle(r: Request): Promise<unknown> {
  if (r.op === 'api') {
    const res = await fetch(r.url + r.path, {
      method: r.method,
      headers: { authorization: `Bearer ${r.key}`, 'content-type': 'application/json' },
      body: r.body === undefined ? undefined : JSON.stringify(r.body),
    });
    return { status: res.status, body: await res.json().catch(() => null) };
  }
  if (r.op === 'sql') return { rows: await sql(r.uri, r.sql) };
  if (r.op === 'writer') return writer(r.uri, r.key);
  const w = writers.get(r.key);
  if (w) {
    w.stop = true;
    await w.done;
  }
  return {};
}

for await (const line of createInterface({ input: process.stdin })) {
  const r = JSON.parse(line) as Request;
  handle(r).then(
    (result) => say({ id: r.id, result }),
    (e: unknown) => say({ id: r.id, error: (e as Error).message }),
  );
}
