// Unit tests of the connector's retries (proxy/compute/connector.ts): wake single-flight per endpoint, bounded
// retries with backoff, the cached address and the re-wake when it is stale. The directory is an in-memory
// EndpointDirectory written here (a scripted stand-in for the control plane); the computes are real TCP
// listeners on 127.0.0.1 that speak just enough of the Postgres startup to accept, refuse or fail a login.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.ts';
import type { BackendConnection } from '../proxy/compute/connection.ts';
import { ComputeConnector, type ConnectorOptions } from '../proxy/compute/connector.ts';
import { EndpointRateLimiter } from '../proxy/compute/rate-limit.ts';
import { type ComputeAddress, DirectoryError, type EndpointDirectory, type RoleSecret } from '../proxy/directory/directory.ts';
import { PgServerError, ProxyError } from '../proxy/errors.ts';

const STARTUP = { user: 'alex', database: 'neondb' };

// ---- a compute: accepts TCP and answers the startup message ----

const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const backendMessage = (type: string, body: Buffer): Buffer => Buffer.concat([Buffer.from(type), int32(body.length + 4), body]);
const LOGIN_OK = Buffer.concat([
  backendMessage('R', int32(0)),
  backendMessage('K', Buffer.concat([int32(42), int32(7)])),
  backendMessage('Z', Buffer.from('I')),
]);
const loginError = (sqlstate: string, message: string): Buffer =>
  backendMessage('E', Buffer.concat([Buffer.from(`SFATAL\0C${sqlstate}\0M${message}\0`), Buffer.from([0])]));

/** How a compute answers one login: accept, close the connection without a word, or a Postgres error. */
type Answer = 'ok' | 'hang up' | { sqlstate: string; message: string };

class FakeCompute {
  /** TCP connections accepted (= the connector's connect attempts that reached it). */
  connections = 0;
  /** Answers for the next logins, in order; then `ok`. */
  readonly script: Answer[] = [];
  readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor() {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  async listen(): Promise<ComputeAddress> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return { host: '127.0.0.1', port: (this.server.address() as net.AddressInfo).port, password: 'internal', engine: 'pglite' };
  }

  /** Stops listening and drops every connection: its address now refuses connections. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    this.connections++;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    const answer = this.script.shift() ?? 'ok';
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 4 || buffered.length < buffered.readInt32BE(0)) return;
      buffered = Buffer.alloc(0);
      // after the startup message, so the client is not writing when the connection goes (no reset)
      if (answer === 'ok') socket.write(LOGIN_OK);
      else if (answer === 'hang up') socket.end();
      else socket.end(loginError(answer.sqlstate, answer.message));
    });
  }
}

/** An address nothing listens on (a listener bound, then closed). */
async function refusingAddress(): Promise<ComputeAddress> {
  const c = new FakeCompute();
  const address = await c.listen();
  await c.close();
  return address;
}

// ---- the directory: scripted wakes ----

class ScriptedDirectory implements EndpointDirectory {
  readonly wakes = new Map<string, number>();
  /** Where each endpoint's compute is now. */
  readonly addresses = new Map<string, ComputeAddress>();
  /** Thrown by the next wakes of an endpoint, in order. */
  readonly failures = new Map<string, Error[]>();
  wakeDelayMs = 0;

  async lookupRole(): Promise<RoleSecret | null> {
    return null;
  }

  async wake(endpointId: string): Promise<ComputeAddress> {
    this.wakes.set(endpointId, this.wakeCount(endpointId) + 1);
    if (this.wakeDelayMs) await new Promise((r) => setTimeout(r, this.wakeDelayMs));
    const failure = this.failures.get(endpointId)?.shift();
    if (failure) throw failure;
    const address = this.addresses.get(endpointId);
    if (!address) throw new DirectoryError('endpoint not found', { status: 404 });
    return address;
  }

  wakeCount(endpointId: string): number {
    return this.wakes.get(endpointId) ?? 0;
  }

