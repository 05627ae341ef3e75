// The Neon-Connection-String header: database, user, password and endpoint of an HTTP query, with Neon's
// error texts (reference §1.2, get_conn_info). Everything here is a 400.
import net from 'node:net';
import { ProxyError } from '../errors.ts';
import { endpointFromOptions, isValidEndpointId, normalizeEndpointId, unwrapPassword } from '../endpoint-id.ts';

export interface ConnInfo {
  user: string;
  password: string;
  database: string;
  /** Normalised endpoint id (first DNS label, `-pooler` stripped). */
  endpointId: string;
}

const bad = (message: string): ProxyError => new ProxyError(message, 400, 'bad_request');

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw bad('invalid connection string: invalid percent-encoding');
  }
}

export function parseConnectionString(header: string | undefined, authorization: string | undefined): ConnInfo {
  // eslint-disable-next-line no-control-regex
  if (header === undefined || !/^[\x00-\x7f]*$/.test(header)) throw bad('invalid header: neon-connection-string');
  let url: URL;
  try {
    url = new URL(header);
  } catch (err) {
    throw bad(`invalid connection string: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw bad('incorrect scheme');
  const database = decode(url.pathname.replace(/^\//, '').split('/')[0] ?? '');
  if (database === '') throw bad('missing database name');
  const user = decode(url.username);
  if (user === '') throw bad('missing username');
  if (authorization !== undefined || url.password === '') {
    throw bad('missing authentication credentials: required password');
  }
  const given = decode(url.password);
  const host = url.hostname;
  if (host === '' || host === 'localhost' || net.isIP(host) || host.startsWith('[')) {
    // Beyond Neon: a host that names no endpoint (an IP address, localhost) leaves it to `options=endpoint=<id>`
    // or to the password form `endpoint=<id>$<password>`, as on WebSocket and TCP. The password form is the one
    // that survives the driver's poolQueryViaFetch, which rebuilds the string from user, password, host and
    // database only; so one local connection string serves psql, pg and the driver alike. A DNS host keeps Neon's
    // rule: its first label is the endpoint and options are ignored.
    const fromOptions = endpointFromOptions(url.searchParams.get('options') ?? undefined).endpoint;
    const { endpoint, password } = unwrapPassword(given, fromOptions);
    if (endpoint === null) throw bad('missing hostname');
    if (!isValidEndpointId(endpoint)) throw bad(`Project name ('${endpoint}') must contain only alphanumeric characters and hyphen.`);
    return { user, password, database, endpointId: normalizeEndpointId(endpoint) };
  }
  const dot = host.indexOf('.');
  const endpointId = normalizeEndpointId(dot < 0 ? host : host.slice(0, dot));
  return { user, password: unwrapPassword(given, endpointId).password, database, endpointId };
}
