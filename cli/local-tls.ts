// The local lakebase's TLS certificate: self-signed, for 127.0.0.1, ::1, localhost and *.<base domain>, made once
// with the openssl CLI and kept in the state directory (key 0600). With it the proxy answers SSLRequest with 'S',
// so the clients that insist on TLS (`sslmode=require` in the string `neonctl connection-string` prints, and
// `channel_binding=require`, which needs SCRAM-SHA-256-PLUS over TLS) connect; they do not verify it, nothing does
// by default. A certificate that no longer covers the base domain, or expires within a day, is made anew.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const DAY_MS = 24 * 60 * 60 * 1000;

export interface LocalTlsFiles {
  /** PEM certificate, for the proxy's --tls-cert. */
  cert: string;
  /** PEM private key (0600), for the proxy's --tls-key. */
  key: string;
}

/** The certificate and key in `<stateDir>/tls/`, made now if missing, stale or not for `baseDomain`. */
export async function localTlsCertificate(stateDir: string, baseDomain: string): Promise<LocalTlsFiles> {
  if (!/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/.test(baseDomain)) throw new Error(`not a domain name: ${JSON.stringify(baseDomain)}`);
  const dir = join(stateDir, 'tls');
  const files = { cert: join(dir, 'proxy.crt'), key: join(dir, 'proxy.key') };
  if (await usable(files, baseDomain)) return files;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Made aside, then moved in, so that an interrupted run never leaves a certificate without its key
  const tmp = await mkdtemp(join(dir, 'new-'));
  try {
    const made = { cert: join(tmp, 'proxy.crt'), key: join(tmp, 'proxy.key') };
    await openssl(made, baseDomain);
    await chmod(made.key, 0o600);
    await rename(made.key, files.key);
    await rename(made.cert, files.cert);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return files;
}

/** Both files exist, and the certificate covers the names and is valid for at least a day more. */
async function usable(files: LocalTlsFiles, baseDomain: string): Promise<boolean> {
  if (!existsSync(files.cert) || !existsSync(files.key)) return false;
  try {
    const cert = new X509Certificate(await readFile(files.cert));
    return (
      cert.validToDate.getTime() - Date.now() > DAY_MS &&
      cert.checkIP('127.0.0.1') !== undefined &&
      cert.checkHost('localhost') !== undefined &&
      cert.checkHost(`ep-probe.${baseDomain}`) !== undefined
    );
  } catch {
    return false; // unreadable: made anew
  }
}

async function openssl(out: LocalTlsFiles, baseDomain: string): Promise<void> {
  const names = ['IP:127.0.0.1', 'IP:::1', 'DNS:localhost', `DNS:${baseDomain}`, `DNS:*.${baseDomain}`].join(',');
  const args = [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '3650',
    '-subj', '/CN=lakebase local', '-addext', `subjectAltName=${names}`, '-keyout', out.key, '-out', out.cert,
  ];
  try {
    await run('openssl', args);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new Error('openssl is not installed: it makes the local TLS certificate (apt-get install openssl)');
    throw new Error(`openssl could not make the local TLS certificate: ${err.stderr?.trim() || err.message}`);
  }
}
