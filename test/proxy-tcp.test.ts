// The Postgres TCP port: SCRAM-SHA-256 for clients (node-postgres and psql), endpoint from options, TLS with
// SNI routing and the cleartext `endpoint=<id>;<password>` form under TLS, every way a compute may ask the
// proxy to authenticate (SCRAM, cleartext, MD5, trust), and junk on the port.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import https from 'node:https';
import { Pool, neonConfig } from '@neondatabase/serverless';
import pg from 'pg';
import ws from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.ts';
import { startProxy, type RunningProxy } from '../proxy/server.ts';
import { BASE_DOMAIN, DATABASE, ENDPOINT, INTERNAL_PASSWORD, PASSWORD, USER, startProxyStack, type ProxyStack } from './support/proxy-stack.ts';
import { WireClient } from './support/proxy-wire.ts';

const run = promisify(execFile);
let stack: ProxyStack;
let tcpPort: number;

beforeAll(async () => {
  stack = await startProxyStack({
    postgres: {
      hbaFirst: [
        'host all clear_user 127.0.0.1/32 password',
        'host all md5_user 127.0.0.1/32 md5',
        'host all trust_user 127.0.0.1/32 trust',
      ],
    },
  });
  tcpPort = stack.proxy.tcpPort as number;
  await stack.admin(`CREATE ROLE clear_user LOGIN PASSWORD '${INTERNAL_PASSWORD}'`);
  await stack.admin(`SET password_encryption = 'md5'; CREATE ROLE md5_user LOGIN PASSWORD '${INTERNAL_PASSWORD}'`);
  await stack.admin('CREATE ROLE trust_user LOGIN');
  for (const role of ['clear_user', 'md5_user', 'trust_user']) await stack.directory.setRole(ENDPOINT, role, `${role}-pw`);
});

afterAll(async () => {
  await stack?.close();
});

function pgClient(extra: pg.ClientConfig = {}): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port: tcpPort, user: USER, password: PASSWORD, database: DATABASE, options: `endpoint=${ENDPOINT}`, ...extra });
}

describe('TCP with SCRAM-SHA-256', () => {
  it('node-postgres connects with SCRAM and queries; the proxy key is not the backend pid', async () => {
    const c = pgClient({ application_name: 'tcp-app' });
    await c.connect();
    try {
      const r = await c.query("SELECT $1::int + 1 AS n, current_user AS u, current_setting('application_name') AS a, pg_backend_pid() AS pid", [1]);
      expect(r.rows[0]).toMatchObject({ n: 2, u: USER, a: 'tcp-app' });
      expect((c as unknown as { processID: number }).processID).not.toBe(r.rows[0].pid);
      await c.query('BEGIN');
      await c.query('CREATE TABLE tcp_t (v int)');
      await c.query('COMMIT');
    } finally {
      await c.end();
    }
  });

  it('client.cancel-style CancelRequest over TCP reaches the right backend', async () => {
    const c = pgClient();
    await c.connect();
    const other = pgClient();
    await other.connect();
    try {
      const started = Date.now();
      const sleeping = c.query('SELECT pg_sleep(5)').catch((e: pg.DatabaseError) => e);
      const bystander = other.query('SELECT pg_sleep(0.3) AS s');
      await new Promise((r) => setTimeout(r, 150)); // both statements are running before the cancel is sent
      const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
      const w = await WireClient.tcp(tcpPort);
      const req = Buffer.alloc(16);
      req.writeInt32BE(16, 0);
      req.writeInt32BE(80877102, 4);
      req.writeInt32BE(processID, 8);
      req.writeInt32BE(secretKey, 12);
      w.send(req);
      expect(await sleeping).toMatchObject({ code: '57014' });
      expect(Date.now() - started).toBeLessThan(4500); // cancelled, not left to run its 5 s
      expect((await bystander).rows).toHaveLength(1); // the other session was not cancelled
    } finally {
      await c.end();
      await other.end();
    }
  });

  it('wrong password, unknown role and unknown endpoint fail alike; no endpoint is explained', async () => {
    for (const cfg of [{ password: 'wrong' }, { user: 'nobody' }, { options: 'endpoint=ep-none-such-1' }]) {
      const err = await pgClient(cfg).connect().catch((e: pg.DatabaseError) => e);
      expect(err).toMatchObject({ message: `password authentication failed for user '${cfg.user ?? USER}'`, code: 'XX000' });
    }
    const err = await pgClient({ options: undefined }).connect().catch((e: Error) => e);
    expect((err as Error).message).toMatch(/^Endpoint ID is not specified/);
  });

  it('psql over TCP with SCRAM (PGPASSWORD, PGOPTIONS and options in the conninfo)', async () => {
    const env = { ...process.env, PGPASSWORD: PASSWORD, PGOPTIONS: `endpoint=${ENDPOINT}`, PGSSLMODE: 'prefer', PGCONNECT_TIMEOUT: '5' };
    const a = await run('psql', ['-h', '127.0.0.1', '-p', String(tcpPort), '-U', USER, '-d', DATABASE, '-tAc', 'SELECT 40 + 2'], { env });
    expect(a.stdout.trim()).toBe('42');
    const conninfo = `host=127.0.0.1 port=${tcpPort} user=${USER} dbname=${DATABASE} options='endpoint=${ENDPOINT} -c search_path=pg_catalog'`;
    const b = await run('psql', [conninfo, '-tAc', 'SHOW search_path'], { env: { ...process.env, PGPASSWORD: PASSWORD } });
    expect(b.stdout.trim()).toBe('pg_catalog');
    const bad = await run('psql', [conninfo, '-tAc', 'SELECT 1'], { env: { ...process.env, PGPASSWORD: 'nope' } }).catch((e: { stderr: string }) => e);
    expect((bad as { stderr: string }).stderr).toContain(`password authentication failed for user '${USER}'`);
  });

  it('the proxy answers whatever the compute asks: SCRAM, cleartext, MD5 or trust', async () => {
    for (const role of ['clear_user', 'md5_user', 'trust_user']) {
      const c = pgClient({ user: role, password: `${role}-pw` });
      await c.connect();
      expect((await c.query('SELECT current_user AS u')).rows).toEqual([{ u: role }]);
      await c.end();
    }
  });

  it('a login the compute refuses passes its error on (database does not exist)', async () => {
    const err = await pgClient({ database: 'nodb' }).connect().catch((e: pg.DatabaseError) => e);
    expect(err).toMatchObject({ code: '3D000', message: 'database "nodb" does not exist' });
  });

  it('SSLRequest without TLS configured is answered N; junk never hurts the port', async () => {
    const w = await WireClient.tcp(tcpPort);
    w.rawMode(true);
    const ssl = Buffer.alloc(8);
    ssl.writeInt32BE(8, 0);
    ssl.writeInt32BE(80877103, 4);
    w.send(ssl);
    await w.until(() => w.raw.length >= 1);
    expect(w.raw.toString()).toBe('N');
    w.close();
    for (let i = 0; i < 30; i++) {
      const s = net.connect({ host: '127.0.0.1', port: tcpPort });
      s.on('error', () => {});
      await new Promise((r) => s.once('connect', r));
      const junk = Buffer.alloc(4 + Math.floor(Math.random() * 200));
      for (let j = 0; j < junk.length; j++) junk[j] = Math.floor(Math.random() * 256);
      if (i % 3 === 0) junk.writeInt32BE(Math.min(junk.length, 9) + 8, 0);
      s.end(junk);
    }
    const c = pgClient();
    await c.connect();
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await c.end();
  });
});