  fail(endpointId: string, ...errors: Error[]): void {
    this.failures.set(endpointId, [...(this.failures.get(endpointId) ?? []), ...errors]);
  }
}

// ---- set-up ----

const computes: FakeCompute[] = [];
const open: BackendConnection[] = [];

afterEach(async () => {
  for (const c of open.splice(0)) c.destroy();
  await Promise.all(computes.splice(0).map((c) => c.close().catch(() => {})));
});

async function compute(): Promise<{ compute: FakeCompute; address: ComputeAddress }> {
  const c = new FakeCompute();
  computes.push(c);
  return { compute: c, address: await c.listen() };
}

function connector(directory: EndpointDirectory, opts: Partial<ConnectorOptions> = {}): { connector: ComputeConnector; wakeOutcomes: boolean[] } {
  const wakeOutcomes: boolean[] = [];
  const c = new ComputeConnector(directory, {
    wakeRetry: { retries: 3, baseDelayMs: 5, factor: 2 },
    connectRetry: { retries: 3, baseDelayMs: 5, factor: 2 },
    connectTimeoutMs: 2000,
    addressIdleTtlMs: 60_000,
    onWake: (_id, _s, ok) => wakeOutcomes.push(ok),
    logger: createLogger('connector-test', 'silent'),
    ...opts,
  });
  return { connector: c, wakeOutcomes };
}

async function connect(c: ComputeConnector, endpointId: string): Promise<BackendConnection> {
  const conn = await c.connect(endpointId, STARTUP);
  open.push(conn);
  return conn;
}

const busy = (): DirectoryError => new DirectoryError('busy', { status: 409, retriable: true });

// ---- tests ----

describe('wake', () => {
  it('ten concurrent connects to a cold endpoint share one wake', async () => {
    const dir = new ScriptedDirectory();
    const { compute: pg, address } = await compute();
    dir.addresses.set('ep-cold', address);
    dir.wakeDelayMs = 50;
    const { connector: c, wakeOutcomes } = connector(dir);
    const conns = await Promise.all(Array.from({ length: 10 }, () => connect(c, 'ep-cold')));
    expect(dir.wakeCount('ep-cold')).toBe(1);
    expect(wakeOutcomes).toEqual([true]);
    expect(pg.connections).toBe(10);
    expect(conns.map((x) => x.pid)).toEqual(Array(10).fill(42));
  });

  it('endpoints wake separately', async () => {
    const dir = new ScriptedDirectory();
    const { address } = await compute();
    dir.addresses.set('ep-a', address);
    dir.addresses.set('ep-b', address);
    const { connector: c } = connector(dir);
    await Promise.all([connect(c, 'ep-a'), connect(c, 'ep-a'), connect(c, 'ep-b')]);
    expect([dir.wakeCount('ep-a'), dir.wakeCount('ep-b')]).toEqual([1, 1]);
  });

  it('a cached address is used without a wake until it has been idle for the TTL', async () => {
    const dir = new ScriptedDirectory();
    const { compute: pg, address } = await compute();
    dir.addresses.set('ep-warm', address);
    const { connector: c } = connector(dir, { addressIdleTtlMs: 150 });
    await connect(c, 'ep-warm');
    await connect(c, 'ep-warm');
    await connect(c, 'ep-warm');
    expect(dir.wakeCount('ep-warm')).toBe(1);
    expect(pg.connections).toBe(3);
    await new Promise((r) => setTimeout(r, 200));
    await connect(c, 'ep-warm');
    expect(dir.wakeCount('ep-warm')).toBe(2);
  });

  it('retriable directory failures are retried with backoff, up to the bound', async () => {
    const dir = new ScriptedDirectory();
    const { address } = await compute();
    dir.addresses.set('ep-busy', address);
    dir.fail('ep-busy', busy(), busy(), busy());
    const { connector: c, wakeOutcomes } = connector(dir, { wakeRetry: { retries: 3, baseDelayMs: 20, factor: 2 } });
    const started = performance.now();
    await connect(c, 'ep-busy');
    // three failures, then the fourth call (the last one the bound allows) succeeds after 20 + 40 + 80 ms of backoff
    expect(performance.now() - started).toBeGreaterThanOrEqual(130);
    expect(dir.wakeCount('ep-busy')).toBe(4);
    expect(wakeOutcomes).toEqual([true]);
  });

  it('past the bound, the last retriable failure is the error, with Neon\'s text', async () => {
    const dir = new ScriptedDirectory();
    const { compute: pg, address } = await compute();
    dir.addresses.set('ep-locked', address);
    dir.fail('ep-locked', ...Array.from({ length: 4 }, () => new DirectoryError('locked', { status: 423, retriable: true })));
    const { connector: c, wakeOutcomes } = connector(dir);
    const err = await c.connect('ep-locked', STARTUP).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxyError);
    expect(err).toMatchObject({
      message: 'Control plane request failed: endpoint is temporarily unavailable. Check your quotas and/or contact our support.',
      httpStatus: 500,
      code: 'control_plane',
    });
    expect(dir.wakeCount('ep-locked')).toBe(4); // the first call and three retries
    expect(wakeOutcomes).toEqual([false]);
    expect(pg.connections).toBe(0);
  });

  it('a non-retriable failure is not retried', async () => {
    const dir = new ScriptedDirectory();
    const { address } = await compute();
    dir.addresses.set('ep-off', address);
    dir.fail('ep-off', new DirectoryError('disabled', { status: 406 }));
    const { connector: c } = connector(dir);
    await expect(c.connect('ep-off', STARTUP)).rejects.toMatchObject({ message: 'Control plane request failed: endpoint is disabled', httpStatus: 400 });
    expect(dir.wakeCount('ep-off')).toBe(1);
    await expect(c.connect('ep-unknown', STARTUP)).rejects.toMatchObject({ message: 'Control plane request failed: endpoint cannot be found', httpStatus: 400 });
    expect(dir.wakeCount('ep-unknown')).toBe(1);
  });

  it('a failure that is no DirectoryError (a transport failure) is retried', async () => {
    const dir = new ScriptedDirectory();
    const { address } = await compute();
    dir.addresses.set('ep-restarting', address);
    dir.fail('ep-restarting', new Error('socket hang up'), new TypeError('fetch failed'));
    const { connector: c } = connector(dir);
    await connect(c, 'ep-restarting');
    expect(dir.wakeCount('ep-restarting')).toBe(3);
  });

  it('concurrent connects share one failing wake: one call, every caller gets the error', async () => {
    const dir = new ScriptedDirectory();
    dir.wakeDelayMs = 30;
    dir.fail('ep-gone', new DirectoryError('disabled', { status: 406 }));
    const { connector: c } = connector(dir);
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => c.connect('ep-gone', STARTUP)));
    expect(outcomes.every((o) => o.status === 'rejected')).toBe(true);
    expect(dir.wakeCount('ep-gone')).toBe(1);
  });
});

