// Issue 9, items 5, 6 and 8, from outside as an attacker would try them: the SCRAM salt of an unknown role or
// endpoint is the same on every attempt (no enumeration); failed passwords are limited per address and role
// over HTTP, WebSocket and TCP while the right password from another address still works (127.0.0.2 is another
// loopback address); and nothing a client sends before authenticating reaches the proxy's log.
import http from 'node:http';
import net from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  MessageReader,
  parseErrorFields,
  passwordMessage,
  saslInitialResponse,
  saslResponse,
  startupMessage,
  type PgMessage,
} from './support/proxy-wire.ts';
import { ScramClient } from '../proxy/auth/scram.ts';
import { BASE_DOMAIN, DATABASE, ENDPOINT, PASSWORD, USER, startProxyStack, type ProxyStack } from './support/proxy-stack.ts';

const MARKER = 'S3CRET-MARKER-7f3a';
const LOCK_AFTER = 3;

let stack: ProxyStack;
let logged = '';

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logged += chunk.toString();
      done();
    },
  });
  stack = await startProxyStack({
    proxy: {
      logger: pino({ level: 'trace' }, sink),
      // A long first lockout: the test must not race it.
      authLimits: { clientFailures: LOCK_AFTER, addressFailures: 1000, baseLockMs: 10 * 60_000 },
      tcpAllowCleartext: true,
    },
  });
});

afterAll(async () => {
  await stack?.close();
});

/** Collects backend messages from a raw socket or WebSocket. */
class Inbox {
  readonly messages: PgMessage[] = [];
  private readonly reader = new MessageReader();
  private waiters: (() => void)[] = [];
  closed = false;

  push(d: Buffer): void {
    this.reader.push(d);
    for (let m = this.reader.next(); m; m = this.reader.next()) this.messages.push(m);
    this.notify();
  }

  close(): void {
    this.closed = true;
    this.notify();
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The next message of one of `types` (or null once the connection closed without one). */
  async next(types: string, from: number): Promise<{ m: PgMessage; index: number } | null> {
    for (;;) {
      const index = this.messages.findIndex((m, i) => i >= from && types.includes(m.type));
      if (index >= 0) return { m: this.messages[index], index };
      if (this.closed) return null;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
}

interface Conn {
  inbox: Inbox;
  send(b: Buffer): void;
  close(): void;
}

function tcpConn(localAddress = '127.0.0.1'): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const inbox = new Inbox();
    const s = net.connect({ host: '127.0.0.1', port: stack.proxy.tcpPort!, localAddress });
    s.on('data', (d) => inbox.push(d));
    s.on('close', () => inbox.close());
    s.on('error', () => inbox.close());
    s.once('connect', () => resolve({ inbox, send: (b) => s.write(b), close: () => s.destroy() }));
    s.once('error', reject);
  });
}

function wsConn(localAddress = '127.0.0.1', path = '/v2'): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const inbox = new Inbox();
    const ws = new WebSocket(`ws://127.0.0.1:${stack.proxy.httpPort}${path}`, { headers: { host: `${ENDPOINT}.${BASE_DOMAIN}` }, localAddress });
    ws.on('message', (d: Buffer) => inbox.push(d));
    ws.on('close', () => inbox.close());
    ws.on('error', () => inbox.close());
    ws.once('open', () => resolve({ inbox, send: (b) => ws.send(b, { binary: true }), close: () => ws.terminate() }));
    ws.once('unexpected-response', () => reject(new Error('no upgrade')));
  });
}

type Outcome = { ok: true } | { ok: false; code: string; message: string };

function outcomeOf(m: PgMessage | undefined): Outcome {
  if (m?.type === 'R' && m.body.readInt32BE(0) === 0) return { ok: true };
  if (m?.type === 'E') {
    const f = parseErrorFields(m.body);
    return { ok: false, code: f.C, message: f.M };
  }
  return { ok: false, code: 'closed', message: 'closed' };
}

