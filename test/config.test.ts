// lib/config.ts, the one way every process reads its configuration: a flag wins over the environment, the
// canonical LAKEBASE_<SERVICE>_<OPTION> name over the aliases kept from before the rule, each parser refuses bad
// text naming the option and what it expects, --help lists every option with its variables and default, and a
// secret is never echoed. Then each service's main.ts as a process: --help exits 0, a bad value exits 2.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  boolean, bytes, ConfigError, decimal, defineConfig, duration, envName, envNames, flag, flagName, helpText, integer,
  list, megabytes, oneOf, option, parseConfig, port, text, url,
} from '../lib/config.ts';
import type { Options, Parser, ServiceConfig, Values } from '../lib/config.ts';
import { COMPUTE_CONFIG } from '../compute/config.ts';
import { CONTROL_PLANE_CONFIG } from '../control-plane/config.ts';
import { PROXY_CONFIG } from '../proxy/config.ts';
import { STORAGE_NODE_CONFIG } from '../storage-node/config.ts';

const DEMO = defineConfig({
  service: 'demo-svc',
  title: 'demo',
  usage: 'demo [options]',
  options: {
    httpPort: option(port(), { help: 'a port', default: 4444, aliases: ['LAKEBASE_OLD_PORT', 'LAKEBASE_OLDER_PORT'] }),
    name: option(text('NAME'), { help: 'a name' }),
    token: option(text('T'), { help: 'a secret', secret: true, required: 'the door needs it' }),
    pin: option(integer({ min: 1000, max: 9999, unit: 'a PIN' }), { help: 'a secret number', secret: true, default: 1234 }),
    verbose: flag({ help: 'say more' }),
  },
});

function values<O extends Options>(config: ServiceConfig<O>, argv: string[], env: Record<string, string> = {}): Values<O> {
  const parsed = parseConfig(config, argv, env);
  if (parsed.help) throw new Error('unexpected --help');
  return parsed.values;
}

