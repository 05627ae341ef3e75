// The Postgres wire codec (lib/pg-wire) against hand-written bytes (support/pg-wire-buffers.ts), in the style of
// node-postgres' pg-protocol inbound-parser tests: each message read from its fixture, each encoder's output equal
// to its fixture, streams cut at every byte boundary, several messages in one chunk, and every malformed input a
// ProtocolError with its SQLSTATE (never a RangeError). Last, the named bug: the proxy's handshake on a short
// SASLInitialResponse threw a RangeError (answered as an internal error) instead of a protocol error.
import { describe, expect, it } from 'vitest';
import * as w from '../lib/pg-wire/index.ts';
import { ProtocolError, type Message } from '../lib/pg-wire/index.ts';
import type { Logger } from '../lib/logger.ts';
import type { Authenticator } from '../proxy/auth/authenticator.ts';
import { makeVerifier, parseVerifier } from '../proxy/auth/scram.ts';
import type { ProxyMetrics } from '../proxy/metrics.ts';
import type { CancelRegistry } from '../proxy/wire/cancel-registry.ts';
import type { ClientTransport } from '../proxy/wire/client-transport.ts';
import { runWireSession } from '../proxy/wire/session.ts';
import type { ComputeConnector } from '../proxy/compute/connector.ts';
import { ascii, backend, frontend, tagged, untagged, z } from './support/pg-wire-buffers.ts';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** Every message of `bytes`, pushed in the given chunks. */
function readAll(chunks: Uint8Array[]): { type: string; bytes: string }[] {
  const r = new w.MessageReader();
  const out: { type: string; bytes: string }[] = [];
  for (const c of chunks) {
    r.push(c);
    for (let m = r.next(); m; m = r.next()) out.push({ type: m.type, bytes: hex(m.bytes) });
  }
  expect(r.buffered).toBe(0);
  return out;
}

function one(bytes: Uint8Array): Message {
  const r = new w.MessageReader();
  r.push(bytes);
  const m = r.next();
  expect(m).not.toBeNull();
  expect(r.next()).toBeNull();
  expect(hex(m!.bytes)).toBe(hex(bytes));
  return m!;
}

/** The ProtocolError `f` throws (failing the test on any other outcome, a RangeError above all). */
function protocolError(f: () => unknown): ProtocolError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    return e as ProtocolError;
  }
  throw new Error('expected a ProtocolError');
}

describe('backend messages read from their bytes', () => {
  it('Authentication*', () => {
    expect(w.parseAuthentication(one(backend.authOk).body)).toEqual({ kind: 'ok' });
    expect(w.parseAuthentication(one(backend.authCleartextPassword).body)).toEqual({ kind: 'cleartext' });
    const md5 = w.parseAuthentication(one(backend.authMd5Password).body);
    expect(md5.kind === 'md5' && [...md5.salt]).toEqual([1, 2, 3, 4]);
    expect(w.parseAuthentication(one(backend.authSasl).body)).toEqual({ kind: 'sasl', mechanisms: ['SCRAM-SHA-256'] });
    const cont = w.parseAuthentication(one(backend.authSaslContinue).body);
    expect(cont.kind === 'saslContinue' && w.decodeUtf8(cont.data)).toBe('r=abc,s=x,i=4096');
    const fin = w.parseAuthentication(one(backend.authSaslFinal).body);
    expect(fin.kind === 'saslFinal' && w.decodeUtf8(fin.data)).toBe('v=xyz');
    expect(w.parseAuthentication(Uint8Array.from([0, 0, 0, 7]))).toEqual({ kind: 'other', code: 7 });
  });

  it('session start and status', () => {
    expect(one(backend.parameterStatus).type).toBe('S');
    expect(w.parseParameterStatus(one(backend.parameterStatus).body)).toEqual({ name: 'client_encoding', value: 'UTF8' });
    expect(w.parseBackendKeyData(one(backend.backendKeyData).body)).toEqual({ pid: 16909060, secret: -1 });
    expect(w.parseReadyForQuery(one(backend.readyIdle).body)).toBe('I');
    expect(w.parseReadyForQuery(one(backend.readyInTransaction).body)).toBe('T');
    expect(w.parseReadyForQuery(one(backend.readyFailed).body)).toBe('E');
    expect(w.parseNegotiateProtocolVersion(one(backend.negotiateProtocolVersion).body)).toEqual({ minor: 0, unrecognized: ['_pq_.x'] });
  });

  it('results', () => {
    expect(w.parseRowDescription(one(backend.rowDescription).body)).toEqual([
      { name: 'n', tableID: 0, columnID: 0, dataTypeID: 23, dataTypeSize: 4, dataTypeModifier: -1, format: 'text' },
      { name: 'bin', tableID: 16384, columnID: 2, dataTypeID: 17, dataTypeSize: -1, dataTypeModifier: -1, format: 'binary' },
    ]);
    expect(w.parseDataRow(one(backend.dataRow).body)).toEqual(['1', null, 'é']);
    expect(w.parseCommandComplete(one(backend.commandComplete).body)).toBe('SELECT 1');
  });

  it('ErrorResponse and NoticeResponse fields', () => {
    expect(w.parseErrorFields(one(backend.errorResponse).body)).toEqual({ S: 'ERROR', V: 'ERROR', C: '42P01', M: 'no t', D: 'd', H: 'h' });
    const notice = one(backend.noticeResponse);
    expect(notice.type).toBe('N');
    expect(w.parseErrorFields(notice.body)).toEqual({ S: 'NOTICE', V: 'NOTICE', C: '00000', M: 'hi' });
  });

  it('CopyInResponse and CopyOutResponse', () => {
    expect(w.parseCopyResponse(one(backend.copyInResponseText).body)).toEqual({ binary: false, columnFormats: [] });
    expect(w.parseCopyResponse(one(backend.copyInResponseBinary).body)).toEqual({ binary: true, columnFormats: [1, 1] });
    expect(w.parseCopyResponse(one(backend.copyOutResponse).body)).toEqual({ binary: false, columnFormats: [0] });
  });
});

