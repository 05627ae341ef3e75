// Named prepared statements and portals of the extended query protocol live in the one backend that all of a
// compute's sessions share. So that two sessions can both prepare "s1" (node-postgres names statements after the
// query's `name`), the server rewrites every non-empty statement and portal name in Parse, Bind, Describe, Close
// and Execute to `<session prefix><name>`, as PgBouncer 1.21+ does in transaction mode. Responses carry no names.
// It also puts a rewritten query text (sql-scan.ts: identity and session-scoped DISCARD) into a Parse or Query.
import { BodyReader, cstring, message, type Message } from '../../../lib/pg-wire/index.ts';

function renamed(prefix: string, name: string): string {
  return name === '' ? '' : prefix + name;
}

/** What a rewritten message did to the session's named statements (for clean-up and replay). */
export type NameEffect =
  | { kind: 'parse'; name: string; bytes: Uint8Array }
  | { kind: 'close'; name: string }
  | null;

/** `sql`: for a Parse or a Query, the text to put in place of the client's (see sqlTraits' `rewritten`). */
export function rewriteNames(frame: Message, prefix: string, sql?: string | null): { bytes: Uint8Array; effect: NameEffect } {
  const r = new BodyReader(frame.body);
  switch (frame.type) {
    case 'P': {
      const name = r.cstring();
      if (name === '' && !sql) return { bytes: frame.bytes, effect: null };
      if (sql) r.cstring();
      const query = sql ? cstring(sql) : new Uint8Array(0);
      const bytes = message('P', cstring(renamed(prefix, name)), query, r.rest());
      if (name === '') return { bytes, effect: null };
      return { bytes, effect: { kind: 'parse', name, bytes } };
    }
    case 'B': {
      const portal = r.cstring();
      const stmt = r.cstring();
      if (portal === '' && stmt === '') return { bytes: frame.bytes, effect: null };
      return { bytes: message('B', cstring(renamed(prefix, portal)), cstring(renamed(prefix, stmt)), r.rest()), effect: null };
    }
    case 'D':
    case 'C': {
      const kind = r.byte();
      const name = r.cstring();
      if (name === '') return { bytes: frame.bytes, effect: null };
      const bytes = message(frame.type, new Uint8Array([kind]), cstring(prefix + name));
      const effect: NameEffect = frame.type === 'C' && kind === 0x53 /* S */ ? { kind: 'close', name } : null;
      return { bytes, effect };
    }
    case 'Q':
      return { bytes: sql ? message('Q', cstring(sql)) : frame.bytes, effect: null };
    case 'E': {
      const portal = r.cstring();
      if (portal === '') return { bytes: frame.bytes, effect: null };
      return { bytes: message('E', cstring(prefix + portal), r.rest()), effect: null };
    }
    default:
      return { bytes: frame.bytes, effect: null };
  }
}
