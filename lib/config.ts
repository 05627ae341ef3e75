// One way for every process to read its configuration. A service declares each option once (its flag, parser,
// default, help line, whether it is a secret, older environment names still honoured) and gets from that:
// argv + environment parsing (a flag wins over the environment), `--help` text, and refusals that name the
// option, what was wrong and what is expected. Environment names follow one rule, LAKEBASE_<SERVICE>_<OPTION>
// (`--http-port` of the proxy: LAKEBASE_PROXY_HTTP_PORT); names documented before the rule stay as aliases.
// An empty value (flag or variable) counts as not given. Secrets are never echoed: not in --help, not in errors.
// Sizes and durations come out in bytes and milliseconds, whatever unit their flag is written in (`--freeze-mb`).
import { parseArgs } from 'node:util';
import { ServiceError } from './errors.ts';

// ---- parsers ------------------------------------------------------------------------------------------------

/** Turns the text of a flag or variable into a typed value, or refuses it (throw `refuse(...)`). */
export interface Parser<T> {
  /** Placeholder in --help: `--port N`. Empty for a boolean flag, which takes no value. */
  readonly metavar: string;
  /** What a good value looks like, for refusals and --help: "a port, 0-65535". */
  readonly expected: string;
  parse(raw: string): T;
  /** A value as the user would write it (defaults in --help). */
  show(value: T): string;
}

/** Thrown by a parser: what is wrong with the text (the option, the text and the expectation are added). */
export class BadValue extends Error {
  override name = 'BadValue';
}

export function refuse(problem: string): never {
  throw new BadValue(problem);
}

/** A parser from its parts; `show` defaults to String. */
export function parser<T>(p: { metavar: string; expected: string; parse(raw: string): T; show?(value: T): string }): Parser<T> {
  return { metavar: p.metavar, expected: p.expected, parse: p.parse, show: p.show ?? ((x: T) => String(x)) };
}

interface Range {
  min?: number;
  max?: number;
}

const MiB = 1024 * 1024;

function rangeText(r: Range): string {
  if (r.min !== undefined && r.max !== undefined) return `${r.min}-${r.max}`;
  if (r.min !== undefined) return `at least ${r.min}`;
  if (r.max !== undefined) return `at most ${r.max}`;
  return 'any';
}

/** The number `raw` spells: whole unless `fraction`, within `r`. */
function numberIn(raw: string, r: Range & { fraction?: boolean; above?: number }): number {
  const text = raw.trim();
  const n = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text) ? Number(text) : NaN;
  if (r.fraction ? !Number.isFinite(n) : !Number.isSafeInteger(n)) refuse(r.fraction ? 'is not a number' : 'is not a whole number');
  if (r.above !== undefined && !(n > r.above)) refuse(`is not above ${r.above}`);
  if (r.min !== undefined && n < r.min) refuse(`is below ${r.min}`);
  if (r.max !== undefined && n > r.max) refuse(`is above ${r.max}`);
  return n;
}

function numberExpected(what: string, r: Range & { above?: number }): string {
  if (r.above !== undefined && r.max === undefined && r.min === undefined) return `${what}, above ${r.above}`;
  const range = rangeText(r);
  return range === 'any' ? what : `${what}, ${range}`;
}

/** A whole number, e.g. `integer({ min: 0, unit: 'connections' })`. */
export function integer(o: Range & { unit?: string; metavar?: string } = {}): Parser<number> {
  return parser({ metavar: o.metavar ?? 'N', expected: numberExpected(o.unit ?? 'a whole number', o), parse: (raw) => numberIn(raw, o) });
}

/** A number that may have a fraction (`0.5`), e.g. hours of retention. */
export function decimal(o: Range & { above?: number; unit?: string; metavar?: string } = {}): Parser<number> {
  return parser({ metavar: o.metavar ?? 'N', expected: numberExpected(o.unit ?? 'a number', o), parse: (raw) => numberIn(raw, { ...o, fraction: true }) });
}

/** A TCP port; 0 lets the system pick a free one. */
export function port(): Parser<number> {
  return integer({ min: 0, max: 65535, unit: 'a port' });
}

/** A size in bytes, written as a whole number of bytes. */
export function bytes(o: Range = {}): Parser<number> {
  return integer({ ...o, unit: 'bytes' });
}

/** A size written in MiB (`--freeze-mb 16`), given as bytes. Whole MiB unless `fraction`; `min`/`max` in MiB. */
export function megabytes(o: Range & { above?: number; fraction?: boolean } = {}): Parser<number> {
  return parser({
    metavar: 'MB',
    expected: numberExpected('megabytes', o),
    parse: (raw) => Math.round(numberIn(raw, o) * MiB),
    show: (b) => String(b / MiB),
  });
}