describe('frontend messages read from their bytes', () => {
  const startupOf = (bytes: Uint8Array): w.Startup => {
    const r = new w.MessageReader();
    r.push(bytes);
    return w.parseStartup(r.nextStartup()!);
  };

  it('startup-phase packets', () => {
    expect(startupOf(frontend.startup)).toEqual({ kind: 'startup', major: 3, minor: 0, params: new Map([['user', 'u'], ['database', 'd']]) });
    expect(startupOf(frontend.startup32)).toEqual({ kind: 'startup', major: 3, minor: 2, params: new Map([['user', 'u'], ['_pq_.x', '1']]) });
    expect(startupOf(frontend.sslRequest)).toEqual({ kind: 'ssl' });
    expect(startupOf(frontend.gssencRequest)).toEqual({ kind: 'gssenc' });
    expect(startupOf(frontend.cancelRequest)).toEqual({ kind: 'cancel', pid: 0x01020304, secret: 0x0a0b0c0d });
  });

  it('authentication and query messages', () => {
    const sasl = w.parseSaslInitialResponse(one(frontend.saslInitialResponse).body);
    expect(sasl.mechanism).toBe('SCRAM-SHA-256');
    expect(w.decodeUtf8(sasl.data!)).toBe('n,,n=*,r=abc');
    expect(w.parseQuery(one(frontend.query).body)).toBe('SELECT 1');
    expect(w.parseParse(one(frontend.parse).body)).toEqual({ name: 's1', sql: 'SELECT $1' });
    const r = new w.BodyReader(one(frontend.password).body);
    expect(r.cstring()).toBe('pw');
    expect(r.done).toBe(true);
  });
});