// openssl (Debian's package, installed by .ci/run) makes the test certificate.
describe('TCP with TLS', () => {
  let proxy: RunningProxy;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'lakebase-proxy-tls-'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', `/CN=*.${BASE_DOMAIN}`, '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    proxy = await startProxy({
      directory: stack.directory,
      baseDomains: [BASE_DOMAIN],
      httpPort: 0,
      httpsPort: 0,
      tls: { cert: readFileSync(path.join(dir, 'cert.pem')), key: readFileSync(path.join(dir, 'key.pem')) },
      logger: createLogger('proxy-tls-test', 'silent'),
    });
  });

  afterAll(async () => {
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('SNI names the endpoint (SCRAM), and without SNI the password form works under TLS', async () => {
    const viaSni = new pg.Client({
      host: '127.0.0.1', port: proxy.tcpPort as number, user: USER, password: PASSWORD, database: DATABASE,
      ssl: { rejectUnauthorized: false, servername: `${ENDPOINT}.${BASE_DOMAIN}` },
    });
    await viaSni.connect();
    expect((await viaSni.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows).toEqual([{ ssl: false }]);
    await viaSni.end();
    const env = { ...process.env, PGPASSWORD: `endpoint=${ENDPOINT};${PASSWORD}`, PGSSLMODE: 'require' };
    const r = await run('psql', ['-h', '127.0.0.1', '-p', String(proxy.tcpPort), '-U', USER, '-d', DATABASE, '-tAc', 'SELECT 7'], { env });
    expect(r.stdout.trim()).toBe('7');
  });

  it('item 31: HTTPS and WSS on the TLS port', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port: proxy.httpsPort as number, path: '/sql', method: 'POST', rejectUnauthorized: false, headers: { 'Neon-Connection-String': stack.connString(), 'Neon-Array-Mode': 'true', 'Neon-Raw-Text-Output': 'true' } },
        (res) => {
          let data = '';
          res.on('data', (d: Buffer) => (data += d.toString()));
          res.on('end', () => resolve(data));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ query: 'SELECT 1 AS n' }));
    });
    expect(JSON.parse(body).rows).toEqual([['1']]);
    class InsecureWs extends ws {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols, { rejectUnauthorized: false });
      }
    }
    neonConfig.webSocketConstructor = InsecureWs;
    neonConfig.useSecureWebSocket = true;
    neonConfig.wsProxy = (host, port) => `127.0.0.1:${proxy.httpsPort}/v2?address=${host}:${port}`;
    const pool = new Pool({ connectionString: stack.connString() });
    try {
      expect((await pool.query('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
    } finally {
      await pool.end();
    }
  });
});
