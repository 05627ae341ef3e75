// Whose turn it is on a Postgres connection, read from both directions of the wire: after a client's startup
// packet, password/SASL message, Query or Sync, the server owes an answer until it asks for the next
// authentication step or says ReadyForQuery. BlockingConnection uses it to know when an answer is complete,
// which is what a PGlite instance's execProtocolRawStream guarantees to PGlite's pg_dump.
import { AUTH_CLEARTEXT_PASSWORD, AUTH_MD5_PASSWORD, AUTH_SASL, AUTH_SASL_CONTINUE, MessageReader, parseStartup, readInt32 } from '../../lib/pg-wire/index.ts';

/** Authentication requests that wait for the client's next message (AuthenticationOk and SASLFinal do not). */
const ASKS_CLIENT = new Set([AUTH_CLEARTEXT_PASSWORD, AUTH_MD5_PASSWORD, AUTH_SASL, AUTH_SASL_CONTINUE]);

export class Turns {
  private readonly client = new MessageReader();
  private readonly server = new MessageReader();
  private startupSent = false;
  /** Single-byte answers owed (to SSLRequest and GSSENCRequest). */
  private rawBytes = 0;
  /** The server owes the next authentication step or the end of the startup. */
  private authStep = false;
  /** ReadyForQuery messages owed (one per Query and per Sync). */
  private syncs = 0;

  /** True while the server owes an answer to what the client sent. */
  get serverOwes(): boolean {
    return this.rawBytes > 0 || this.authStep || this.syncs > 0;
  }

  /** Bytes the client sent. */
  sent(bytes: Uint8Array): void {
    this.client.push(bytes);
    while (!this.startupSent) {
      const packet = this.client.nextStartup();
      if (!packet) return;
      const st = parseStartup(packet);
      if (st.kind === 'ssl' || st.kind === 'gssenc') this.rawBytes++;
      else if (st.kind === 'startup') {
        this.startupSent = true;
        this.authStep = true;
      }
    }
    for (let m = this.client.next(); m; m = this.client.next()) {
      if (m.type === 'p') this.authStep = true;
      else if (m.type === 'Q' || m.type === 'S') this.syncs++;
    }
  }

  /** Bytes the server sent. */
  received(bytes: Uint8Array): void {
    let rest = bytes;
    while (this.rawBytes > 0 && rest.length > 0) {
      this.rawBytes--;
      rest = rest.subarray(1);
    }
    this.server.push(rest);
    for (let m = this.server.next(); m; m = this.server.next()) {
      if (m.type === 'R' && ASKS_CLIENT.has(readInt32(m.body, 0))) this.authStep = false;
      else if (m.type === 'Z') {
        if (this.authStep) this.authStep = false;
        else if (this.syncs > 0) this.syncs--;
      }
    }
  }
}
