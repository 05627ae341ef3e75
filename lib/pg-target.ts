// Where a lakebase connection URI leads, as `pg` options: the URI's role, password and database, and the endpoint
// named in `options` (which the proxy reads when the host is an IP address), taken from the password's
// `endpoint=<id>$` prefix when the URI carries it there. `via` overrides the host and port,
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

/** Neon's endpoint-in-the-password form (`endpoint=<id>$<password>`, or `;`), for clients that cannot say it otherwise. */
const PASSWORD_FORM = /^(?:endpoint|project)=([^;$]*)[;$]([\s\S]*)$/;

export function pgConfigFromUri(uri: string, via?: PgAddress): ClientConfig & { host?: string } {
  const url = new URL(uri);
  const host = via?.host ?? dialableHost(url) ?? url.hostname;
  // `pg` says the endpoint in `options`, so the proxy can run SCRAM: the password goes without the prefix
  const given = decodeURIComponent(url.password);
  const form = PASSWORD_FORM.exec(given);
  return {
    host,
    port: via?.port ?? Number(url.port || 5432),
    user: decodeURIComponent(url.username),
    password: form ? form[2] : given,
    database: decodeURIComponent(url.pathname.slice(1)),
    options: `endpoint=${form ? form[1] : endpointOfUri(url)}`,
  };
}
