// The official Neon CLI (neonctl) as a child process against a lakebase API: HOME, the config directory and the
// working directory are a temporary directory, analytics are off and --api-host is loopback, so nothing reads the
// user's config or leaves this machine.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

/** neonctl's JSON output. */
export type J = Record<string, any>;

const NEONCTL = fileURLToPath(new URL('../../node_modules/neonctl/bin/cli.js', import.meta.url));

export interface Neonctl {
  run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** `args --output json`, which must succeed. */
  json(args: string[]): Promise<J>;
}

export function neonctlFor(home: string, apiUrl: string, apiKey: string): Neonctl {
  const run: Neonctl['run'] = (args) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(NEON|NEONCTL)_/.test(k) && !/_proxy$/i.test(k)) env[k] = v;
    Object.assign(env, { HOME: home, XDG_CONFIG_HOME: join(home, '.config'), CI: '1', NO_COLOR: '1' });
    const all = [NEONCTL, ...args, '--api-host', apiUrl, '--api-key', apiKey, '--no-analytics', '--config-dir', join(home, 'neon'), '--context-file', join(home, 'context.json')];
    return new Promise((resolve) => {
      execFile(process.execPath, all, { cwd: home, env, timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      });
    });
  };
  return {
    run,
    json: async (args) => {
      const r = await run([...args, '--output', 'json']);
      expect(r.code, `neonctl ${args.join(' ')}\n${r.stderr}\n${r.stdout}`).toBe(0);
      return JSON.parse(r.stdout) as J;
    },
  };
}