const UNIT_MS = { ms: 1, s: 1000, h: 3_600_000 } as const;
const UNIT_NAME = { ms: 'milliseconds', s: 'seconds', h: 'hours' } as const;

/** A duration written in `unit` (the flag says which: `--lock-ms`, `--timeout-s`), given in milliseconds. */
export function duration(unit: keyof typeof UNIT_MS, o: Range & { fraction?: boolean } = {}): Parser<number> {
  const k = UNIT_MS[unit];
  return parser({
    metavar: 'N',
    expected: numberExpected(UNIT_NAME[unit], o),
    parse: (raw) => numberIn(raw, o) * k,
    show: (ms) => String(ms / k),
  });
}

const TRUE = ['true', '1', 'yes', 'on'];
const FALSE = ['false', '0', 'no', 'off'];

/** A switch: the flag alone turns it on; a variable says true/false (1/0, yes/no, on/off). */
export function boolean(): Parser<boolean> {
  return parser({
    metavar: '',
    expected: 'true or false',
    parse: (raw) => (TRUE.includes(raw.trim().toLowerCase()) ? true : FALSE.includes(raw.trim().toLowerCase()) ? false : refuse('is not true or false')),
  });
}

/** Any text (a host name, a token, a path). */
export function text(metavar = 'TEXT'): Parser<string> {
  return parser({ metavar, expected: 'text', parse: (raw) => raw });
}

