// SCRAM pass-through (groundwork of the postgres engine, docs/design/postgres-engine.md): the keys a client proves
// to the proxy (or its cleartext password gives) log the proxy in to a real PostgreSQL 15 AS THAT ROLE, where the
// role holds the control plane's verifier literal, with no password and no superuser login; keys from another
// verifier are refused before any proof is sent.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageOf } from '../lib/pg-wire/framing.ts';
import { parseAuthentication, parseDataRow, parseErrorFields } from '../lib/pg-wire/backend.ts';
import { query, saslInitialResponse, saslResponse, startupMessage } from '../lib/pg-wire/frontend.ts';
import { MessageReader } from '../lib/pg-wire/index.ts';
import { ScramClient, ScramServer, type ScramKeys, keysFromCleartext, makeVerifier, parseVerifier } from '../proxy/auth/scram.ts';
import { type NativePostgres, startNativePostgres } from './support/native-postgres.ts';

let pg: NativePostgres;
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

beforeAll(async () => {
  pg = await startNativePostgres();
}, 120_000);
afterAll(async () => {
  await pg?.stop();
});

/** Runs SQL as the superuser over the Unix socket (trust), as a control plane's admin path would. */
async function admin(sql: string): Promise<void> {
  const { default: Pg } = await import('pg');
  const c = new Pg.Client({ host: pg.socketDir, port: pg.port, user: pg.superuser, database: 'postgres' });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** The client's side of a SCRAM exchange with the proxy's server: the keys the proxy recovers, or null. */
async function keysProvenBy(verifierText: string, password: string): Promise<ScramKeys | null> {
  const server = new ScramServer(parseVerifier(verifierText)!);
  const client = new ScramClient(password);
  const final = server.clientFinal(await client.final(server.clientFirst(client.first())));
  return final === null ? null : server.keys;
}

/** Logs in to the real PostgreSQL as `user` with a SCRAM client, then runs `sql`: its first row, or the error. */
async function loginAndQuery(user: string, scram: ScramClient, sql: string): Promise<{ row?: (string | null)[]; error?: string; serverVerified?: boolean }> {
  const socket = net.connect(pg.port, '127.0.0.1');
  socket.on('error', () => {}); // a refused login ends with the server's ErrorResponse, read below
  const reader = new MessageReader();
  const waiting: (() => void)[] = [];
  socket.on('data', (d: Buffer) => {
    reader.push(d);
    for (const wake of waiting.splice(0)) wake();
  });
  const next = async () => {
    for (;;) {
      const m = reader.next();
      if (m) return m;
      await new Promise<void>((r) => waiting.push(r));
    }
  };
  try {
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write(startupMessage({ user, database: 'postgres' }));
    let serverVerified = false;
    for (;;) {
      const m = await next();
      if (m.type === 'E') return { error: `${parseErrorFields(m.body).C} ${parseErrorFields(m.body).M}` };
      if (m.type !== 'R') continue;
      const auth = parseAuthentication(m.body);
      if (auth.kind === 'sasl') socket.write(saslInitialResponse('SCRAM-SHA-256', utf8(scram.first())));
      else if (auth.kind === 'saslContinue') socket.write(saslResponse(utf8(await scram.final(text(auth.data)))));
      else if (auth.kind === 'saslFinal') serverVerified = scram.verifyServerFinal(text(auth.data));
      else if (auth.kind === 'ok') break;
      else return { error: `unexpected authentication request ${auth.kind}` };
    }
    socket.write(query(sql));
    for (;;) {
      const m = await next();
      if (m.type === 'D') return { row: parseDataRow(m.body), serverVerified };
      if (m.type === 'E') return { error: `${parseErrorFields(m.body).C} ${parseErrorFields(m.body).M}`, serverVerified };
    }
  } finally {
    socket.end(messageOf('X', []));
  }
}

describe('SCRAM pass-through to PostgreSQL 15', () => {
  it('logs in as the role with the keys the client proved, never as anyone else', async () => {
    const verifier = await makeVerifier('alice-password');
    await admin(`CREATE ROLE alice LOGIN PASSWORD '${verifier}'`);
    const keys = await keysProvenBy(verifier, 'alice-password');
    expect(keys).not.toBeNull();
    const me = await loginAndQuery('alice', new ScramClient(keys!), 'SELECT current_user, session_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)');
    expect(me).toEqual({ row: ['alice', 'alice', 'f'], serverVerified: true });
    const escalate = await loginAndQuery('alice', new ScramClient(keys!), 'SET SESSION AUTHORIZATION postgres');
    expect(escalate.error).toMatch(/^42501 /);
  });

  it('derives the same keys from a cleartext password (SQL over HTTP), and none from a wrong one', async () => {
    const verifier = await makeVerifier('bob-password');
    await admin(`CREATE ROLE bob LOGIN PASSWORD '${verifier}'`);
    const v = parseVerifier(verifier)!;
    expect(await keysFromCleartext(v, 'not-bob')).toBeNull();
    expect(await keysProvenBy(verifier, 'not-bob')).toBeNull();
    const keys = await keysFromCleartext(v, 'bob-password');
    expect((await loginAndQuery('bob', new ScramClient(keys!), 'SELECT session_user')).row).toEqual(['bob']);
  });

  it("refuses to answer a server whose verifier is not the keys' (the password changed): no proof is sent", async () => {
    const old = await makeVerifier('carol-old');
    await admin(`CREATE ROLE carol LOGIN PASSWORD '${old}'`);
    const keys = await keysFromCleartext(parseVerifier(old)!, 'carol-old');
    await admin(`ALTER ROLE carol PASSWORD '${await makeVerifier('carol-new')}'`);
    await expect(loginAndQuery('carol', new ScramClient(keys!), 'SELECT 1')).rejects.toThrow(/not the one these keys came from/);
    // keys for the current salt whose ClientKey is not the role's are refused by PostgreSQL itself
    const current = parseVerifier(await makeVerifier('carol-new'))!;
    await admin(`ALTER ROLE carol PASSWORD 'SCRAM-SHA-256$${current.iterations}:${current.salt.toString('base64')}$${current.storedKey.toString('base64')}:${current.serverKey.toString('base64')}'`);
    const forged: ScramKeys = { clientKey: Buffer.alloc(32, 7), serverKey: current.serverKey, salt: current.salt, iterations: current.iterations };
    const refused = await loginAndQuery('carol', new ScramClient(forged), 'SELECT 1');
    expect(refused.error).toMatch(/^28P01 /);
  });
});