function refusal(config: ServiceConfig<Options>, argv: string[], env: Record<string, string> = {}): string {
  try {
    parseConfig(config, argv, env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('not refused');
}

/** What a parser says about `raw`: its value, or its refusal through a one-option config. */
function parsed<T>(p: Parser<T>, raw: string): T | string {
  const cfg = defineConfig({ service: 't', title: 't', usage: 't', options: { maxResultMb: option(p, { help: 'x' }) } });
  try {
    return values(cfg, [`--max-result-mb=${raw}`]).maxResultMb as T;
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
}

describe('lib/config.ts', () => {
  it('names: camelCase key -> --flag, LAKEBASE_<SERVICE>_<OPTION>', () => {
    expect(flagName('idleInTransactionTimeoutS')).toBe('idle-in-transaction-timeout-s');
    expect(envName('storage-node', 'dataDir')).toBe('LAKEBASE_STORAGE_NODE_DATA_DIR');
    expect(envName('proxy', 'http-port')).toBe('LAKEBASE_PROXY_HTTP_PORT');
    expect(envNames(DEMO, 'httpPort')).toEqual(['LAKEBASE_DEMO_SVC_HTTP_PORT', 'LAKEBASE_OLD_PORT', 'LAKEBASE_OLDER_PORT']);
  });

  it('a flag wins over the environment; the canonical name over aliases, the first alias over the next; empty is not given', () => {
    const base = { LAKEBASE_DEMO_SVC_TOKEN: 't' };
    expect(values(DEMO, [], base).httpPort).toBe(4444);
    expect(values(DEMO, [], { ...base, LAKEBASE_OLDER_PORT: '3' }).httpPort).toBe(3);
    expect(values(DEMO, [], { ...base, LAKEBASE_OLD_PORT: '2', LAKEBASE_OLDER_PORT: '3' }).httpPort).toBe(2);
    expect(values(DEMO, [], { ...base, LAKEBASE_DEMO_SVC_HTTP_PORT: '1', LAKEBASE_OLD_PORT: '2' }).httpPort).toBe(1);
    expect(values(DEMO, ['--http-port', '5'], { ...base, LAKEBASE_DEMO_SVC_HTTP_PORT: '1' }).httpPort).toBe(5);
    expect(values(DEMO, ['--http-port=6'], base).httpPort).toBe(6);
    expect(values(DEMO, [], { ...base, LAKEBASE_DEMO_SVC_HTTP_PORT: '', LAKEBASE_OLD_PORT: '7' }).httpPort).toBe(7);
    expect(values(DEMO, ['--token', 'flag'], base).token).toBe('flag');
    expect(values(DEMO, [], base).name).toBeUndefined();
    expect(values(DEMO, [], base).verbose).toBe(false);
    expect(values(DEMO, ['--verbose'], base).verbose).toBe(true);
    expect(values(DEMO, [], { ...base, LAKEBASE_DEMO_SVC_VERBOSE: 'yes' }).verbose).toBe(true);
    expect(parseConfig(DEMO, ['--help'], {})).toEqual({ help: true });
    expect(parseConfig(DEMO, ['-h'], {})).toEqual({ help: true });
  });

  it('refuses a missing required option, an unknown flag and a stray argument, naming them', () => {
    expect(refusal(DEMO, [])).toBe('--token is required (the door needs it); or set LAKEBASE_DEMO_SVC_TOKEN');
    expect(refusal(DEMO, ['--token', 't', '--bogus'])).toMatch(/Unknown option '--bogus'/);
    expect(refusal(DEMO, ['--token', 't', 'stray'])).toMatch(/stray/);
    expect(refusal(DEMO, ['--token'])).toMatch(/--token/);
  });

  it('each parser refuses bad text with the option, the text and what it expects', () => {
    expect(parsed(integer({ min: 1, max: 4096, unit: 'megabytes' }), '12x')).toBe('--max-result-mb: "12x" is not a whole number (expected megabytes, 1-4096)');
    expect(parsed(integer({ min: 1 }), '0')).toBe('--max-result-mb: "0" is below 1 (expected a whole number, at least 1)');
    expect(parsed(integer({ max: 9 }), '10')).toBe('--max-result-mb: "10" is above 9 (expected a whole number, at most 9)');
    expect(parsed(integer(), '1.5')).toBe('--max-result-mb: "1.5" is not a whole number (expected a whole number)');
    expect(parsed(integer(), ' 42 ')).toBe(42);
    expect(parsed(port(), '65536')).toBe('--max-result-mb: "65536" is above 65535 (expected a port, 0-65535)');
    expect(parsed(port(), '0x50')).toBe('--max-result-mb: "0x50" is not a whole number (expected a port, 0-65535)');
    expect(parsed(decimal({ min: 0 }), '0.5')).toBe(0.5);
    expect(parsed(decimal({ min: 0 }), 'NaN')).toBe('--max-result-mb: "NaN" is not a number (expected a number, at least 0)');
    expect(parsed(decimal({ above: 0, unit: 'hours' }), '0')).toBe('--max-result-mb: "0" is not above 0 (expected hours, above 0)');
    expect(parsed(bytes({ min: 1024 }), '1000')).toBe('--max-result-mb: "1000" is below 1024 (expected bytes, at least 1024)');
    expect(parsed(megabytes({ min: 1 }), '2')).toBe(2 * 1024 * 1024);
    expect(parsed(megabytes({ min: 1 }), '2.5')).toBe('--max-result-mb: "2.5" is not a whole number (expected megabytes, at least 1)');
    expect(parsed(megabytes({ above: 0, fraction: true }), '0.5')).toBe(512 * 1024);
    expect(parsed(duration('s', { min: 0, fraction: true }), '1.5')).toBe(1500);
    expect(parsed(duration('h', { min: 0 }), '2')).toBe(7_200_000);
    expect(parsed(duration('ms', { min: 0 }), '-1')).toBe('--max-result-mb: "-1" is below 0 (expected milliseconds, at least 0)');
    // a switch takes no value on the command line: its text comes from the environment
    const sw = defineConfig({ service: 't', title: 't', usage: 't', options: { tcpAllowCleartext: option(boolean(), { help: 'x' }) } });
    expect(values(sw, [], { LAKEBASE_T_TCP_ALLOW_CLEARTEXT: 'off' }).tcpAllowCleartext).toBe(false);
    expect(values(sw, [], { LAKEBASE_T_TCP_ALLOW_CLEARTEXT: 'TRUE' }).tcpAllowCleartext).toBe(true);
    expect(refusal(sw, [], { LAKEBASE_T_TCP_ALLOW_CLEARTEXT: 'maybe' }))
      .toBe('LAKEBASE_T_TCP_ALLOW_CLEARTEXT (--tcp-allow-cleartext): "maybe" is not true or false (expected true or false)');
    expect(refusal(sw, ['--tcp-allow-cleartext=yes'])).toMatch(/--tcp-allow-cleartext' does not take an argument/);
    expect(parsed(url(), 'http://127.0.0.1:9870')).toBe('http://127.0.0.1:9870');
    expect(parsed(url(), 'localhost:9870')).toMatch(/^--max-result-mb: "localhost:9870" has scheme localhost, not http or https \(expected an http\(s\) URL/);
    expect(parsed(url(), 'nope')).toMatch(/^--max-result-mb: "nope" is not a URL \(expected an http\(s\) URL such as/);
    expect(parsed(oneOf(['local', 'object-store']), 'cloud')).toBe('--max-result-mb: "cloud" is not local or object-store (expected local or object-store)');
    expect(parsed(list(url()), 'http://a:1,,http://b:2')).toEqual(['http://a:1', 'http://b:2']);
    expect(parsed(list(url()), 'http://a:1,b')).toMatch(/^--max-result-mb: "http:\/\/a:1,b" item 2 \("b"\) is not a URL \(expected a comma-separated list of/);
    expect(parsed(list(text()), ',')).toMatch(/has no items/);
  });

  it('a refusal of an environment value names the variable and the flag', () => {
    expect(refusal(DEMO, [], { LAKEBASE_DEMO_SVC_TOKEN: 't', LAKEBASE_OLD_PORT: 'eighty' }))
      .toBe('LAKEBASE_OLD_PORT (--http-port): "eighty" is not a whole number (expected a port, 0-65535)');
  });

  it('secrets are never echoed: not their value in a refusal, not their default in --help', () => {
    const msg = refusal(DEMO, ['--pin', 'hunter2'], { LAKEBASE_DEMO_SVC_TOKEN: 't' });
    expect(msg).toBe('--pin: the value given is not a whole number (expected a PIN, 1000-9999)');
    expect(msg).not.toContain('hunter2');
    const help = helpText(DEMO);
    expect(help).not.toContain('1234');
    expect(help).toContain('default 4444');
  });

  it('--help lists every option of every service with its flag, every environment name and its default', () => {
    for (const config of [STORAGE_NODE_CONFIG, COMPUTE_CONFIG, CONTROL_PLANE_CONFIG, PROXY_CONFIG] as ServiceConfig<Options>[]) {
      const help = helpText(config);
      for (const [key, opt] of Object.entries(config.options)) {
        expect(help, `${config.service} --${flagName(key)}`).toMatch(new RegExp(`^  --${flagName(key)}\\b`, 'm'));
        for (const name of envNames(config, key)) expect(help, `${config.service} ${name}`).toContain(name);
        const def = opt.spec.required ? 'required' : opt.spec.defaultText ?? (opt.spec.default === undefined || opt.spec.secret ? undefined : opt.parser.show(opt.spec.default));
        if (def !== undefined) expect(help.replace(/\s+/g, ' '), `${config.service} --${flagName(key)} default`).toContain(def === 'required' ? 'required' : `default ${def}`);
      }
    }
  });

  it('keeps every environment name documented before the naming rule', () => {
    const all = (config: ServiceConfig<Options>) => Object.keys(config.options).flatMap((k) => envNames(config, k));
    expect(all(STORAGE_NODE_CONFIG)).toEqual(expect.arrayContaining([
      'LAKEBASE_STORAGE_DATA_DIR', 'LAKEBASE_STORAGE_HOST', 'LAKEBASE_STORAGE_PORT', 'LAKEBASE_STORAGE_TOKEN', 'LAKEBASE_DURABILITY',
      'LAKEBASE_RETENTION_HOURS', 'LAKEBASE_STORAGE_MAX_BATCH_BYTES', 'LAKEBASE_STORAGE_FREEZE_MB', 'LAKEBASE_STORAGE_NODE_PORT',
    ]));
    expect(all(COMPUTE_CONFIG)).toEqual(expect.arrayContaining([
      'LAKEBASE_COMPUTE_STORAGE_URL', 'LAKEBASE_COMPUTE_HOST', 'LAKEBASE_COMPUTE_PORT', 'LAKEBASE_COMPUTE_TOKEN', 'LAKEBASE_COMPUTE_API_TOKEN',
      'LAKEBASE_STORAGE_TOKEN', 'LAKEBASE_COMPUTE_LISTEN_HOST', 'LAKEBASE_COMPUTE_ADVERTISE_HOST', 'LAKEBASE_COMPUTE_POOL_SIZE',
      'LAKEBASE_COMPUTE_MEMORY_BUDGET_MB', 'LAKEBASE_COMPUTE_SHARED_BUFFERS_MB', 'LAKEBASE_COMPUTE_PAGE_CACHE_MB',
      'LAKEBASE_COMPUTE_IDLE_IN_TRANSACTION_TIMEOUT_S', 'LAKEBASE_COMPUTE_CANCEL_GRACE_MS', 'LAKEBASE_COMPUTE_MAX_RESULT_MB',
    ]));
    expect(all(CONTROL_PLANE_CONFIG)).toEqual(expect.arrayContaining([
      'LAKEBASE_STORAGE_URL', 'LAKEBASE_STORAGE_TOKEN', 'LAKEBASE_CONTROL_PLANE_COMPUTE_HOST', 'LAKEBASE_CONTROL_PLANE_HOST_HEARTBEAT_TIMEOUT_S', 'LAKEBASE_COMPUTE_API_TOKEN', 'LAKEBASE_CONTROL_PLANE_HOST',
      'LAKEBASE_CONTROL_PLANE_PORT', 'LAKEBASE_API_KEY', 'LAKEBASE_INTERNAL_TOKEN', 'LAKEBASE_COMPUTE_TOKEN', 'LAKEBASE_BASE_DOMAIN',
      'LAKEBASE_PROXY_TCP_PORT', 'LAKEBASE_CONNECTION_HOST', 'LAKEBASE_SECRET_KEY',
    ]));
    expect(all(PROXY_CONFIG)).toEqual(expect.arrayContaining([
      'LAKEBASE_PROXY_DIRECTORY_URL', 'LAKEBASE_PROXY_DIRECTORY_TOKEN', 'LAKEBASE_PROXY_HTTP_PORT', 'LAKEBASE_PROXY_TCP_PORT',
      'LAKEBASE_PROXY_MOCK_AUTH_SECRET', 'LAKEBASE_PROXY_VERIFIER_TTL_MS',
    ]));
  });

  it('the control plane refuses a non-numeric port instead of passing NaN on (the named bug)', () => {
    const required = ['--compute-host', 'http://127.0.0.1:9872', '--api-key', 'k', '--internal-token', 'i', '--compute-token', 'c'];
    expect(refusal(CONTROL_PLANE_CONFIG, [...required, '--proxy-port', '54x2'])).toBe('--proxy-port: "54x2" is not a whole number (expected a port, 0-65535)');
    expect(refusal(CONTROL_PLANE_CONFIG, required, { LAKEBASE_CONTROL_PLANE_PORT: 'abc' })).toMatch(/^LAKEBASE_CONTROL_PLANE_PORT \(--port\): "abc" is not a whole number/);
    const v = values(CONTROL_PLANE_CONFIG, required, { LAKEBASE_PROXY_TCP_PORT: '6543' });
    expect(v.proxyPort).toBe(6543);
    expect(v.port).toBe(9871);
    expect(v.computeHost).toEqual(['http://127.0.0.1:9872']);
  });
});

// ---- each service as a process --------------------------------------------------------------------------------

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function run(script: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('LAKEBASE_')) base[k] = v;
  return new Promise((resolve) => {
    execFile(process.execPath, [script, ...args], { cwd: ROOT, env: { ...base, LAKEBASE_LOG_LEVEL: 'silent', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const SERVICES: [string, ServiceConfig<Options>, string[], string[]][] = [
  ['storage-node/main.ts', STORAGE_NODE_CONFIG, ['--port', '12x'], ['--port']],
  ['compute/main.ts', COMPUTE_CONFIG, ['--token', 't', '--port', '12x'], ['--port']],
  ['control-plane/main.ts', CONTROL_PLANE_CONFIG, ['--compute-host', 'http://127.0.0.1:1', '--api-key', 'k', '--internal-token', 'i', '--compute-token', 'c', '--proxy-port', 'abc'], ['--proxy-port']],
  ['proxy/main.ts', PROXY_CONFIG, ['--directory-url', 'http://127.0.0.1:1/internal', '--http-port', '12x'], ['--http-port']],
];

describe('each service main.ts', () => {
  it.each(SERVICES)('%s --help exits 0 listing its options; a bad value exits 2 naming the option', async (script, config, bad, named) => {
    const [help, refused] = await Promise.all([run(script, ['--help']), run(script, bad)]);
    expect(help.code, help.stderr).toBe(0);
    for (const key of Object.keys(config.options)) {
      expect(help.stdout).toContain(`--${flagName(key)}`);
      expect(help.stdout).toContain(envNames(config, key)[0]);
    }
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(new RegExp(`^error: ${named[0]}: "[^"]+" is not a whole number`));
  });

  it('an alias variable with a bad value is refused naming the variable', async () => {
    const r = await run('storage-node/main.ts', [], { LAKEBASE_STORAGE_PORT: 'eighty' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error: LAKEBASE_STORAGE_PORT (--port): "eighty" is not a whole number (expected a port, 0-65535)');
  });

  it('lakebase start refuses a bad port before starting anything, the CLI way', async () => {
    const r = await run('cli/lakebase.ts', ['start', '--storage-port', 'x1'], { LAKEBASE_DIR: '/nonexistent/lakebase-config-test' });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('lakebase: --storage-port: "x1" is not a whole number (expected a port, 0-65535); `lakebase help` shows the usage\n');
  });
});
