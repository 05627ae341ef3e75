// Issue 9, item 13: the proxy keeps the role verifiers it fetched, so `kill -9` of the control plane under an
// HTTP query load fails no query of a known role; and the control plane's invalidation feed (not the TTL, which
// is an hour here) makes a reset password's old value fail promptly while the new one works at once.
// Real processes: `lakebase start` (its supervisor restarts the killed control plane).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLakebaseStack, type LakebaseStack } from './support/lakebase-stack.ts';

let stack: LakebaseStack;

beforeAll(async () => {
  stack = await startLakebaseStack({ env: { LAKEBASE_PROXY_VERIFIER_TTL_MS: String(3600_000) } });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

async function servicePid(name: string): Promise<number> {
  return (JSON.parse(await readFile(join(stack.dir, 'services.json'), 'utf8')) as Record<string, number>)[name];
}

/** One SQL-over-HTTP query with the given connection string: its status and message. */
async function query(conn: string, sql = 'SELECT 1 AS n'): Promise<{ status: number; message?: string }> {
  const res = await fetch(stack.sqlUrl, { method: 'POST', headers: { 'Neon-Connection-String': conn }, body: JSON.stringify({ query: sql }) });
  const body = (await res.json()) as { message?: string };
  return { status: res.status, message: body.message };
}

/** The same string with another password, keeping the `endpoint=<id>$` it starts with. */
const withPassword = (conn: string, password: string): string => {
  const u = new URL(conn);
  u.password = encodeURIComponent(decodeURIComponent(u.password).replace(/^(endpoint=[^$]*\$).*$/s, `$1${password}`));
  return u.toString();
};

describe('verifier cache and invalidation feed', () => {
  it('kill -9 of the control plane under an HTTP query load fails no query of a known role', async () => {
    const conn = stack.project.connectionString;
    expect((await query(conn)).status).toBe(200); // wakes the compute and caches the verifier
    const oldPid = await servicePid('control-plane');
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const worker = async (): Promise<void> => {
      while (!stop) {
        const r = await query(conn).catch((e: Error) => ({ status: 0, message: e.message }));
        if (r.status === 200) ok++;
        else failures.push(`${r.status} ${r.message}`);
      }
    };
    const load = Promise.all([worker(), worker(), worker(), worker()]);
    while (ok < 50) await new Promise((r) => setTimeout(r, 20));
    process.kill(oldPid, 'SIGKILL');
    const okAtKill = ok;
    // until the supervisor has a new control plane up, and it answers
    for (;;) {
      const pid = await servicePid('control-plane').catch(() => oldPid);
      if (pid !== oldPid && (await fetch(`${stack.controlPlaneUrl}/healthz`).then((r) => r.ok, () => false))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const okAtRestart = ok;
    await new Promise((r) => setTimeout(r, 500)); // and a little after (new epoch: the proxy refetches)
    stop = true;
    await load;
    expect(failures).toEqual([]);
    expect(okAtRestart).toBeGreaterThan(okAtKill); // queries were answered while the control plane was down
  }, 60_000);

  it('a password reset: the old password is refused by the push, the new one works at once', async () => {
    const { project } = stack;
    const conn = project.connectionString;
    expect((await query(conn)).status).toBe(200);
    const reset = await stack.api<{ role: { password: string } }>(
      'POST',
      `/projects/${project.id}/branches/${project.branchId}/roles/neondb_owner/reset_password`,
    );
    const fresh = withPassword(conn, reset.role.password);
    // the new one works at once: a cached verifier that does not match is checked against the directory again
    expect((await query(fresh)).status).toBe(200);
    // the old one: the verifier TTL is an hour, so only the invalidation feed can make this fail
    let old = await query(conn);
    for (let i = 0; i < 100 && old.status === 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      old = await query(conn);
    }
    expect(old).toEqual({ status: 400, message: "password authentication failed for user 'neondb_owner'" });
    expect((await query(fresh)).status).toBe(200);
  }, 60_000);
});
