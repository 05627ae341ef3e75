// Helpers for tests of the postgres engine on a whole lakebase: the compute host's view of a compute (its
// postmaster, uid, mount and socket, read from /proc as root), a superuser session over the compute's own unix
// socket (what the control plane's SQL uses; no client can reach it), and the owner's connection strings.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import type { ComputeInfo } from '../../compute/host/api-types.ts';
import type { LakebaseStack } from './lakebase-stack.ts';

export async function computeHostApi(s: LakebaseStack): Promise<{ url: string; token: string }> {
  const secrets = JSON.parse(await readFile(join(s.dir, 'secrets.json'), 'utf8')) as { computeApiToken: string };
  // the compute host's log line names its URL (it is not in local.json: only the control plane talks to it)
  const line = s.log().split('\n').find((l) => l.includes('compute host listening'));
  const url = line ? /"url":"([^"]+)"/.exec(line)?.[1] : undefined;
  if (!url) throw new Error('no "compute host listening" line in the stack log');
  return { url, token: secrets.computeApiToken };
}

export async function computeInfo(api: { url: string; token: string }, computeId: string): Promise<ComputeInfo> {
  const res = await fetch(`${api.url}/v1/computes/${computeId}`, { headers: { authorization: `Bearer ${api.token}` } });
  if (!res.ok) throw new Error(`GET compute ${computeId}: ${res.status} ${await res.text()}`);
  return (await res.json()) as ComputeInfo;
}

/** The postmaster's uid, data directory (the FUSE mount) and socket directory, from /proc. */
export async function postmasterOf(pid: number): Promise<{ uid: number; dataDir: string; socketDir: string; port: number }> {
  const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
  const arg = (flag: string) => args[args.indexOf(flag) + 1];
  return { uid, dataDir: arg('-D'), socketDir: arg('-k'), port: Number(arg('-p')) };
}

/** A superuser client over the compute's unix socket. */
export async function adminClient(pid: number, database = 'postgres'): Promise<pg.Client> {
  const pm = await postmasterOf(pid);
  const c = new pg.Client({ host: pm.socketDir, port: pm.port, user: 'cloud_admin', database });
  await c.connect();
  return c;
}