/** SCRAM-SHA-256 login over TCP (endpoint in options). */
async function tcpLogin(user: string, password: string, opts: { localAddress?: string; endpoint?: string } = {}): Promise<Outcome> {
  const c = await tcpConn(opts.localAddress);
  try {
    c.send(startupMessage({ user, database: DATABASE, options: `endpoint=${opts.endpoint ?? ENDPOINT}` }));
    const sasl = await c.inbox.next('RE', 0);
    if (!sasl || sasl.m.type === 'E') return outcomeOf(sasl?.m);
    const client = new ScramClient(password);
    c.send(saslInitialResponse('SCRAM-SHA-256', Buffer.from(client.first())));
    const cont = await c.inbox.next('RE', sasl.index + 1);
    if (!cont || cont.m.type === 'E') return outcomeOf(cont?.m);
    c.send(saslResponse(Buffer.from(await client.final(cont.m.body.subarray(4).toString()))));
    for (let from = cont.index + 1; ; ) {
      const r = await c.inbox.next('RE', from);
      if (!r || r.m.type === 'E' || r.m.body.readInt32BE(0) === 0) return outcomeOf(r?.m);
      from = r.index + 1;
    }
  } finally {
    c.close();
  }
}

/** The salt and iteration count the proxy offers `user` at `endpoint`. */
async function scramSalt(user: string, endpoint: string): Promise<string> {
  const c = await tcpConn();
  try {
    c.send(startupMessage({ user, database: DATABASE, options: `endpoint=${endpoint}` }));
    const sasl = await c.inbox.next('R', 0);
    c.send(saslInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=*,r=abcdefghijklmnop')));
    const cont = await c.inbox.next('R', (sasl?.index ?? 0) + 1);
    const attrs = new Map(cont!.m.body.subarray(4).toString().split(',').map((a) => [a[0], a.slice(2)] as const));
    return `s=${attrs.get('s')},i=${attrs.get('i')}`;
  } finally {
    c.close();
  }
}

/** Cleartext login over WebSocket, as the serverless driver does it. */
async function wsLogin(user: string, password: string, localAddress?: string): Promise<Outcome> {
  const c = await wsConn(localAddress);
  try {
    c.send(Buffer.concat([startupMessage({ user, database: DATABASE }), passwordMessage(password)]));
    for (let from = 0; ; ) {
      const r = await c.inbox.next('RE', from);
      if (!r || r.m.type === 'E' || r.m.body.readInt32BE(0) === 0) return outcomeOf(r?.m);
      from = r.index + 1;
    }
  } finally {
    c.close();
  }
}

function httpQuery(headers: Record<string, string>, body: string, localAddress = '127.0.0.1'): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: stack.proxy.httpPort, path: '/sql', method: 'POST', localAddress, headers, agent: false },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const httpLogin = (user: string, password: string, localAddress?: string) =>
  httpQuery({ 'Neon-Connection-String': stack.connString({ user, password }) }, JSON.stringify({ query: 'SELECT 1 AS n' }), localAddress);

describe('item 5: mock SCRAM salts', () => {
  it('an unknown role and an unknown endpoint get the same salt on every attempt, with the real iteration count', async () => {
    const known = await scramSalt(USER, ENDPOINT);
    expect(known).toMatch(/^s=[A-Za-z0-9+/=]{24},i=4096$/);
    const unknownRole = await scramSalt('nobody', ENDPOINT);
    expect(unknownRole).toMatch(/^s=[A-Za-z0-9+/=]{24},i=4096$/);
    expect(await scramSalt('nobody', ENDPOINT)).toBe(unknownRole);
    const unknownEndpoint = await scramSalt(USER, 'ep-no-such-endpoint-000000');
    expect(await scramSalt(USER, 'ep-no-such-endpoint-000000')).toBe(unknownEndpoint);
    expect(new Set([known, unknownRole, unknownEndpoint]).size).toBe(3);
    // and the exchange fails exactly as a wrong password does
    expect(await tcpLogin('nobody', PASSWORD)).toEqual({ ok: false, code: 'XX000', message: "password authentication failed for user 'nobody'" });
  });
});

