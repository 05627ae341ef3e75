// Where a client names its endpoint, and how ids are normalised (Neon's rules, reference §1.2 and §2.4).
import net from 'node:net';

/** Lower-cases and strips the `-pooler` / `-local-proxy` suffixes: both name the same endpoint. */
export function normalizeEndpointId(id: string): string {
  const lower = id.toLowerCase();
  for (const suffix of ['-pooler', '-local-proxy']) {
    if (lower.endsWith(suffix) && lower.length > suffix.length) return lower.slice(0, -suffix.length);
  }
  return lower;
}

export function isValidEndpointId(id: string): boolean {
  return /^[A-Za-z0-9-]+$/.test(id);
}

/** Splits a startup `options` value on unescaped whitespace, as Postgres does (backslash escapes). */
export function splitOptions(options: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  for (let i = 0; i < options.length; i++) {
    const ch = options[i];
    if (ch === '\\' && i + 1 < options.length) {
      cur += options[++i];
      has = true;
    } else if (/\s/.test(ch)) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (has) out.push(cur);
  return out;
}

function escapeOption(token: string): string {
  return token.replace(/[\\\s]/g, (c) => '\\' + c);
}

/**
 * The endpoint named in `options` (`endpoint=<id>` or `project=<id>`; two such items count as none, as in
 * Neon) and the options left to forward to Postgres. `neon_*` items are Neon's and are dropped too.
 */
export function endpointFromOptions(options: string | undefined): { endpoint: string | null; forward: string } {
  if (!options) return { endpoint: null, forward: '' };
  const tokens = splitOptions(options);
  const found: string[] = [];
  const keep: string[] = [];
  for (const t of tokens) {
    const m = /^(?:endpoint|project)=(.*)$/.exec(t);
    if (m) found.push(m[1]);
    else if (!/^neon_/.test(t)) keep.push(t);
  }
  return { endpoint: found.length === 1 ? found[0] : null, forward: keep.map(escapeOption).join(' ') };
}

/** The first label of `host` when it sits directly under one of `baseDomains` and is not api/apiauth. */
export function endpointFromHost(hostHeader: string | undefined, baseDomains: readonly string[]): string | null {
  if (!hostHeader) return null;
  const host = stripPort(hostHeader).toLowerCase();
  const dot = host.indexOf('.');
  if (dot <= 0) return null;
  const label = host.slice(0, dot);
  const rest = host.slice(dot + 1);
  if (label === 'api' || label === 'apiauth') return null;
  return baseDomains.some((d) => d.toLowerCase() === rest) ? label : null;
}

/** The first label of the `address=<host>:<port>` that a string `wsProxy` appends (not for IP literals). */
export function endpointFromAddress(address: string | null | undefined): string | null {
  if (!address) return null;
  const host = stripPort(address);
  if (net.isIP(host) || host.startsWith('[')) return null;
  const dot = host.indexOf('.');
  const label = dot < 0 ? host : host.slice(0, dot);
  return label === '' || label === 'localhost' ? null : label.toLowerCase();
}

/**
 * Neon's "password hack": `endpoint=<id>;<password>` or `endpoint=<id>$<password>` (or `project=`). Split at the
 * first `;` or `$`, which no endpoint id contains, so the password proper may hold either (Neon tries `;` first,
 * which misreads `endpoint=<id>$pa;ss`).
 */
export function parsePasswordHack(password: string): { endpoint: string; password: string } | null {
  const m = /^(?:endpoint|project)=([^;$]*)[;$]([\s\S]*)$/.exec(password);
  return m ? { endpoint: m[1], password: m[2] } : null;
}

/**
 * The endpoint and the password proper of a cleartext password, given the endpoint the connection named otherwise
 * (options, SNI, Host; null if none). Without one the password form names it; with one, a password form naming
 * the same endpoint is unwrapped too (a URI that carries both, e.g. one with `options` added), and any other
 * password is taken as it is, as Neon does.
 */
export function unwrapPassword(password: string, known: string | null): { endpoint: string | null; password: string } {
  const hack = parsePasswordHack(password);
  if (!hack) return { endpoint: known, password };
  if (known === null) return hack;
  return normalizeEndpointId(hack.endpoint) === normalizeEndpointId(known) ? { endpoint: known, password: hack.password } : { endpoint: known, password };
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(0, end + 1);
  }
  const colon = host.lastIndexOf(':');
  return colon >= 0 && host.indexOf(':') === colon ? host.slice(0, colon) : host;
}