/** An http(s) URL, kept as written. */
export function url(): Parser<string> {
  return parser({
    metavar: 'URL',
    expected: 'an http(s) URL such as http://127.0.0.1:9870',
    parse: (raw) => {
      let u: URL;
      try {
        u = new URL(raw);
      } catch {
        return refuse('is not a URL');
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') refuse(`has scheme ${u.protocol.slice(0, -1)}, not http or https`);
      return raw;
    },
  });
}

/** One of a few words. */
export function oneOf<const W extends string>(words: readonly W[]): Parser<W> {
  return parser({
    metavar: words.join('|'),
    expected: words.join(' or '),
    parse: (raw) => (words.includes(raw as W) ? (raw as W) : refuse(`is not ${words.join(' or ')}`)),
  });
}

/** Comma-separated items, each through `item` (empty items are skipped; at least one). */
export function list<T>(item: Parser<T>, metavar = `${item.metavar}[,${item.metavar}...]`): Parser<T[]> {
  return parser({
    metavar,
    expected: `a comma-separated list of ${item.expected}`,
    parse: (raw) => {
      const items = raw.split(',').filter((s) => s.trim() !== '');
      if (items.length === 0) refuse('has no items');
      return items.map((s, i) => {
        try {
          return item.parse(s);
        } catch (e) {
          if (e instanceof BadValue) refuse(`item ${i + 1} (${JSON.stringify(s)}) ${e.message}`);
          throw e;
        }
      });
    },
    show: (xs) => xs.map((x) => item.show(x)).join(','),
  });
}

// ---- options and services ------------------------------------------------------------------------------------

export interface OptionSpec<T> {
  /** One line of --help (may be long: it is wrapped). */
  help: string;
  default?: T;
  /** Shown as the default in --help when the service itself picks it (no `default` here), or to explain one. */
  defaultText?: string;
  /** Refuse to start without it; a string says why (shown in the refusal). */
  required?: boolean | string;
  /** Never printed: not its default in --help, not its value in a refusal. */
  secret?: boolean;
  /** Environment names honoured after the canonical one, in order (names documented before the naming rule). */
  aliases?: readonly string[];
  /** Replaces the canonical environment name (null: none), for a command whose names predate the rule. */
  env?: string | null;
}

/** An option: its parser and spec; `Always` says whether a value is always there (a default, or required). */
export interface Option<T, Always extends boolean = boolean> {
  readonly parser: Parser<T>;
  readonly spec: OptionSpec<T>;
  readonly always: Always;
}

/** Declares an option; its key in the options record (camelCase) gives the flag: `maxResultMb` -> `--max-result-mb`. */
export function option<T>(p: Parser<T>, spec: OptionSpec<NoInfer<T>> & ({ default: NoInfer<T> } | { required: true | string })): Option<T, true>;
export function option<T>(p: Parser<T>, spec: OptionSpec<NoInfer<T>>): Option<T, false>;
export function option<T>(p: Parser<T>, spec: OptionSpec<T>): Option<T> {
  return { parser: p, spec, always: spec.default !== undefined || Boolean(spec.required) };
}

/** A switch flag (`--no-metrics`), false unless given. */
export function flag(spec: Omit<OptionSpec<boolean>, 'default'>): Option<boolean, true> {
  return option(boolean(), { ...spec, default: false });
}

/** Option records are keyed by camelCase names. Method syntax in Parser keeps Option<number> an Option<unknown>. */
export type Options = Record<string, Option<unknown>>;

export type Values<O extends Options> = {
  [K in keyof O]: O[K] extends Option<infer T, true> ? T : O[K] extends Option<infer T, false> ? T | undefined : never;
};

export interface ServiceConfig<O extends Options> {
  /** The folder name (`storage-node`): gives the environment prefix LAKEBASE_STORAGE_NODE_. */
  service: string;
  /** First line(s) of --help. */
  title: string;
  /** How the process is run, e.g. `node proxy/main.ts --directory-url URL [options]`. */
  usage: string;
  options: O;
  /** Text after the options (other environment, signals, logs). */
  notes?: string;
}

/** Declares a service's configuration (identity function, for inference of the options' types). */
export function defineConfig<O extends Options>(config: ServiceConfig<O>): ServiceConfig<O> {
  return config;
}

/** `maxResultMb` -> `max-result-mb`. */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The naming rule: `envName('storage-node', 'data-dir')` -> LAKEBASE_STORAGE_NODE_DATA_DIR. */
export function envName(service: string, flagOrKey: string): string {
  const upper = (s: string) => s.replace(/-/g, '_').toUpperCase();
  return `LAKEBASE_${upper(service)}_${upper(flagName(flagOrKey))}`;
}

/** Every environment name of an option, canonical first. */
export function envNames(config: ServiceConfig<Options>, key: string): string[] {
  const spec = config.options[key].spec;
  const canonical = spec.env === undefined ? envName(config.service, key) : spec.env;
  return [...(canonical === null ? [] : [canonical]), ...(spec.aliases ?? [])];
}

/** A bad flag or variable: refused before the service starts (main exits 2). */
export class ConfigError extends ServiceError {
  override name = 'ConfigError';
  constructor(message: string) {
    super(400, 'bad_option', message, { kind: 'user' });
  }
}

// ---- parsing --------------------------------------------------------------------------------------------------

type Env = Record<string, string | undefined>;

/** Where a value came from, as a refusal names it: `--port` or `LAKEBASE_PROXY_HTTP_PORT (--http-port)`. */
function sourceName(flagText: string, envVar: string | undefined): string {
  return envVar === undefined ? flagText : `${envVar} (${flagText})`;
}

function parseOne<T>(key: string, opt: Option<T>, raw: string, envVar: string | undefined): T {
  const flagText = `--${flagName(key)}`;
  try {
    return opt.parser.parse(raw);
  } catch (e) {
    if (!(e instanceof BadValue)) throw e;
    const shown = opt.spec.secret ? 'the value given' : JSON.stringify(raw);
    throw new ConfigError(`${sourceName(flagText, envVar)}: ${shown} ${e.message} (expected ${opt.parser.expected})`);
  }
}

/** argv through util.parseArgs: every option a string, switches boolean; usage errors become ConfigErrors. */
function readArgv(options: Options, argv: readonly string[]): { flags: Record<string, string | boolean | undefined>; help: boolean } {
  const shape: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [key, opt] of Object.entries(options)) shape[flagName(key)] = { type: opt.parser.metavar === '' ? 'boolean' : 'string' };
  try {
    const { values } = parseArgs({ args: [...argv], options: shape, strict: true, allowPositionals: false });
    return { flags: values as Record<string, string | boolean | undefined>, help: values.help === true };
  } catch (e) {
    // Node's texts ("Unknown option '--x'", "Option '--port <value>' argument missing") name the flag already
    if (e instanceof TypeError && String((e as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS')) throw new ConfigError(e.message);
    throw e;
  }
}

/** The first non-empty value among the flag and the environment names, with the variable it came from. */
function rawValue(config: ServiceConfig<Options>, key: string, given: string | boolean | undefined, env: Env): { raw: string; envVar?: string } | undefined {
  if (given === true) return { raw: 'true' };
  if (typeof given === 'string' && given !== '') return { raw: given };
  for (const name of envNames(config, key)) {
    const v = env[name];
    if (v !== undefined && v !== '') return { raw: v, envVar: name };
  }
  return undefined;
}

export type Parsed<O extends Options> = { help: true } | { help: false; values: Values<O> };

/**
 * The configuration from `argv` and `env`: flag, else the canonical variable, else an alias, else the default.
 * Throws a ConfigError for an unknown flag, a value its parser refuses, or a required option not given.
 */
export function parseConfig<O extends Options>(config: ServiceConfig<O>, argv: readonly string[], env: Env): Parsed<O> {
  const { flags, help } = readArgv(config.options, argv);
  if (help) return { help: true };
  const values: Record<string, unknown> = {};
  for (const [key, opt] of Object.entries(config.options)) {
    const found = rawValue(config, key, flags[flagName(key)], env);
    if (found) values[key] = parseOne(key, opt, found.raw, found.envVar);
    else if (opt.spec.default !== undefined) values[key] = opt.spec.default;
    else if (opt.spec.required) {
      const why = typeof opt.spec.required === 'string' ? ` (${opt.spec.required})` : '';
      throw new ConfigError(`--${flagName(key)} is required${why}; or set ${envNames(config, key).join(' or ')}`);
    }
  }
  return { help: false, values: values as Values<O> };
}

// ---- --help ---------------------------------------------------------------------------------------------------

const HELP_COLUMN = 30;
const HELP_WIDTH = 118;

/** Words of `s` in lines of at most `width` characters (a longer word gets its own line). */
function wrap(s: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of s.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

function optionHelp(config: ServiceConfig<Options>, key: string): string[] {
  const opt = config.options[key];
  const { spec, parser: p } = opt;
  const head = `  --${flagName(key)}${p.metavar ? ` ${p.metavar}` : ''}`;
  const names = envNames(config, key);
  const env = names.length === 0 ? '' : `env ${names[0]}${names.length > 1 ? ` (also ${names.slice(1).join(', ')})` : ''}`;
  const def = spec.required ? 'required' : spec.defaultText !== undefined ? `default ${spec.defaultText}` : spec.default !== undefined && !spec.secret ? `default ${p.show(spec.default)}` : '';
  const body = wrap(spec.help, HELP_WIDTH - HELP_COLUMN);
  const both = [env, def].filter(Boolean).join('; ');
  const tail = both.length <= HELP_WIDTH - HELP_COLUMN ? (both ? [both] : []) : [env, def].flatMap((t) => wrap(t, HELP_WIDTH - HELP_COLUMN));
  const pad = ' '.repeat(HELP_COLUMN);
  const first = head.length < HELP_COLUMN - 1 ? [head.padEnd(HELP_COLUMN) + (body.shift() ?? '')] : [head, ...(body.length ? [pad + body.shift()] : [])];
  return [...first, ...body.map((l) => pad + l), ...tail.map((l) => pad + l)];
}

/** --help: the title, usage, each option with its variables and default, then the notes. */
export function helpText(config: ServiceConfig<Options>): string {
  return [
    config.title,
    '',
    `Usage: ${config.usage}`,
    '',
    'Options (a flag wins over its environment variable; an empty value counts as not given):',
    ...Object.keys(config.options).flatMap((k) => optionHelp(config, k)),
    '  -h, --help'.padEnd(HELP_COLUMN) + 'this text',
    ...(config.notes ? ['', config.notes] : []),
  ].join('\n');
}

// ---- for main.ts -----------------------------------------------------------------------------------------------

/** Refuses to start: `error: <message>`, then the help, on stderr; exit code 2. `log` records it too. */
export function exitWithUsage(config: ServiceConfig<Options>, message: string, log?: (message: string) => void): never {
  log?.(message);
  process.stderr.write(`error: ${message}\n\n${helpText(config)}\n`);
  process.exit(2);
}

/**
 * The process's configuration (process.argv and process.env by default). `--help` prints the help and exits 0;
 * a bad option prints the refusal and the help and exits 2.
 */
export function readConfig<O extends Options>(
  config: ServiceConfig<O>,
  opts: { argv?: readonly string[]; env?: Env; log?: (message: string) => void } = {},
): Values<O> {
  let parsed: Parsed<O>;
  try {
    parsed = parseConfig(config, opts.argv ?? process.argv.slice(2), opts.env ?? process.env);
  } catch (e) {
    if (e instanceof ConfigError) exitWithUsage(config, e.message, opts.log);
    throw e;
  }
  if (parsed.help) {
    process.stdout.write(helpText(config) + '\n');
    process.exit(0);
  }
  return parsed.values;
}
