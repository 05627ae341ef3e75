// Database access. Two ways to reach PostgreSQL from a Worker, both through the lakebase proxy:
//   - `neon()`: one SQL statement per HTTP request. No connection to set up or close: use it for
//     everything that is a single statement (and for non-interactive batches with `sql.transaction([...])`).
//   - `Client` over WebSocket: a real PostgreSQL session. Use it when a transaction must read, decide and
//     then write (BEGIN ... COMMIT), as withTransaction() below does.
import { Client, neon, type NeonQueryFunction } from '@neondatabase/serverless';
import { ApiError } from './errors.ts';
import type { OrderLineInput } from './validate.ts';

export type Sql = NeonQueryFunction<false, false>;

export function httpSql(databaseUrl: string): Sql {
  return neon(databaseUrl);
}

/**
 * Runs `work` inside BEGIN ... COMMIT on its own WebSocket session, and ROLLBACK if it throws (the error is
 * then rethrown). A Worker must not keep a connection across requests: it is closed after the response,
 * in waitUntil, so closing does not add to the response's latency.
 */
export async function withTransaction<T>(
  databaseUrl: string,
  ctx: { waitUntil(promise: Promise<unknown>): void },
  work: (tx: Client) => Promise<T>,
): Promise<T> {
  const client = new Client(databaseUrl);
  await client.connect();
  try {
    await client.query('BEGIN');
    try {
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      // If the connection itself is gone, PostgreSQL has rolled back already: keep the original error.
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  } finally {
    ctx.waitUntil(client.end());
  }
}

// ---- Rows and their JSON shape ----

interface OrderRow {
  id: number;
  customer: string;
  note: string;
  total_cents: number;
  created_at: Date;
  updated_at: Date;
}

interface OrderLineJson {
  sku: string;
  name: string;
  quantity: number;
  priceCents: number;
}

export interface OrderJson {
  id: number;
  customer: string;
  note: string;
  totalCents: number;
  createdAt: string;
  updatedAt: string;
  lines?: OrderLineJson[];
}

function orderJson(row: OrderRow & { lines?: OrderLineJson[] }): OrderJson {
  const order: OrderJson = {
    id: row.id,
    customer: row.customer,
    note: row.note,
    totalCents: row.total_cents,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
  if (row.lines) order.lines = row.lines;
  return order;
}

const ORDER_COLUMNS = 'o.id, o.customer, o.note, o.total_cents, o.created_at, o.updated_at';

// ---- Products ----

export interface ProductJson {
  sku: string;
  name: string;
  priceCents: number;
  stock: number;
}

const PRODUCT_SELECT = 'SELECT sku, name, price_cents AS "priceCents", stock FROM products';

export async function listProducts(sql: Sql): Promise<ProductJson[]> {
  return (await sql.query(`${PRODUCT_SELECT} ORDER BY sku`)) as ProductJson[];
}

export async function createProduct(sql: Sql, p: ProductJson): Promise<ProductJson> {
  const rows = await sql.query(
    `INSERT INTO products (sku, name, price_cents, stock) VALUES ($1, $2, $3, $4)
     RETURNING sku, name, price_cents AS "priceCents", stock`,
    [p.sku, p.name, p.priceCents, p.stock],
  );
  return rows[0] as ProductJson;
}

// ---- Orders: reads and single-statement writes over HTTP ----

export async function listOrders(sql: Sql, limit: number, before: number | null): Promise<OrderJson[]> {
  const rows = await sql.query(
    `SELECT ${ORDER_COLUMNS} FROM orders o WHERE ($1::int IS NULL OR o.id < $1) ORDER BY o.id DESC LIMIT $2`,
    [before, limit],
  );
  return (rows as OrderRow[]).map(orderJson);
}

export async function getOrder(sql: Sql, id: number): Promise<OrderJson | null> {
  const rows = await sql.query(
    `SELECT ${ORDER_COLUMNS},
            coalesce(json_agg(json_build_object('sku', l.sku, 'name', p.name, 'quantity', l.quantity,
                                                'priceCents', l.price_cents) ORDER BY l.sku)
                     FILTER (WHERE l.sku IS NOT NULL), '[]') AS lines
       FROM orders o
       LEFT JOIN order_lines l ON l.order_id = o.id
       LEFT JOIN products p ON p.sku = l.sku
      WHERE o.id = $1
      GROUP BY o.id`,
    [id],
  );
  return rows.length ? orderJson(rows[0] as OrderRow & { lines: OrderLineJson[] }) : null;
}

export async function searchOrders(sql: Sql, q: string, limit: number): Promise<OrderJson[]> {
  // websearch_to_tsquery understands what people type: words, "quoted phrases", -exclusions, or.
  const rows = await sql.query(
    `SELECT ${ORDER_COLUMNS}
       FROM orders o, websearch_to_tsquery('simple', $1) AS query
      WHERE to_tsvector('simple', o.customer || ' ' || o.note) @@ query
      ORDER BY ts_rank(to_tsvector('simple', o.customer || ' ' || o.note), query) DESC, o.id DESC
      LIMIT $2`,
    [q, limit],
  );
  return (rows as OrderRow[]).map(orderJson);
}

/** Updates customer and/or note; returns false when there is no such order. */
export async function patchOrder(sql: Sql, id: number, patch: { customer?: string; note?: string }): Promise<boolean> {
  const rows = await sql.query(
    `UPDATE orders SET customer = coalesce($2, customer), note = coalesce($3, note), updated_at = now()
      WHERE id = $1 RETURNING id`,
    [id, patch.customer ?? null, patch.note ?? null],
  );
  return rows.length === 1;
}

// ---- Orders: interactive transactions over WebSocket ----

/** Takes each line's quantity out of stock and records the line at today's price, then sets the total. */
async function reserveLines(tx: Client, orderId: number, lines: OrderLineInput[]): Promise<void> {
  // Lock products in one global order (by sku) so two orders with the same products cannot deadlock.
  for (const line of [...lines].sort((a, b) => a.sku.localeCompare(b.sku))) {
    const taken = await tx.query<{ price_cents: number }>(
      'UPDATE products SET stock = stock - $2 WHERE sku = $1 AND stock >= $2 RETURNING price_cents',
      [line.sku, line.quantity],
    );
    if (taken.rowCount === 0) {
      const product = await tx.query<{ stock: number }>('SELECT stock FROM products WHERE sku = $1', [line.sku]);
      if (product.rowCount === 0) throw new ApiError(422, 'unknown_product', `no product with sku ${line.sku}`);
      throw new ApiError(409, 'insufficient_stock', `only ${product.rows[0].stock} of ${line.sku} in stock`);
    }
    await tx.query('INSERT INTO order_lines (order_id, sku, quantity, price_cents) VALUES ($1, $2, $3, $4)', [
      orderId,
      line.sku,
      line.quantity,
      taken.rows[0].price_cents,
    ]);
  }
  await tx.query(
    `UPDATE orders SET updated_at = now(),
            total_cents = (SELECT coalesce(sum(quantity * price_cents), 0) FROM order_lines WHERE order_id = $1)
      WHERE id = $1`,
    [orderId],
  );
}

/** Inside a transaction: creates the order and reserves its lines. Returns the new order's id. */
export async function insertOrder(tx: Client, customer: string, note: string, lines: OrderLineInput[]): Promise<number> {
  const created = await tx.query<{ id: number }>('INSERT INTO orders (customer, note) VALUES ($1, $2) RETURNING id', [
    customer,
    note,
  ]);
  const id = created.rows[0].id;
  await reserveLines(tx, id, lines);
  return id;
}

/** Inside a transaction: puts the order's old lines back in stock and reserves the new ones. */
export async function replaceOrderLines(tx: Client, id: number, lines: OrderLineInput[]): Promise<void> {
  // FOR UPDATE: a concurrent change to the same order waits for this transaction to end.
  const order = await tx.query('SELECT id FROM orders WHERE id = $1 FOR UPDATE', [id]);
  if (order.rowCount === 0) throw new ApiError(404, 'not_found', 'order not found');
  await tx.query(
    `UPDATE products p SET stock = p.stock + l.quantity
       FROM order_lines l WHERE l.order_id = $1 AND l.sku = p.sku`,
    [id],
  );
  await tx.query('DELETE FROM order_lines WHERE order_id = $1', [id]);
  await reserveLines(tx, id, lines);
}
