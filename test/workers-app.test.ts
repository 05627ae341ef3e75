// The example application Worker (workers/app) in workerd, against a running lakebase: every route, data
// written through one route read back through another, the transaction routes' ROLLBACK on error, and
// clear 4xx answers for bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type WorkersBackend } from './support/workers-backend.ts';
import { startWorkers, type WorkersHarness } from './support/workers-miniflare.ts';
import type { OrderJson, ProductJson } from '../workers/app/db.ts';

let backend: WorkersBackend;
let workers: WorkersHarness;

beforeAll(async () => {
  backend = await startBackend();
  workers = await startWorkers({ proxyOrigin: backend.proxyOrigin, databaseUrl: backend.connectionString });
}, 180_000);

afterAll(async () => {
  await workers?.dispose();
  await backend?.close();
});

interface Answer<T> {
  status: number;
  body: T;
  headers: Headers;
}

interface ErrorBody {
  error: { code: string; message: string; details?: string[] };
}
type Products = { products: ProductJson[] };
type Orders = { orders: OrderJson[]; nextBefore: number | null };

/** Calls the app Worker; `T` is the body the test expects (it is checked at run time by the assertions). */
async function call<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer<T>> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['Content-Type'] ??= 'application/json';
  }
  const res = await workers.app(path, init);
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T, headers: res.headers };
}

async function stockOf(sku: string): Promise<number> {
  const { body } = await call<Products>('GET', '/products');
  const product = body.products.find((p) => p.sku === sku);
  if (!product) throw new Error(`no product ${sku}`);
  return product.stock;
}

