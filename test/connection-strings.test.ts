// Connection strings as printed, against a real lakebase (`lakebase start`): the URI the API gives works unchanged
// with the driver (neon(), Pool, Client, poolQueryViaFetch), pg, psql and pgbench; the string `neonctl
// connection-string` prints (sslmode=require&channel_binding=require, a host name under the base domain) works with
// psql over TLS with SCRAM-SHA-256-PLUS; today's forms (options, SNI) still work. The proxy gets the certificate
// of cli/local-tls.ts and allows the cleartext password form on its loopback TCP port, through its environment.
import { execFile } from 'node:child_process';
import { X509Certificate, createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client, neon, neonConfig, Pool } from '@neondatabase/serverless';
import pg from 'pg';
import ws from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localTlsCertificate } from '../cli/local-tls.ts';
import { Views } from '../control-plane/api/views.ts';
import type { EndpointRecord } from '../control-plane/model.ts';
import { tlsServerEndPoint } from '../proxy/auth/channel-binding.ts';
import { ScramClient, ScramServer, makeVerifier, parseVerifier } from '../proxy/auth/scram.ts';
import { parseConnectionString } from '../proxy/http/conn-string.ts';
import { startLakebaseStack } from './support/lakebase-stack.ts';
import type { LakebaseStack } from './support/lakebase-stack.ts';
import { neonctlFor } from './support/neonctl.ts';

const execFileP = promisify(execFile);
const BASE_DOMAIN = 'lakebase.localhost';

let dir: string;
let home: string;
let stack: LakebaseStack;
let uri: string;
let pooledUri: string;