describe('connect', () => {
  it('a compute that hangs up is retried up to the bound, each attempt after a fresh wake, then "Couldn\'t connect"', async () => {
    const dir = new ScriptedDirectory();
    const { compute: pg, address } = await compute();
    pg.script.push('hang up', 'hang up', 'hang up', 'hang up');
    dir.addresses.set('ep-flaky', address);
    const { connector: c } = connector(dir, { connectRetry: { retries: 3, baseDelayMs: 20, factor: 2 } });
    const started = performance.now();
    await expect(c.connect('ep-flaky', STARTUP)).rejects.toMatchObject({ message: "Couldn't connect to compute node", httpStatus: 500, code: 'compute_unreachable' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(130); // 20 + 40 + 80 ms of backoff
    expect(pg.connections).toBe(4);
    expect(dir.wakeCount('ep-flaky')).toBe(4);
  });

  it('a compute that comes up within the bound is reached', async () => {
    const dir = new ScriptedDirectory();
    const { compute: pg, address } = await compute();
    pg.script.push('hang up', 'hang up');
    dir.addresses.set('ep-booting', address);
    const { connector: c } = connector(dir);
    await connect(c, 'ep-booting');
    expect(pg.connections).toBe(3);
  });

  it('a refused address is retried up to the bound', async () => {
    const dir = new ScriptedDirectory();
    dir.addresses.set('ep-down', await refusingAddress());
    const { connector: c } = connector(dir, { connectRetry: { retries: 2, baseDelayMs: 5, factor: 2 } });
    await expect(c.connect('ep-down', STARTUP)).rejects.toMatchObject({ message: "Couldn't connect to compute node" });
    expect(dir.wakeCount('ep-down')).toBe(3);
  });

  it('"the database system is starting up" is retried; other login errors are not', async () => {
    const dir = new ScriptedDirectory();
    const { compute: pg, address } = await compute();
    pg.script.push({ sqlstate: '57P03', message: 'the database system is starting up' }, { sqlstate: '53300', message: 'too many connections' });
    dir.addresses.set('ep-starting', address);
    const { connector: c } = connector(dir);
    await connect(c, 'ep-starting');
    expect(pg.connections).toBe(3);

    pg.script.push({ sqlstate: '28P01', message: 'password authentication failed for user "alex"' });
    const before = dir.wakeCount('ep-starting');
    const err = await c.connect('ep-starting', STARTUP).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PgServerError);
    expect((err as PgServerError).code).toBe('28P01');
    expect(pg.connections).toBe(4);
    expect(dir.wakeCount('ep-starting')).toBe(before);
  });

  it('retriable login errors past the bound are passed on as Postgres said them', async () => {
    const dir = new ScriptedDirectory();
    const { compute: pg, address } = await compute();
    pg.script.push(...Array.from({ length: 3 }, () => ({ sqlstate: '57P03', message: 'the database system is starting up' })));
    dir.addresses.set('ep-slow', address);
    const { connector: c } = connector(dir, { connectRetry: { retries: 2, baseDelayMs: 5, factor: 2 } });
    await expect(c.connect('ep-slow', STARTUP)).rejects.toMatchObject({ code: '57P03', message: 'the database system is starting up' });
    expect(pg.connections).toBe(3);
  });

  it('a stale cached address triggers exactly one re-wake, without backoff', async () => {
    const dir = new ScriptedDirectory();
    const old = await compute();
    dir.addresses.set('ep-moved', old.address);
    const { connector: c } = connector(dir, { connectRetry: { retries: 3, baseDelayMs: 1000, factor: 2 } });
    await connect(c, 'ep-moved');
    expect(dir.wakeCount('ep-moved')).toBe(1);

    // the compute was suspended and came back elsewhere; the connector still has the old address
    await old.compute.close();
    const moved = await compute();
    dir.addresses.set('ep-moved', moved.address);
    const started = performance.now();
    await connect(c, 'ep-moved');
    expect(performance.now() - started).toBeLessThan(1000); // no backoff before the re-wake
    expect(dir.wakeCount('ep-moved')).toBe(2);
    expect(moved.compute.connections).toBe(1);

    // the new address is cached in turn
    await connect(c, 'ep-moved');
    expect(dir.wakeCount('ep-moved')).toBe(2);
    expect(moved.compute.connections).toBe(2);
  });

  it('a stale cached address whose re-wake finds no compute falls back to bounded retries', async () => {
    const dir = new ScriptedDirectory();
    const { compute: pg, address } = await compute();
    dir.addresses.set('ep-dead', address);
    const { connector: c } = connector(dir, { connectRetry: { retries: 2, baseDelayMs: 5, factor: 2 } });
    await connect(c, 'ep-dead');
    await pg.close();
    await expect(c.connect('ep-dead', STARTUP)).rejects.toMatchObject({ message: "Couldn't connect to compute node" });
    // 1 first wake, then: the cached attempt (no wake), one re-wake per attempt of the bound (3)
    expect(dir.wakeCount('ep-dead')).toBe(4);
  });

  it('new connections per endpoint are rate limited before any wake', async () => {
    const dir = new ScriptedDirectory();
    const { compute: pg, address } = await compute();
    dir.addresses.set('ep-hot', address);
    const { connector: c } = connector(dir, { rateLimiter: new EndpointRateLimiter([{ rps: 2, windowMs: 1000 }]) });
    await connect(c, 'ep-hot');
    await connect(c, 'ep-hot');
    await expect(c.connect('ep-hot', STARTUP)).rejects.toMatchObject({
      message: 'Too many connections to this endpoint. Please try again later.',
      code: 'rate_limited',
      kind: 'rate_limit',
    });
    expect(pg.connections).toBe(2);
    expect(dir.wakeCount('ep-hot')).toBe(1);
  });
});
