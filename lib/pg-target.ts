// Where a lakebase connection URI leads, as `pg` options: the URI's role, password and database, and the endpoint
// named in `options` (which the proxy reads when the host is an IP address). `via` overrides the host and port,
// for URIs whose host is a name under the base domain that does not resolve on this machine.
import type { ClientConfig } from 'pg';

export interface PgAddress {
  host: string;
  port: number;
}

/** The endpoint a URI names: in `options=endpoint=...`, or as its host's first label. */
export function endpointOfUri(url: URL): string {
  return url.searchParams.get('options')?.match(/endpoint=([^ ]+)/)?.[1] ?? url.hostname.split('.')[0];
}

/** A URI's host when it can be dialled as is (an IP address or a single-label name), else undefined. */
export function dialableHost(url: URL): string | undefined {
  const h = url.hostname.replace(/^\[|\]$/g, '');
  return /^[\d.]+$/.test(h) || h.includes(':') || !h.includes('.') ? h : undefined;
}

export function pgConfigFromUri(uri: string, via?: PgAddress): ClientConfig & { host?: string } {
  const url = new URL(uri);
  const host = via?.host ?? dialableHost(url) ?? url.hostname;
  return {
    host,
    port: via?.port ?? Number(url.port || 5432),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.slice(1)),
    options: `endpoint=${endpointOfUri(url)}`,
  };
}
