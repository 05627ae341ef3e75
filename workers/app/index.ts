// Example application Worker: a small shop API on a lakebase, with Hono and the Neon serverless driver.
//
//   GET   /                      what this API serves
//   GET   /products              list products
//   POST  /products              create a product             {sku, name, priceCents, stock}
//   GET   /orders                list orders, newest first    ?limit=20&before=<id>
//   GET   /orders/search?q=      full-text search over customer and note
//   GET   /orders/:id            one order with its lines
//   POST  /orders                create an order (transaction) {customer, note?, lines: [{sku, quantity}]}
//   PATCH /orders/:id            change customer and/or note  {customer?, note?}
//   PUT   /orders/:id/lines      replace the lines (transaction) {lines: [{sku, quantity}]}
//
// Reads and single-statement writes use `neon()` (SQL over HTTP); the two routes that must check stock
// before writing use a WebSocket session with BEGIN ... COMMIT (ROLLBACK on any error). Configuration:
// DATABASE_URL (secret) and LAKEBASE_PROXY (var), see wrangler.toml and ../lakebase-config.ts.
import { Hono } from 'hono';
import { configureLakebase, type LakebaseEnv } from '../lakebase-config.ts';
import {
  createProduct,
  getOrder,
  httpSql,
  insertOrder,
  listOrders,
  listProducts,
  patchOrder,
  replaceOrderLines,
  searchOrders,
  withTransaction,
  type Sql,
} from './db.ts';
import { routeNotFound } from '../../lib/errors.ts';
import { handleError, notFound } from './errors.ts';
import { ensureSchema } from './schema.ts';
import {
  jsonBody,
  parseId,
  parseLimit,
  parseLinesBody,
  parseNewOrder,
  parseNewProduct,
  parseOrderPatch,
  parseSearch,
} from './validate.ts';

type App = { Bindings: LakebaseEnv; Variables: { sql: Sql } };

const app = new Hono<App>();

app.onError(handleError);
app.notFound(routeNotFound('internal'));

app.get('/', (c) =>
  c.json({
    name: 'lakebase example shop',
    routes: [
      'GET /products',
      'POST /products',
      'GET /orders',
      'GET /orders/search?q=',
      'GET /orders/:id',
      'POST /orders',
      'PATCH /orders/:id',
      'PUT /orders/:id/lines',
    ],
  }),
);

// Every other route talks to the database: point the driver at the lakebase, make sure the tables exist.
app.use('/*', async (c, next) => {
  configureLakebase(c.env);
  const sql = httpSql(c.env.DATABASE_URL);
  await ensureSchema(sql);
  c.set('sql', sql);
  await next();
});

app.get('/products', async (c) => c.json({ products: await listProducts(c.var.sql) }));

app.post('/products', async (c) => {
  const product = parseNewProduct(await jsonBody(c));
  return c.json(await createProduct(c.var.sql, product), 201);
});

app.get('/orders', async (c) => {
  const limit = parseLimit(c.req.query('limit'));
  const beforeParam = c.req.query('before');
  const before = beforeParam === undefined ? null : parseId(beforeParam);
  const orders = await listOrders(c.var.sql, limit, before);
  const nextBefore = orders.length === limit ? orders[orders.length - 1].id : null;
  return c.json({ orders, nextBefore });
});

// Registered before /orders/:id so that "search" is not taken for an id.
app.get('/orders/search', async (c) => {
  const q = parseSearch(c.req.query('q'));
  return c.json({ orders: await searchOrders(c.var.sql, q, parseLimit(c.req.query('limit'))) });
});

app.get('/orders/:id', async (c) => {
  const order = await getOrder(c.var.sql, parseId(c.req.param('id')));
  if (!order) throw notFound('order');
  return c.json(order);
});

app.post('/orders', async (c) => {
  const input = parseNewOrder(await jsonBody(c));
  const id = await withTransaction(c.env.DATABASE_URL, c.executionCtx, (tx) =>
    insertOrder(tx, input.customer, input.note, input.lines),
  );
  // Committed: any connection, HTTP included, now sees the order.
  return c.json(await getOrder(c.var.sql, id), 201, { Location: `/orders/${id}` });
});

app.patch('/orders/:id', async (c) => {
  const id = parseId(c.req.param('id'));
  const patch = parseOrderPatch(await jsonBody(c));
  if (!(await patchOrder(c.var.sql, id, patch))) throw notFound('order');
  return c.json(await getOrder(c.var.sql, id));
});

app.put('/orders/:id/lines', async (c) => {
  const id = parseId(c.req.param('id'));
  const lines = parseLinesBody(await jsonBody(c));
  await withTransaction(c.env.DATABASE_URL, c.executionCtx, (tx) => replaceOrderLines(tx, id, lines));
  return c.json(await getOrder(c.var.sql, id));
});

export default app;
