// The example's schema: products with stock, orders, and the lines of each order. Created on the first
// request an isolate serves (idempotent), so `wrangler dev` against an empty lakebase just works. A real
// application would run migrations from CI instead; the statements are the same.
import type { NeonQueryFunction } from '@neondatabase/serverless';

const STATEMENTS = [
  `CREATE TABLE IF NOT EXISTS products (
     sku          text PRIMARY KEY,
     name         text NOT NULL,
     price_cents  integer NOT NULL CHECK (price_cents >= 0),
     stock        integer NOT NULL CHECK (stock >= 0),
     created_at   timestamptz NOT NULL DEFAULT now()
   )`,
  `CREATE TABLE IF NOT EXISTS orders (
     id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     customer     text NOT NULL,
     note         text NOT NULL DEFAULT '',
     total_cents  integer NOT NULL DEFAULT 0,
     created_at   timestamptz NOT NULL DEFAULT now(),
     updated_at   timestamptz NOT NULL DEFAULT now()
   )`,
  `CREATE TABLE IF NOT EXISTS order_lines (
     order_id     integer NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
     sku          text NOT NULL REFERENCES products (sku),
     quantity     integer NOT NULL CHECK (quantity > 0),
     price_cents  integer NOT NULL,
     PRIMARY KEY (order_id, sku)
   )`,
  // Full-text search over customer and note (GET /orders/search).
  `CREATE INDEX IF NOT EXISTS orders_search ON orders USING gin (to_tsvector('simple', customer || ' ' || note))`,
];

let ready = false;

/** Creates the tables once per isolate. Concurrent first requests are serialised by an advisory lock. */
export async function ensureSchema(sql: NeonQueryFunction<false, false>): Promise<void> {
  if (ready) return;
  // One HTTP request, one transaction: `transaction()` sends the statements as a batch over fetch.
  await sql.transaction([
    sql`SELECT pg_advisory_xact_lock(hashtext('lakebase-example-schema'))`,
    ...STATEMENTS.map((s) => sql.query(s)),
  ]);
  ready = true;
}
