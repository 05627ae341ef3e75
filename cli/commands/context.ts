// What every command gets: its arguments, the API, and where to print.
import type { Api } from './api.ts';
import type { Out } from './output.ts';

export interface CommandContext {
  args: string[];
  api: Api;
  out: Out;
  /** The proxy's Postgres address, for `sql`. */
  pg?: { host: string; port: number };
}
