// How a wire client proves who it is to the proxy: a cleartext password (the WebSocket driver's pipelined
// connect; TCP only under TLS or if configured) or a SCRAM-SHA-256 exchange (-PLUS, bound to the TLS channel, when
// the client asks for it over TLS). Failures the client caused are
// SessionErrors (sent as an ErrorResponse); malformed messages are ProtocolErrors (the connection is dropped).
import { BodyReader, authSasl, authSaslContinue, authSaslFinal, decodeUtf8 } from '../../lib/pg-wire/index.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import type { AuthTicket } from '../auth/limits.ts';
import { ScramServer, type ScramKeys } from '../auth/scram.ts';
import { authFailed } from '../errors.ts';
import type { ClientTransport } from './client-transport.ts';
import { type Inbox, MAX_STARTUP_PACKET } from './inbox.ts';

export const MAX_PASSWORD_MESSAGE = 512;

/** A login the proxy refuses with an ErrorResponse of this SQLSTATE (XX000 as Neon's proxy, unless said). */
export class SessionError extends Error {
  override name = 'SessionError';
  readonly code: string;
  constructor(message: string, code = 'XX000') {
    super(message);
    this.code = code;
  }
}

const wrongTag = (type: string): SessionError => new SessionError(`incorrect message tag, expected 'p', got '${type}'`, '08P01');

/** The client's PasswordMessage, as text. */
export async function readPassword(inbox: Inbox): Promise<string> {
  const m = await inbox.message(MAX_PASSWORD_MESSAGE + 4);
  if (m.type !== 'p') throw wrongTag(m.type);
  const end = m.body.indexOf(0);
  if (end < 0) throw new SessionError('Malformed password message: missing terminator', '08P01');
  return decodeUtf8(m.body.subarray(0, end));
}

/** Who logs in by SCRAM, from where, and the connection's tls-server-end-point data (null: no TLS, no PLUS). */
export interface ScramLogin {
  endpoint: string;
  user: string;
  address: string;
  channelBinding: Buffer | null;
}

/**
 * A SCRAM-SHA-256(-PLUS) exchange up to the server signature (AuthenticationSASLFinal), not AuthenticationOk: that
 * comes once the compute accepted the login. Resolves to the keys the client proved it has (its session's to wipe).
 */
export async function scramExchange(transport: ClientTransport, inbox: Inbox, auth: Authenticator, login: ScramLogin): Promise<ScramKeys> {
  const ticket = auth.admit(login.endpoint, login.user, login.address);
  try {
    return await scramSteps(transport, inbox, auth, login, ticket);
  } finally {
    ticket.release(); // a client gone mid-exchange, or a directory error: undecided, not a failure
  }
}

async function scramSteps(transport: ClientTransport, inbox: Inbox, auth: Authenticator, login: ScramLogin, ticket: AuthTicket): Promise<ScramKeys> {
  const { user } = login;
  const { verifier } = await auth.verifier(login.endpoint, user);
  const server = new ScramServer(verifier, login.channelBinding);
  transport.write(authSasl(server.mechanisms));
  const { mechanism, clientFirst } = await readSaslInitialResponse(inbox, server.mechanisms);
  let serverFirst: string;
  try {
    serverFirst = server.clientFirst(clientFirst, mechanism);
  } catch (err) {
    throw new SessionError((err as Error).message, '08P01');
  }
  transport.write(authSaslContinue(serverFirst));
  const final = await inbox.message(MAX_STARTUP_PACKET);
  if (final.type !== 'p') throw wrongTag(final.type);
  const serverFinal = server.clientFinal(decodeUtf8(final.body));
  const keys = server.keys;
  if (serverFinal === null || keys === null) {
    ticket.failed();
    throw authFailed(user);
  }
  ticket.succeeded();
  transport.write(authSaslFinal(serverFinal));
  return keys;
}

/** The mechanism (one of those offered) and client-first-message of a SASLInitialResponse. */
async function readSaslInitialResponse(inbox: Inbox, offered: readonly string[]): Promise<{ mechanism: string; clientFirst: string }> {
  const first = await inbox.message(MAX_STARTUP_PACKET);
  if (first.type !== 'p') throw wrongTag(first.type);
  const r = new BodyReader(first.body);
  // Postgres' own text: the bytes in place of a mechanism name may be a password sent in clear, so the name is
  // checked before anything else is read.
  const mechanism = r.cstring();
  if (!offered.includes(mechanism)) throw new SessionError('client selected an invalid SASL authentication mechanism', '08P01');
  const len = r.int32(); // -1: no initial response
  return { mechanism, clientFirst: len < 0 ? '' : decodeUtf8(r.bytes(len)) };
}
