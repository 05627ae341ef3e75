// pg_dump for the pglite engine (Postgres 18): Debian's pg_dump 15 refuses a newer server, so this runs PGlite's
// own pg_dump 18 build (@electric-sql/pglite-tools, WebAssembly) against the proxy. That build speaks the wire
// protocol through a PGlite instance's execProtocolRawStream; the object handed to it here forwards those bytes to
// a real TCP connection instead (BlockingConnection), so the dump goes through the proxy like any client's.
import type { PGlite } from '@electric-sql/pglite';
import { pgDump } from '@electric-sql/pglite-tools/pg_dump';
import { BlockingConnection } from './blocking-connection.ts';

export interface DumpTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** The `options` startup parameter (endpoint=...), unless the password names the endpoint. */
  options?: string;
}

/** A libpq keyword/value connection string, each value quoted. */
function conninfo(t: DumpTarget): string {
  const q = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const options = t.options ? ` options=${q(t.options)}` : '';
  // sslmode=disable: the build has no TLS.
  return `dbname=${q(t.database)} user=${q(t.user)} password=${q(t.password)}${options} sslmode=disable`;
}

/**
 * The part of PGlite that pgDump uses: execProtocolRawStream answers synchronously, as PGlite does; query and exec
 * are its save and restore of the (shared) session's search_path, which a connection of its own does not need.
 */
function pgliteOver(conn: BlockingConnection, searchPath: string): PGlite {
  const shim = {
    query: async () => ({ rows: [{ search_path: searchPath }], fields: [], affectedRows: 0 }),
    exec: async () => [],
    execProtocolRawStream: (bytes: Uint8Array, opts: { onRawData: (data: Uint8Array) => void }) => {
      const answer = conn.exchange(bytes);
      if (answer.length > 0) opts.onRawData(answer);
      return Promise.resolve();
    },
  };
  return shim as unknown as PGlite;
}

/** A plain-SQL dump of `t`'s database (INSERT statements: PGlite's pg_dump always adds --inserts). */
export async function wasmDump(t: DumpTarget, extraArgs: string[] = []): Promise<string> {
  const conn = await BlockingConnection.open(t.host, t.port);
  // Emscripten's exit sets process.exitCode to pg_dump's status; the CLI's own exit status is not pg_dump's.
  const exitCode = process.exitCode;
  try {
    const file = await pgDump({ pg: pgliteOver(conn, '"$user", public'), args: [...extraArgs, '-d', conninfo(t)] });
    return await file.text();
  } finally {
    process.exitCode = exitCode;
    await conn.close();
  }
}