describe('item 6: failed-authentication limits', () => {
  it('over HTTP: locked out after the failures, 429 with a Postgres-style body; another address logs in', async () => {
    await stack.admin(`CREATE ROLE http_victim LOGIN PASSWORD 'internal-compute-secret'`);
    await stack.directory.setRole(ENDPOINT, 'http_victim', 'right-password');
    for (let i = 0; i < LOCK_AFTER; i++) {
      const r = await httpLogin('http_victim', `guess-${i}`);
      expect(r.status).toBe(400);
      expect(r.body.message).toBe("password authentication failed for user 'http_victim'");
    }
    const locked = await httpLogin('http_victim', 'right-password');
    expect(locked.status).toBe(429);
    expect(locked.body.message).toMatch(/^Too many authentication attempts\. Please try again in \d+ seconds\.$/);
    expect(locked.body.code).toBe('28000');
    expect(locked.body.severity).toBe('FATAL');
    const other = await httpLogin('http_victim', 'right-password', '127.0.0.2');
    expect(other.status).toBe(200);
    expect(other.body.rows).toEqual([{ n: 1 }]);
    // other roles from the locked-out address are not affected
    expect((await httpLogin(USER, PASSWORD)).status).toBe(200);
  });

  it('over TCP (SCRAM) and WebSocket (cleartext) alike', async () => {
    await stack.admin(`CREATE ROLE wire_victim LOGIN PASSWORD 'internal-compute-secret'`);
    await stack.directory.setRole(ENDPOINT, 'wire_victim', 'right-password');
    for (let i = 0; i < LOCK_AFTER; i++) expect((await tcpLogin('wire_victim', `guess-${i}`)).ok).toBe(false);
    const tcpLocked = await tcpLogin('wire_victim', 'right-password');
    expect(tcpLocked).toMatchObject({ ok: false, code: '28000' });
    expect(tcpLocked.ok ? '' : tcpLocked.message).toMatch(/^Too many authentication attempts/);
    // the same address over WebSocket is locked out of the role too
    expect(await wsLogin('wire_victim', 'right-password')).toMatchObject({ ok: false, code: '28000' });
    expect(await tcpLogin('wire_victim', 'right-password', { localAddress: '127.0.0.2' })).toEqual({ ok: true });
    expect(await wsLogin('wire_victim', 'right-password', '127.0.0.2')).toEqual({ ok: true });

    await stack.admin(`CREATE ROLE ws_victim LOGIN PASSWORD 'internal-compute-secret'`);
    await stack.directory.setRole(ENDPOINT, 'ws_victim', 'right-password');
    for (let i = 0; i < LOCK_AFTER; i++) expect((await wsLogin('ws_victim', `guess-${i}`, '127.0.0.3')).ok).toBe(false);
    expect(await wsLogin('ws_victim', 'right-password', '127.0.0.3')).toMatchObject({ ok: false, code: '28000' });
    expect(await wsLogin('ws_victim', 'right-password', '127.0.0.4')).toEqual({ ok: true });
  });

  it('a burst of right passwords from one address all log in; a burst of guesses is bounded, then locked out', async () => {
    await stack.admin(`CREATE ROLE burst_victim LOGIN PASSWORD 'internal-compute-secret'`);
    await stack.directory.setRole(ENDPOINT, 'burst_victim', 'right-password');
    // a pool warming up: many more logins at once than the failure threshold, none refused
    const good = await Promise.all(Array.from({ length: 4 * LOCK_AFTER }, () => httpLogin('burst_victim', 'right-password', '127.0.0.6')));
    expect(good.map((r) => r.status)).toEqual(good.map(() => 200));
    const guesses = await Promise.all(Array.from({ length: 100 }, (_, i) => httpLogin('burst_victim', `guess-${i}`, '127.0.0.5')));
    const checked = guesses.filter((r) => r.status === 400).length;
    expect(checked).toBeGreaterThanOrEqual(LOCK_AFTER);
    expect(checked).toBeLessThanOrEqual(64); // at most that many in flight before the first failures land
    expect(guesses.filter((r) => r.status !== 400).every((r) => r.status === 429)).toBe(true);
    expect((await httpLogin('burst_victim', 'right-password', '127.0.0.5')).status).toBe(429);
    expect((await httpLogin('burst_victim', 'right-password', '127.0.0.6')).status).toBe(200);
  });
});