/** psql and pgbench with a clean environment: no PG* variable, no ~/.postgresql of the user. */
async function tool(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const clean = { PATH: process.env.PATH ?? '', HOME: home, LANG: 'C.UTF-8', ...env };
  try {
    const r = await execFileP(cmd, args, { env: clean, timeout: 120_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

async function psql(target: string, sql: string, env?: Record<string, string>): Promise<string> {
  const r = await tool('psql', [target, '-tAc', sql], env);
  expect(r.code, r.out).toBe(0);
  return r.out.trim();
}

async function connectionUri(pooled = false): Promise<string> {
  const q = new URLSearchParams({ database_name: 'neondb', role_name: 'neondb_owner', pooled: String(pooled) });
  return (await stack.api<{ uri: string }>('GET', `/projects/${stack.project.id}/connection_uri?${q}`)).uri;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lakebase-connstr-'));
  home = await mkdtemp(join(tmpdir(), 'lakebase-connstr-home-'));
  const tls = await localTlsCertificate(dir, BASE_DOMAIN);
  stack = await startLakebaseStack({
    dir,
    env: { LAKEBASE_PROXY_TLS_CERT: tls.cert, LAKEBASE_PROXY_TLS_KEY: tls.key, LAKEBASE_PROXY_TCP_ALLOW_CLEARTEXT: '1' },
  });
  // The three lines the banner of `lakebase start` prints (plus a WebSocket constructor for Node).
  neonConfig.fetchEndpoint = () => stack.sqlUrl;
  neonConfig.wsProxy = () => stack.wsProxy;
  neonConfig.useSecureWebSocket = false;
  neonConfig.webSocketConstructor = ws;
  uri = await connectionUri();
  pooledUri = await connectionUri(true);
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
  await rm(home, { recursive: true, force: true });
});

describe('the URI of GET connection_uri, unchanged', () => {
  it('names 127.0.0.1 and carries the endpoint in the password, with no query', () => {
    const u = new URL(uri);
    expect(u.hostname).toBe('127.0.0.1');
    expect(u.search).toBe('');
    expect(decodeURIComponent(u.password)).toMatch(new RegExp(`^endpoint=${stack.project.endpointId}\\$npg_`));
    expect(decodeURIComponent(new URL(pooledUri).password)).toMatch(new RegExp(`^endpoint=${stack.project.endpointId}-pooler\\$`));
  });

  it('the driver: neon(), Pool, Client, and Pool.query with poolQueryViaFetch', async () => {
    const sql = neon(uri);
    await sql`CREATE TABLE IF NOT EXISTS cs (n int)`;
    await sql`INSERT INTO cs VALUES (1)`;
    const pool = new Pool({ connectionString: uri });
    expect((await pool.query('SELECT count(*)::int AS n FROM cs')).rows).toEqual([{ n: 1 }]);
    await pool.end();
    const client = new Client(pooledUri);
    await client.connect();
    expect((await client.query('SELECT current_user AS u')).rows).toEqual([{ u: 'neondb_owner' }]);
    await client.end();
    neonConfig.poolQueryViaFetch = true;
    try {
      const viaFetch = new Pool({ connectionString: uri });
      expect((await viaFetch.query('SELECT $1::int + 1 AS n', [41])).rows).toEqual([{ n: 42 }]);
      await viaFetch.end();
    } finally {
      neonConfig.poolQueryViaFetch = false;
    }
  });

  it('pg over TCP', async () => {
    for (const s of [uri, pooledUri]) {
      const c = new pg.Client({ connectionString: s });
      await c.connect();
      expect((await c.query('SELECT count(*)::int AS n FROM cs')).rows).toEqual([{ n: 1 }]);
      await c.end();
    }
  });

  it('psql (over TLS, as libpq prefers) and pgbench', async () => {
    expect(await psql(uri, 'SELECT 1')).toBe('1');
    expect(await psql(pooledUri, 'SELECT count(*) FROM cs')).toBe('1');
    expect(await psql(uri, '\\conninfo')).toContain('SSL connection');
    const init = await tool('pgbench', ['-i', '-s', '1', uri]);
    expect(init.code, init.out).toBe(0);
    const bench = await tool('pgbench', ['-t', '5', '-n', uri]);
    expect(bench.code, bench.out).toBe(0);
    expect(bench.out).toContain('number of transactions actually processed: 5/5');
  });

  it('a wrong password in the same form is refused as a wrong password', async () => {
    const u = new URL(uri);
    u.password = encodeURIComponent(`endpoint=${stack.project.endpointId}$wrong`);
    const r = await tool('psql', [u.toString(), '-tAc', 'SELECT 1']);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain("password authentication failed for user 'neondb_owner'");
  });
});

describe('other forms', () => {
  it("neonctl connection-string's string works with psql: TLS, SNI, SCRAM-SHA-256-PLUS (channel_binding=require)", async () => {
    const cli = neonctlFor(home, stack.apiUrl, stack.apiKey);
    for (const extra of [[], ['--pooled']]) {
      const r = await cli.run(['connection-string', '--project-id', stack.project.id, ...extra]);
      expect(r.code, r.stderr).toBe(0);
      const printed = r.stdout.trim();
      const u = new URL(printed);
      expect(u.hostname.endsWith(`.${BASE_DOMAIN}`)).toBe(true);
      expect(u.searchParams.get('sslmode')).toBe('require');
      expect(u.searchParams.get('channel_binding')).toBe('require');
      // Names under lakebase.localhost need a resolver that maps *.localhost to loopback (systemd-resolved); this
      // machine has none, so libpq is told the address and still sends the name (SNI) and binds the channel
      expect(await psql(printed, 'SELECT current_user', { PGHOSTADDR: '127.0.0.1' })).toBe('neondb_owner');
    }
  });

  it("today's forms: options=endpoint=... (psql with SCRAM-SHA-256-PLUS over TLS, pg with SCRAM)", async () => {
    const u = new URL(uri);
    u.password = decodeURIComponent(u.password).replace(/^endpoint=[^$]+\$/, '');
    u.searchParams.set('options', `endpoint=${stack.project.endpointId}`);
    expect(await psql(u.toString(), 'SELECT 2', { PGCHANNELBINDING: 'require' })).toBe('2');
    const c = new pg.Client({ connectionString: u.toString() });
    await c.connect();
    expect((await c.query('SELECT 3 AS n')).rows).toEqual([{ n: 3 }]);
    await c.end();
    expect((await neon(u.toString())`SELECT 4 AS n`)[0]).toEqual({ n: 4 });
  });

  it('pg with enableChannelBinding and SNI logs in with SCRAM-SHA-256-PLUS', async () => {
    const u = new URL(uri);
    const c = new pg.Client({
      host: '127.0.0.1', port: Number(u.port), user: 'neondb_owner', database: 'neondb',
      password: decodeURIComponent(u.password).replace(/^endpoint=[^$]+\$/, ''),
      ssl: { rejectUnauthorized: false, servername: `${stack.project.endpointId}.${BASE_DOMAIN}` },
      enableChannelBinding: true,
    } as pg.ClientConfig);
    await c.connect();
    expect((await c.query('SELECT 5 AS n')).rows).toEqual([{ n: 5 }]);
    await c.end();
  });
});

/** A SCRAM client-final-message for `password` with the channel-binding input `cbind` (RFC 5802 §3). */
function scramFinal(password: string, clientFirstBare: string, serverFirst: string, cbind: Buffer): string {
  const attrs = new Map(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)] as const));
  const salted = pbkdf2Sync(password, Buffer.from(attrs.get('s')!, 'base64'), Number(attrs.get('i')), 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const withoutProof = `c=${cbind.toString('base64')},r=${attrs.get('r')}`;
  const signature = createHmac('sha256', storedKey).update(`${clientFirstBare},${serverFirst},${withoutProof}`).digest();
  return `${withoutProof},p=${Buffer.from(clientKey.map((b, i) => b ^ signature[i])).toString('base64')}`;
}

describe('units', () => {
  const ep = { id: 'ep-a-b-123456' } as EndpointRecord;

  it('Views.uri: the password form with a connection host, the Neon form without', () => {
    const local = new Views({ baseDomain: BASE_DOMAIN, proxyPort: 5433, connectionHost: '127.0.0.1' });
    expect(local.uri(ep, 'r', 'p w', 'db', true)).toBe('postgresql://r:endpoint%3Dep-a-b-123456-pooler%24p%20w@127.0.0.1:5433/db');
    expect(new Views({ baseDomain: BASE_DOMAIN, proxyPort: 5433, connectionHost: '::1' }).uri(ep, 'r', 'p', 'db')).toContain('@[::1]:5433/');
    expect(new Views({ baseDomain: BASE_DOMAIN, proxyPort: 5433 }).uri(ep, 'r', 'p', 'db')).toBe(`postgresql://r:p@ep-a-b-123456.${BASE_DOMAIN}:5433/db?sslmode=disable`);
  });

  it('Neon-Connection-String: the endpoint in the password (both separators), options, or the host', () => {
    const parse = (s: string) => parseConnectionString(s, undefined);
    expect(parse('postgresql://u:endpoint%3Dep-x%24pw@127.0.0.1/db')).toMatchObject({ endpointId: 'ep-x', password: 'pw' });
    expect(parse('postgresql://u:endpoint%3Dep-x-pooler%3Bpw@localhost/db')).toMatchObject({ endpointId: 'ep-x', password: 'pw' });
    expect(parse('postgresql://u:endpoint%3Dep-x%24p%3Bw@127.0.0.1/db')).toMatchObject({ endpointId: 'ep-x', password: 'p;w' });
    // both, agreeing: unwrapped; disagreeing: options win and the password is taken as it is
    expect(parse('postgresql://u:endpoint%3Dep-x%24pw@127.0.0.1/db?options=endpoint%3Dep-x')).toMatchObject({ endpointId: 'ep-x', password: 'pw' });
    expect(parse('postgresql://u:endpoint%3Dep-y%24pw@127.0.0.1/db?options=endpoint%3Dep-x')).toMatchObject({ endpointId: 'ep-x', password: 'endpoint=ep-y$pw' });
    expect(parse('postgresql://u:endpoint%3Dep-x%24pw@ep-x.example.com/db')).toMatchObject({ endpointId: 'ep-x', password: 'pw' });
    expect(() => parse('postgresql://u:pw@127.0.0.1/db')).toThrow('missing hostname');
    expect(() => parse('postgresql://u:endpoint%3Dep%20x%24pw@127.0.0.1/db')).toThrow('must contain only alphanumeric');
  });

  it('SCRAM-SHA-256-PLUS: the binding must be the certificate hash; downgrades are refused', async () => {
    const tls = await localTlsCertificate(dir, BASE_DOMAIN);
    const cert = new X509Certificate(await readFile(tls.cert));
    const binding = tlsServerEndPoint(cert);
    expect(binding).toEqual(createHash('sha256').update(cert.raw).digest()); // ecdsa-with-SHA256
    const verifier = parseVerifier(await makeVerifier('secret'))!;
    const server = new ScramServer(verifier, binding);
    expect(server.mechanisms).toEqual(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']);
    expect(() => new ScramServer(verifier, binding).clientFirst('y,,n=*,r=abc')).toThrow('thinks the server does not');
    expect(() => new ScramServer(verifier, binding).clientFirst('n,,n=*,r=abc', 'SCRAM-SHA-256-PLUS')).toThrow('does not include channel binding');
    expect(() => new ScramServer(verifier, binding).clientFirst('p=tls-unique,,n=*,r=abc', 'SCRAM-SHA-256-PLUS')).toThrow('unsupported');
    expect(() => new ScramServer(verifier).clientFirst('p=tls-server-end-point,,n=*,r=abc', 'SCRAM-SHA-256-PLUS')).toThrow();
    // the client's c= is its gs2 header and the certificate hash: right data passes, other data fails
    const gs2 = 'p=tls-server-end-point,,';
    const first = server.clientFirst(`${gs2}n=*,r=clientnonce`, 'SCRAM-SHA-256-PLUS');
    expect(server.clientFinal(scramFinal('secret', 'n=*,r=clientnonce', first, Buffer.concat([Buffer.from(gs2), binding])))).not.toBeNull();
    const other = new ScramServer(verifier, binding);
    const first2 = other.clientFirst(`${gs2}n=*,r=clientnonce`, 'SCRAM-SHA-256-PLUS');
    expect(other.clientFinal(scramFinal('secret', 'n=*,r=clientnonce', first2, Buffer.concat([Buffer.from(gs2), Buffer.alloc(32)])))).toBeNull();
    // and 'n' without TLS still works as before
    const plain = new ScramServer(verifier);
    const client = new ScramClient('secret');
    const sf = plain.clientFirst(client.first());
    expect(plain.clientFinal(await client.final(sf))).not.toBeNull();
  });
});