describe('encoders write exactly the fixture bytes', () => {
  const cases: [string, Uint8Array, Uint8Array][] = [
    ['startup', w.startupMessage({ user: 'u', database: 'd' }), frontend.startup],
    ['startup 3.2', w.startupMessage([['user', 'u'], ['_pq_.x', '1']], (3 << 16) | 2), frontend.startup32],
    ['SSLRequest', w.sslRequest(), frontend.sslRequest],
    ['GSSENCRequest', w.gssencRequest(), frontend.gssencRequest],
    ['CancelRequest', w.cancelRequest(0x01020304, 0x0a0b0c0d), frontend.cancelRequest],
    ['PasswordMessage', w.passwordMessage('pw'), frontend.password],
    ['SASLInitialResponse', w.saslInitialResponse('SCRAM-SHA-256', w.utf8('n,,n=*,r=abc')), frontend.saslInitialResponse],
    ['SASLResponse', w.saslResponse(w.utf8('c=biws')), frontend.saslResponse],
    ['Query', w.query('SELECT 1'), frontend.query],
    ['Parse', w.parse('SELECT $1', 's1', [23]), frontend.parse],
    ['Bind', w.bind(['1', null], 's1', 'p1'), frontend.bind],
    ['Describe portal', w.describe('P', 'p1'), frontend.describePortal],
    ['Describe statement', w.describe('S'), frontend.describeUnnamedStatement],
    ['Execute', w.execute('p1', 10), frontend.execute],
    ['Close', w.close('S', 's1'), frontend.closeStatement],
    ['Sync', w.sync(), frontend.sync],
    ['Flush', w.flush(), frontend.flush],
    ['Terminate', w.terminate(), frontend.terminate],
    ['CopyData', w.copyData(w.utf8('ab\n')), frontend.copyData],
    ['CopyData in parts', w.copyData([w.utf8('a'), w.utf8(''), w.utf8('b\n')]), frontend.copyData],
    ['CopyDone', w.copyDone(), frontend.copyDone],
    ['CopyFail', w.copyFail('bad'), frontend.copyFail],
    ['AuthenticationOk', w.authOk(), backend.authOk],
    ['AuthenticationCleartextPassword', w.authCleartextPassword(), backend.authCleartextPassword],
    ['AuthenticationMD5Password', w.authMd5Password(Uint8Array.from([1, 2, 3, 4])), backend.authMd5Password],
    ['AuthenticationSASL', w.authSasl(['SCRAM-SHA-256']), backend.authSasl],
    ['AuthenticationSASLContinue', w.authSaslContinue('r=abc,s=x,i=4096'), backend.authSaslContinue],
    ['AuthenticationSASLFinal', w.authSaslFinal(w.utf8('v=xyz')), backend.authSaslFinal],
    ['ParameterStatus', w.parameterStatus('client_encoding', 'UTF8'), backend.parameterStatus],
    ['BackendKeyData', w.backendKeyData(16909060, -1), backend.backendKeyData],
    ['ReadyForQuery I', w.readyForQuery('I'), backend.readyIdle],
    ['ReadyForQuery T', w.readyForQuery('T'), backend.readyInTransaction],
    ['ReadyForQuery E', w.readyForQuery('E'), backend.readyFailed],
    ['RowDescription', w.rowDescription([
      { name: 'n', tableID: 0, columnID: 0, dataTypeID: 23, dataTypeSize: 4, dataTypeModifier: -1, format: 'text' },
      { name: 'bin', tableID: 16384, columnID: 2, dataTypeID: 17, dataTypeSize: -1, dataTypeModifier: -1, format: 'binary' },
    ]), backend.rowDescription],
    ['DataRow', w.dataRow(['1', null, 'é']), backend.dataRow],
    ['CommandComplete', w.commandComplete('SELECT 1'), backend.commandComplete],
    ['ErrorResponse', w.errorResponse({ severity: 'ERROR', code: '42P01', message: 'no t', detail: 'd', hint: 'h' }), backend.errorResponse],
    ['ErrorResponse from fields', w.fieldsMessage('E', { S: 'ERROR', V: 'ERROR', C: '42P01', M: 'no t', D: 'd', H: 'h' }), backend.errorResponse],
    ['NoticeResponse', w.noticeResponse({ severity: 'NOTICE', code: '00000', message: 'hi' }), backend.noticeResponse],
    ['NegotiateProtocolVersion', w.negotiateProtocolVersion(0, ['_pq_.x']), backend.negotiateProtocolVersion],
    ['CopyInResponse text', w.copyInResponse(false), backend.copyInResponseText],
    ['CopyInResponse binary', w.copyInResponse(true, [1, 1]), backend.copyInResponseBinary],
    ['CopyOutResponse', w.copyOutResponse(false, [0]), backend.copyOutResponse],
  ];
  it.each(cases)('%s', (_name, encoded, fixture) => {
    expect(hex(encoded)).toBe(hex(fixture));
  });
});