describe('item 8: nothing sent before authentication is logged', () => {
  it('a marker in every pre-auth field over TCP, WebSocket and HTTP never reaches the log', async () => {
    logged = '';
    // TCP: a cleartext password where the SASL mechanism belongs (the case that used to be logged)
    let c = await tcpConn();
    c.send(startupMessage({ user: USER, database: DATABASE, options: `endpoint=${ENDPOINT}` }));
    await c.inbox.next('R', 0);
    c.send(passwordMessage(MARKER));
    const e = await c.inbox.next('E', 0);
    expect(parseErrorFields(e!.m.body).M).toBe('client selected an invalid SASL authentication mechanism');
    c.close();
    // TCP: the marker as user, database, options, application_name, SCRAM nonce and proof
    c = await tcpConn();
    c.send(startupMessage({ user: MARKER, database: MARKER, options: `endpoint=${ENDPOINT} -c search_path=${MARKER}`, application_name: MARKER }));
    await c.inbox.next('R', 0);
    c.send(saslInitialResponse('SCRAM-SHA-256', Buffer.from(`n,,n=${MARKER},r=${MARKER}`)));
    const cont = await c.inbox.next('RE', 1);
    if (cont?.m.type === 'R') c.send(saslResponse(Buffer.from(`c=biws,r=${MARKER}x,p=${Buffer.from(MARKER).toString('base64')}`)));
    await c.inbox.next('E', 0);
    c.close();
    // TCP: an endpoint id and garbage made of the marker
    expect(await tcpLogin(USER, MARKER, { endpoint: `${MARKER}!` })).toMatchObject({ ok: false });
    c = await tcpConn();
    c.send(Buffer.concat([Buffer.from([0, 0, 0, 40]), Buffer.from(MARKER.padEnd(36, '#'))]));
    await c.inbox.next('E', 0);
    c.close();
    // WebSocket: marker as user and password, then marker frames instead of a startup packet
    expect((await wsLogin(MARKER, MARKER)).ok).toBe(false);
    expect((await wsLogin(USER, MARKER)).ok).toBe(false);
    c = await wsConn();
    c.send(Buffer.from(MARKER.repeat(10)));
    await c.inbox.next('E', 0);
    c.close();
    // HTTP: marker in the connection string, in Authorization and in a broken body
    await httpQuery({ 'Neon-Connection-String': stack.connString({ user: MARKER, password: MARKER }) }, JSON.stringify({ query: MARKER }));
    await httpQuery({ 'Neon-Connection-String': `postgresql://${MARKER}` }, '{}');
    await httpQuery({ 'Neon-Connection-String': stack.connString({ password: '' }), Authorization: `Bearer ${MARKER}` }, '{}');
    await httpQuery({ 'Neon-Connection-String': stack.connString({ database: MARKER }) }, `{"query":"${MARKER}`);
    await httpQuery({ 'Neon-Connection-String': stack.connString() }, `{"query":"SELECT 1","params":[${MARKER}]}`);
    expect(logged).toContain('session failed before authentication'); // the log was captured
    expect(logged).not.toContain(MARKER);
    expect(logged).not.toContain(Buffer.from(MARKER).toString('base64'));
  });
});