describe('example app Worker', () => {
  it('GET / lists the routes without touching the database', async () => {
    const res = await call<{ routes: string[] }>('GET', '/');
    expect(res.status).toBe(200);
    expect(res.body.routes).toContain('PUT /orders/:id/lines');
  });

  it('products: create, list, duplicate is 409, invalid input is 400 listing every problem', async () => {
    const created = await call<OrderJson>('POST', '/products', { sku: 'TEA-GREEN', name: 'Green tea', priceCents: 450, stock: 10 });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ sku: 'TEA-GREEN', name: 'Green tea', priceCents: 450, stock: 10 });
    await call('POST', '/products', { sku: 'TEA-BLACK', name: 'Black tea', priceCents: 300, stock: 5 });

    const list = await call<Products>('GET', '/products');
    expect(list.status).toBe(200);
    expect(list.body.products.map((p) => p.sku)).toEqual(expect.arrayContaining(['TEA-BLACK', 'TEA-GREEN']));

    const dup = await call<ErrorBody>('POST', '/products', { sku: 'TEA-GREEN', name: 'Again', priceCents: 1, stock: 1 });
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe('conflict');

    const bad = await call<ErrorBody>('POST', '/products', { sku: 'tea green', name: '', priceCents: -1, stock: 1.5, colour: 'green' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
    expect(bad.body.error.details).toEqual([
      'unknown field colour',
      'sku must be 1-32 upper-case letters, digits or dashes (e.g. "TEA-GREEN")',
      'name must be 1 to 200 characters',
      'priceCents must be a whole number from 0 to 100000000',
      'stock must be a whole number from 0 to 1000000',
    ]);

    const notJson = await call<ErrorBody>('POST', '/products', '{"sku":', { 'Content-Type': 'application/json' });
    expect(notJson.status).toBe(400);
    expect(notJson.body.error.message).toBe('the body is not valid JSON');
    const wrongType = await call<ErrorBody>('POST', '/products', 'sku=X', { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error.message).toMatch(/Content-Type: application\/json/);
  });

  it('orders: create (transaction) is read back by get, list and search; stock is taken', async () => {
    await call('POST', '/products', { sku: 'MUG', name: 'Mug', priceCents: 1200, stock: 3 });
    const created = await call<OrderJson>('POST', '/orders', {
      customer: 'Ada Lovelace',
      note: 'gift wrap please',
      lines: [
        { sku: 'MUG', quantity: 2 },
        { sku: 'TEA-GREEN', quantity: 1 },
      ],
    });
    expect(created.status).toBe(201);
    const id = created.body.id;
    expect(created.headers.get('Location')).toBe(`/orders/${id}`);
    expect(created.body).toMatchObject({
      customer: 'Ada Lovelace',
      note: 'gift wrap please',
      totalCents: 2 * 1200 + 450,
      lines: [
        { sku: 'MUG', name: 'Mug', quantity: 2, priceCents: 1200 },
        { sku: 'TEA-GREEN', name: 'Green tea', quantity: 1, priceCents: 450 },
      ],
    });
    expect(new Date(created.body.createdAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(await stockOf('MUG')).toBe(1);
    expect(await stockOf('TEA-GREEN')).toBe(9);

    const got = await call<OrderJson>('GET', `/orders/${id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created.body);

    const list = await call<Orders>('GET', '/orders');
    expect(list.status).toBe(200);
    expect(list.body.orders[0]).toMatchObject({ id, customer: 'Ada Lovelace', totalCents: 2850 });
    expect(list.body.orders[0].lines).toBeUndefined();

    const found = await call<Orders>('GET', '/orders/search?q=lovelace');
    expect(found.body.orders.map((o) => o.id)).toEqual([id]);
    const byNote = await call<Orders>('GET', `/orders/search?q=${encodeURIComponent('"gift wrap"')}`);
    expect(byNote.body.orders.map((o) => o.id)).toEqual([id]);
    expect((await call<Orders>('GET', '/orders/search?q=nobody')).body.orders).toEqual([]);
  });

  it('orders: PATCH updates customer and note, seen by get and search', async () => {
    const created = await call<OrderJson>('POST', '/orders', { customer: 'Grace Hopper', lines: [{ sku: 'TEA-BLACK', quantity: 1 }] });
    expect(created.status).toBe(201);
    const id = created.body.id;
    const patched = await call<OrderJson>('PATCH', `/orders/${id}`, { note: 'leave at the door' });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ id, customer: 'Grace Hopper', note: 'leave at the door' });
    expect(new Date(patched.body.updatedAt) >= new Date(created.body.updatedAt)).toBe(true);
    expect((await call<OrderJson>('GET', `/orders/${id}`)).body.note).toBe('leave at the door');
    expect((await call<Orders>('GET', '/orders/search?q=door')).body.orders.map((o) => o.id)).toEqual([id]);

    expect((await call('PATCH', `/orders/${id}`, {})).status).toBe(400);
    expect((await call('PATCH', '/orders/999999', { note: 'x' })).status).toBe(404);
  });

  it('orders: list pages with limit and before', async () => {
    for (const customer of ['Page One', 'Page Two', 'Page Three']) {
      expect((await call('POST', '/orders', { customer, lines: [{ sku: 'TEA-BLACK', quantity: 1 }] })).status).toBe(201);
    }
    const first = await call<Orders>('GET', '/orders?limit=2');
    expect(first.body.orders.map((o) => o.customer)).toEqual(['Page Three', 'Page Two']);
    const second = await call<Orders>('GET', `/orders?limit=2&before=${first.body.nextBefore}`);
    expect(second.body.orders[0].customer).toBe('Page One');
    expect((await call('GET', '/orders?limit=0')).status).toBe(400);
    expect((await call('GET', '/orders?limit=abc')).status).toBe(400);
  });

  it('PUT /orders/:id/lines replaces the lines in a transaction and moves stock both ways', async () => {
    await call('POST', '/products', { sku: 'SPOON', name: 'Spoon', priceCents: 200, stock: 10 });
    await call('POST', '/products', { sku: 'BOWL', name: 'Bowl', priceCents: 900, stock: 4 });
    const { body: order } = await call<OrderJson>('POST', '/orders', { customer: 'Edsger', lines: [{ sku: 'SPOON', quantity: 3 }] });
    expect(await stockOf('SPOON')).toBe(7);

    const replaced = await call<OrderJson>('PUT', `/orders/${order.id}/lines`, {
      lines: [
        { sku: 'BOWL', quantity: 2 },
        { sku: 'SPOON', quantity: 1 },
      ],
    });
    expect(replaced.status).toBe(200);
    expect(replaced.body.totalCents).toBe(2 * 900 + 200);
    expect(replaced.body.lines?.map((l) => [l.sku, l.quantity])).toEqual([
      ['BOWL', 2],
      ['SPOON', 1],
    ]);
    expect(await stockOf('SPOON')).toBe(9);
    expect(await stockOf('BOWL')).toBe(2);
  });

  it('the transaction routes ROLLBACK on error: nothing they wrote before the failure remains', async () => {
    await call('POST', '/products', { sku: 'PLATE', name: 'Plate', priceCents: 700, stock: 2 });
    await call('POST', '/products', { sku: 'FORK', name: 'Fork', priceCents: 150, stock: 50 });
    const { body: order } = await call<OrderJson>('POST', '/orders', { customer: 'Barbara', lines: [{ sku: 'FORK', quantity: 5 }] });
    expect(await stockOf('FORK')).toBe(45);

    // FORK sorts before PLATE: its stock is returned and taken again, then PLATE fails for lack of stock.
    const tooMany = await call<ErrorBody>('PUT', `/orders/${order.id}/lines`, {
      lines: [
        { sku: 'FORK', quantity: 20 },
        { sku: 'PLATE', quantity: 3 },
      ],
    });
    expect(tooMany.status).toBe(409);
    expect(tooMany.body.error).toEqual({ code: 'insufficient_stock', message: 'only 2 of PLATE in stock' });
    const unknown = await call<ErrorBody>('PUT', `/orders/${order.id}/lines`, {
      lines: [
        { sku: 'FORK', quantity: 1 },
        { sku: 'NO-SUCH-THING', quantity: 1 },
      ],
    });
    expect(unknown.status).toBe(422);
    expect(unknown.body.error.code).toBe('unknown_product');

    const after = await call<OrderJson>('GET', `/orders/${order.id}`);
    expect(after.body).toEqual(order);
    expect(await stockOf('FORK')).toBe(45);
    expect(await stockOf('PLATE')).toBe(2);

    // The same for create: the order row inserted first is rolled back too.
    const before = (await call<Orders>('GET', '/orders/search?q=Rollback')).body.orders.length;
    const failed = await call<ErrorBody>('POST', '/orders', {
      customer: 'Rollback Customer',
      lines: [
        { sku: 'FORK', quantity: 1 },
        { sku: 'PLATE', quantity: 99 },
      ],
    });
    expect(failed.status).toBe(409);
    expect((await call<Orders>('GET', '/orders/search?q=Rollback')).body.orders.length).toBe(before);
    expect(await stockOf('FORK')).toBe(45);
  });

  it('bad ids and paths are 404; bad order input is 400 with details', async () => {
    expect((await call('GET', '/orders/abc')).status).toBe(404);
    expect((await call('GET', '/orders/0')).status).toBe(404);
    expect((await call('GET', '/orders/2147483648')).status).toBe(404);
    expect((await call('GET', '/orders/999999')).body).toEqual({ error: { code: 'not_found', message: 'order not found' } });
    expect((await call('PUT', '/orders/999999/lines', { lines: [{ sku: 'FORK', quantity: 1 }] })).status).toBe(404);
    expect((await call('GET', '/nowhere')).status).toBe(404);
    expect((await call('GET', '/orders/search')).status).toBe(400);

    const bad = await call<ErrorBody>('POST', '/orders', { customer: 'X', lines: [{ sku: 'FORK', quantity: 0 }, { sku: 'FORK', quantity: 1 }] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details).toEqual(['lines[0].quantity must be a whole number from 1 to 10000', 'lines[1].sku FORK appears twice']);
    expect((await call<ErrorBody>('POST', '/orders', { customer: 'X', lines: [] })).body.error.details).toEqual([
      'lines must be an array of 1 to 50 items',
    ]);
  });

  it('an unreachable database is a 503 with Retry-After, without internals in the body', async () => {
    const res = await workers.appWithoutDatabase('/products');
    expect(res.status).toBe(503);
    expect(res.headers.get('Retry-After')).toBe('1');
    expect(await res.json()).toEqual({ error: { code: 'database_unavailable', message: 'the database is unavailable; retry shortly' } });
    // Routes that need no database still answer.
    expect((await workers.appWithoutDatabase('/')).status).toBe(200);
  });

  it('a route run after the endpoint was suspended wakes it and succeeds (HTTP, then a WebSocket transaction)', async () => {
    const suspend = backend.suspend;
    if (!suspend) throw new Error(`the ${backend.name} backend cannot suspend an endpoint: run this file on the lakebase backend`);
    await call('POST', '/products', { sku: 'WAKE-1', name: 'Alarm clock', priceCents: 2500, stock: 4 });

    await suspend();
    const listed = await call<Products>('GET', '/products');
    expect(listed.status).toBe(200);
    expect(listed.body.products.find((p) => p.sku === 'WAKE-1')).toEqual({ sku: 'WAKE-1', name: 'Alarm clock', priceCents: 2500, stock: 4 });

    await suspend();
    const order = await call<OrderJson>('POST', '/orders', { customer: 'Early Riser', lines: [{ sku: 'WAKE-1', quantity: 1 }] });
    expect(order.status).toBe(201);
    expect(order.body.totalCents).toBe(2500);
    expect(await stockOf('WAKE-1')).toBe(3);
  });
});