describe('framing', () => {
  const all = [...Object.values(backend), ...Object.values(frontend).filter((b) => b[0] >= 0x41)];
  const stream = w.concat(all);
  const expected = all.map((b) => ({ type: String.fromCharCode(b[0]), bytes: hex(b) }));

  it('several messages in one chunk', () => {
    expect(readAll([stream])).toEqual(expected);
  });

  it('a stream cut in two at every byte boundary', () => {
    for (let i = 1; i < stream.length; i++) {
      expect(readAll([stream.subarray(0, i), stream.subarray(i)])).toEqual(expected);
    }
  });

  it('one byte per chunk', () => {
    const bytes = [...stream].map((b) => Uint8Array.of(b));
    expect(readAll(bytes)).toEqual(expected);
  });

  it('each startup packet cut at every byte boundary', () => {
    for (const packet of [frontend.startup, frontend.startup32, frontend.sslRequest, frontend.cancelRequest]) {
      for (let i = 0; i <= packet.length; i++) {
        const r = new w.MessageReader();
        r.push(packet.subarray(0, i));
        if (i < packet.length) expect(r.nextStartup()).toBeNull();
        r.push(packet.subarray(i));
        expect(hex(r.nextStartup()!)).toBe(hex(packet.subarray(4)));
      }
    }
  });

  it('a startup packet, then what was pipelined behind it', () => {
    const r = new w.MessageReader();
    r.push(w.concat([frontend.startup, frontend.password, frontend.query.subarray(0, 3)]));
    expect(r.nextStartup()).not.toBeNull();
    expect(r.next()?.type).toBe('p');
    expect(r.hasMessage()).toBe(false);
    expect(hex(r.takeRest())).toBe(hex(frontend.query.subarray(0, 3)));
    expect(r.buffered).toBe(0);
  });

  it('messagesIn walks a run of whole messages', () => {
    const run = w.concat([backend.commandComplete, backend.readyIdle]);
    expect([...w.messagesIn(run)].map((m) => m.type)).toEqual(['C', 'Z']);
  });
});

describe('malformed input is a ProtocolError with its SQLSTATE', () => {
  it('a tagged message whose length is under 4', () => {
    const r = new w.MessageReader();
    r.push(Uint8Array.from([0x51, 0, 0, 0, 3]));
    expect(protocolError(() => r.next()).code).toBe('08P01');
  });

  it('a tagged message over the maximum length: 54000', () => {
    const r = new w.MessageReader({ maxLength: 1000 });
    r.push(Uint8Array.from([0x51, 0x7f, 0xff, 0xff, 0xff]));
    expect(protocolError(() => r.next()).code).toBe('54000');
    const s = new w.MessageReader();
    s.push(frontend.password);
    expect(protocolError(() => s.next(6)).code).toBe('54000');
  });

  it('a truncated body: every reader stops at its end', () => {
    const short = (m: Uint8Array, n: number): Uint8Array => m.subarray(5, m.length - n);
    expect(protocolError(() => w.parseBackendKeyData(short(backend.backendKeyData, 1))).code).toBe('08P01');
    expect(protocolError(() => w.parseDataRow(short(backend.dataRow, 1))).code).toBe('08P01');
    expect(protocolError(() => w.parseRowDescription(short(backend.rowDescription, 3))).code).toBe('08P01');
    expect(protocolError(() => w.parseAuthentication(short(backend.authMd5Password, 1))).code).toBe('08P01');
    expect(protocolError(() => w.parseReadyForQuery(new Uint8Array(0))).code).toBe('08P01');
    expect(protocolError(() => w.parseSaslInitialResponse(short(frontend.saslInitialResponse, 13))).code).toBe('08P01');
    expect(protocolError(() => w.parseCopyResponse(short(backend.copyInResponseBinary, 1))).code).toBe('08P01');
    const r = new w.BodyReader(Uint8Array.from([0, 0, 0, 1, 9]));
    expect(protocolError(() => r.bytes(-1)).code).toBe('08P01');
    expect(protocolError(() => r.bytes(6)).code).toBe('08P01');
  });

  it('a string without its terminator', () => {
    expect(protocolError(() => w.parseQuery(Uint8Array.from(ascii('SELECT 1')))).code).toBe('08P01');
    expect(protocolError(() => w.parseParameterStatus(Uint8Array.from([...z('a'), ...ascii('b')]))).code).toBe('08P01');
    expect(protocolError(() => w.parseErrorFields(Uint8Array.from([...ascii('M'), ...ascii('no end')]))).code).toBe('08P01');
  });

  it('a run of messages that ends inside one', () => {
    const run = w.concat([backend.commandComplete, backend.readyIdle.subarray(0, 5)]);
    expect(protocolError(() => [...w.messagesIn(run)]).code).toBe('08P01');
    expect(protocolError(() => [...w.messagesIn(Uint8Array.from([0x5a, 0, 0, 0, 0]))]).code).toBe('08P01');
  });

  it('a startup packet too short, too long, of an unknown version, or not terminated', () => {
    const read = (bytes: number[]) => {
      const r = new w.MessageReader();
      r.push(Uint8Array.from(bytes));
      return w.parseStartup(r.nextStartup()!);
    };
    expect(protocolError(() => read([0, 0, 0, 7, 0, 3, 0])).code).toBe('08P01');
    expect(protocolError(() => read([0, 0, 0x27, 0x11, 0, 3, 0, 0])).code).toBe('08P01'); // 10001 bytes
    expect(protocolError(() => read([0, 0, 0, 9, 0, 2, 0, 0, 0])).code).toBe('0A000'); // protocol 2.0
    expect(protocolError(() => read([...untagged([0, 0, 0, 14], [0, 3, 0, 0], z('user'), [0x75])])).code).toBe('08P01');
    expect(protocolError(() => read([0, 0, 0, 8, 4, 210, 22, 46])).code).toBe('08P01'); // a CancelRequest without its key
    const r = new w.MessageReader({ maxStartupLength: 26 });
    r.push(frontend.startup);
    expect(protocolError(() => r.nextStartup()).code).toBe('08P01');
  });

  it('is a ServiceError of kind protocol (quota for 54000)', () => {
    expect(new ProtocolError('x')).toMatchObject({ name: 'ProtocolError', code: '08P01', sqlState: '08P01', kind: 'protocol', status: 400 });
    expect(new ProtocolError('x', '54000').kind).toBe('quota');
  });

  it('fixtures check their own lengths', () => {
    expect(() => tagged('Z', [0, 0, 0, 6], ascii('I'))).toThrow(/length word says 6/);
  });
});

// ---- the named bug: the proxy's handshake on a short message ----

interface FakeClient {
  transport: ClientTransport;
  send(bytes: Uint8Array): void;
  written: Uint8Array[];
  destroyed: boolean;
}

function fakeClient(): FakeClient {
  let onData: (chunk: Buffer) => void = () => {};
  const c: FakeClient = {
    written: [],
    destroyed: false,
    send: (bytes) => onData(Buffer.from(bytes)),
    transport: {
      onData: (cb) => {
        onData = cb;
      },
      onClose: () => {},
      write: (data) => {
        c.written.push(data);
        return true;
      },
      onceDrain: (cb) => cb(),
      pause: () => {},
      resume: () => {},
      end: () => {},
      destroy: () => {
        c.destroyed = true;
      },
    },
  };
  return c;
}

describe('the proxy handshake on a short message (named bug)', () => {
  it('a SASLInitialResponse cut inside its length word is a protocol error, not a RangeError', async () => {
    const verifier = parseVerifier(await makeVerifier('secret'))!;
    const ticket = { succeeded: () => {}, failed: () => {}, release: () => {} };
    const auth = { admit: () => ticket, verifier: async () => ({ verifier, text: null, cached: true }) } as unknown as Authenticator;
    const errors: Record<string, string>[] = [];
    const logged: Record<string, unknown>[] = [];
    const metrics = { sessionStarted: () => () => {}, errors: { inc: (l: Record<string, string>) => errors.push(l) } } as unknown as ProxyMetrics;
    const logger = { child: () => logger, info: (o: Record<string, unknown>) => logged.push(o) } as unknown as Logger;
    const client = fakeClient();
    const session = runWireSession(client.transport, {
      auth,
      connector: {} as ComputeConnector,
      cancels: {} as CancelRegistry,
      metrics,
      logger,
      handshakeTimeoutMs: 5000,
    }, { protocol: 'tcp', clientAddress: '127.0.0.1', endpointHint: 'ep-short-message-1', cleartextAllowed: false, scram: true });
    client.send(frontend.startup);
    await new Promise((r) => setTimeout(r, 10));
    expect(client.written.map((b) => String.fromCharCode(b[0]))).toEqual(['R']); // AuthenticationSASL
    // 'p', length 20: the mechanism, then two bytes where its four-byte data length belongs
    client.send(tagged('p', [0, 0, 0, 20], z('SCRAM-SHA-256'), [0, 0]));
    await session;
    expect(errors).toEqual([{ protocol: 'tcp', code: 'protocol' }]);
    expect(logged.at(-1)).toMatchObject({ kind: 'ProtocolError', code: 'protocol' });
    // dropped without an ErrorResponse (none quoting a RangeError's text, above all)
    expect(client.written.map((b) => String.fromCharCode(b[0]))).toEqual(['R']);
    expect(client.destroyed).toBe(true);
  });
});
