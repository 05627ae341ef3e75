// One client connection to a compute: the startup handshake (SSLRequest answered 'N', cleartext password = the
// host's internal token, ParameterStatus, BackendKeyData), then the client's messages cut into batches (up to a
// Sync, a simple Query or a FunctionCall; a Flush with nothing behind it) that run on the shared backend through
// the multiplexer. COPY FROM STDIN runs in chunks that each carry their data (PGlite must get the data in the same
// call: copy-in.ts); LISTEN is refused (a subscription would outlive the session's turn on the shared backend).
// A stateless session's request runs together with the proxy's session reset when that is already buffered
// behind it (the proxy sends both in one write): one backend exec and one socket write instead of two.
import type { Socket } from 'node:net';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Logger } from '../../../lib/logger.ts';
import { SESSION_RESET_SQL, STATELESS_PARAM } from '../../../lib/compute-startup.ts';
import {
  authCleartextPassword, authOk, backendKeyData, concat, decodeUtf8, errorResponse, INVALID_AUTHORIZATION_SPECIFICATION,
  MessageReader, negotiateProtocolVersion, parameterStatus, parseParse, parseQuery, parseStartup, ProtocolError, query,
  readyForQuery,
} from '../../../lib/pg-wire/index.ts';
import type { ErrorFields, Message, TxStatus } from '../../../lib/pg-wire/index.ts';
import { rewriteNames } from './names.ts';
import { CopyIn } from './copy-in.ts';
import type { CopyInHost } from './copy-in.ts';
import { sqlTraits } from './sql-scan.ts';
import { BackendFailure, SessionGone, SessionRefused } from '../multiplexer.ts';
import type { Multiplexer, MuxSession } from '../multiplexer.ts';

export interface SessionLimits {
  /** Largest single message accepted (default 64 MiB). */
  maxMessageBytes: number;
  /** Largest COPY FROM STDIN data held whole: one that cannot be cut into chunks (binary, a longer row). */
  maxCopyBytes: number;
  /** COPY FROM STDIN data collected before it runs as one chunk (default 4 MiB: copy-in.ts). */
  copyChunkBytes?: number;
  /** Inbound bytes buffered before the socket is paused. */
  maxBufferedBytes: number;
  /** Time allowed from connect to authenticated. */
  loginTimeoutMs: number;
}

/** What a session needs from its compute and host. */
export interface SessionContext {
  readonly token: string;
  readonly database: string;
  readonly mux: Multiplexer;
  readonly limits: SessionLimits;
  readonly log: Logger;
  /** Null when sessions are accepted; else the error to refuse a login with (starting, stopping). */
  refuseLogin(): ErrorFields | null;
  /** ParameterStatus values for a new session. */
  parameters(user: string, applicationName: string): [string, string][];
  /** Issues a cancel key for the session; releaseKey() when it ends. */
  issueKey(session: Session): { pid: number; secret: number };
  releaseKey(pid: number): void;
  /** A CancelRequest arrived on this port. */
  cancelRequest(pid: number, secret: number): void;
  onLogin(session: Session, ok: boolean): void;
  onClose(session: Session): void;
}

let nextSessionId = 1;

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export class Session implements MuxSession {
  readonly id = nextSessionId++;
  readonly prefix: string;
  readonly statements = new Map<string, Uint8Array>();
  readonly socket: Socket;
  readonly connectedAt = Date.now();
  user = '';
  /** Set by the proxy's HTTP pool (startup parameter lakebase.stateless=on; the proxy strips it from clients). */
  stateless = false;
  /** Set by the host for its own admin connections that do background work (CancelKeys.markBackground). */
  background = false;
  applicationName = '';
  pid = 0;
  private readonly ctx: SessionContext;
  private readonly reader: MessageReader;
  private phase: 'startup' | 'password' | 'ready' | 'closed' = 'startup';
  private pending: Uint8Array[] = [];
  private pendingTraits: { listen: boolean; copyInExtended: boolean; identity?: ErrorFields } = { listen: false, copyInExtended: false };
  /** A message taken from the reader to see whether it was the session reset, and not: the next one to handle. */
  private lookahead: Message | null = null;
  private copyIn: CopyIn | null = null;
  private pumping = false;
  private loginTimer: NodeJS.Timeout | null;

  constructor(socket: Socket, ctx: SessionContext) {
    this.socket = socket;
    this.ctx = ctx;
    this.prefix = `lb${this.id}_`;
    // the limit counts the whole message; the reader's, its length word (the message without its type byte)
    this.reader = new MessageReader({ maxLength: ctx.limits.maxMessageBytes - 1 });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.reader.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      if (this.reader.buffered > ctx.limits.maxBufferedBytes) socket.pause();
      this.pump();
    });
    socket.on('error', () => this.closed());
    socket.on('close', () => this.closed());
    this.loginTimer = setTimeout(() => this.fatal({ severity: 'FATAL', code: '08P01', message: 'login timed out' }), ctx.limits.loginTimeoutMs);
    this.loginTimer.unref();
  }

  // ---- MuxSession -----------------------------------------------------------------------------------------------

  terminate(err: ErrorFields): void {
    this.fatal(err);
  }

  // ---- input --------------------------------------------------------------------------------------------------

  private pump(): void {
    if (this.pumping || this.phase === 'closed') return;
    this.pumping = true;
    void this.drain()
      .catch((e: unknown) => {
        if (e instanceof ProtocolError) this.fatal({ severity: 'FATAL', code: e.code, message: e.message });
        else {
          this.ctx.log.error({ err: String((e as Error)?.stack ?? e), session: this.id }, 'session failed');
          this.fatal({ severity: 'FATAL', code: 'XX000', message: `internal error: ${(e as Error)?.message ?? e}` });
        }
      })
      .finally(() => {
        this.pumping = false;
        if (this.phase !== 'closed' && this.reader.buffered <= this.ctx.limits.maxBufferedBytes) this.socket.resume();
        if (this.phase !== 'closed' && (this.hasNext() || (this.phase === 'startup' && this.reader.buffered >= 8))) this.pump();
      });
  }

  private async drain(): Promise<void> {
    while (this.phase !== 'closed') {
      if (this.phase === 'startup') {
        const packet = this.reader.nextStartup();
        if (!packet) return;
        this.onStartup(packet);
        continue;
      }
      const frame = this.lookahead ?? this.reader.next();
      this.lookahead = null;
      if (!frame) return;
      if (this.phase === 'password') this.onPassword(frame);
      else await this.onMessage(frame);
    }
  }

  private onStartup(packet: Uint8Array): void {
    const st = parseStartup(packet);
    if (st.kind === 'ssl' || st.kind === 'gssenc') {
      this.socket.write('N');
      return;
    }
    if (st.kind === 'cancel') {
      this.ctx.cancelRequest(st.pid, st.secret);
      this.close();
      return;
    }
    const unrecognized = [...st.params.keys()].filter((k) => k.startsWith('_pq_.'));
    if (st.minor > 0 || unrecognized.length > 0) this.socket.write(negotiateProtocolVersion(0, unrecognized));
    const user = st.params.get('user');
    if (!user) throw new ProtocolError('no PostgreSQL user name specified in startup packet', INVALID_AUTHORIZATION_SPECIFICATION);
    this.user = user;
    this.applicationName = st.params.get('application_name') ?? '';
    this.stateless = st.params.get(STATELESS_PARAM) === 'on';
    const database = st.params.get('database') || user;
    if (database !== this.ctx.database) {
      this.fatal({ severity: 'FATAL', code: '3D000', message: `database "${database}" does not exist`, detail: `This compute serves database "${this.ctx.database}".` });
      return;
    }
    const encoding = st.params.get('client_encoding');
    if (encoding && !/^(utf-?8|unicode)$/i.test(encoding.replace(/'/g, ''))) {
      this.fatal({ severity: 'FATAL', code: '22023', message: `client_encoding ${JSON.stringify(encoding)} is not supported: the compute speaks UTF8 only` });
      return;
    }
    this.phase = 'password';
    this.socket.write(authCleartextPassword());
  }

  private onPassword(frame: Message): void {
    if (frame.type !== 'p') throw new ProtocolError(`expected a password response, got message type '${frame.type}'`);
    const end = frame.body.indexOf(0);
    const given = decodeUtf8(frame.body.subarray(0, end < 0 ? frame.body.length : end));
    // compared as digests: equal lengths for timingSafeEqual, no early exit on the first differing byte
    const ok = timingSafeEqual(sha256(given), sha256(this.ctx.token));
    this.ctx.onLogin(this, ok);
    if (!ok) {
      this.fatal({ severity: 'FATAL', code: '28P01', message: `password authentication failed for user "${this.user}"` });
      return;
    }
    const refusal = this.ctx.refuseLogin();
    if (refusal) {
      this.fatal(refusal);
      return;
    }
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.loginTimer = null;
    const key = this.ctx.issueKey(this);
    this.pid = key.pid;
    this.ctx.mux.attach(this);
    this.phase = 'ready';
    const out: Uint8Array[] = [authOk()];
    for (const [k, v] of this.ctx.parameters(this.user, this.applicationName)) out.push(parameterStatus(k, v));
    out.push(backendKeyData(key.pid, key.secret), readyForQuery('I'));
    this.socket.write(concat(out));
  }

  private async onMessage(frame: Message): Promise<void> {
    if (this.copyIn) {
      const consumed = await this.copyIn.onFrame(frame);
      if (this.copyIn.finished) this.copyIn = null;
      if (consumed) return;
    }
    switch (frame.type) {
      case 'Q':
        return this.onQuery(frame);
      case 'P':
        return this.onParse(frame);
      case 'B':
      case 'D':
      case 'E':
      case 'C': {
        const { bytes, effect } = rewriteNames(frame, this.prefix);
        if (effect?.kind === 'close') this.statements.delete(effect.name);
        this.pending.push(bytes);
        return;
      }
      case 'H':
        this.pending.push(frame.bytes);
        // a Flush with more messages already behind it (a pipelined ...H S) needs no round trip of its own
        if (this.hasNext()) return;
        return this.runBatch();
      case 'S':
      case 'F':
        return this.onBatchEnd(frame);
      case 'X':
        this.close();
        return;
      case 'd':
      case 'c':
      case 'f':
        return; // outside COPY: ignored, as Postgres does (a COPY that failed early)
      default:
        throw new ProtocolError(`invalid frontend message type ${frame.bytes[0]}`);
    }
  }

  /** A simple Query: a batch of its own, or the start of a COPY FROM STDIN. */
  private async onQuery(frame: Message): Promise<void> {
    const sql = parseQuery(frame.body);
    const traits = sqlTraits(sql, this);
    this.pending.push(rewriteNames(frame, this.prefix, traits.rewritten).bytes);
    if (traits.listen) return this.refuseBatch(listenRefusal());
    if (traits.identity) return this.refuseBatch(traits.identity);
    if (traits.copyFromStdin) {
      // PGlite must get a COPY's data in the same call: the session answers CopyInResponse and runs it in chunks
      this.pending = [];
      // with the session-scoped rewrites (DEALLOCATE ALL, DISCARD ...) of any statement sent with the COPY
      const copySql = traits.rewritten ?? sql;
      this.copyIn = new CopyIn(this.copyHost(), copySql, traits.rewritten ? query(copySql) : frame.bytes, this.ctx.limits);
      return this.copyIn.start(traits.copyFromStdin.binary);
    }
    const resets = this.stateless && sql === SESSION_RESET_SQL;
    return this.runBatch(resets, !resets);
  }

  /** A Parse: its statement renamed for the session, its traits remembered until the batch ends. */
  private onParse(frame: Message): void {
    const traits = sqlTraits(parseParse(frame.body).sql, this);
    if (traits.listen) this.pendingTraits.listen = true;
    if (traits.copyFromStdin) this.pendingTraits.copyInExtended = true;
    if (traits.identity) this.pendingTraits.identity = traits.identity;
    const { bytes, effect } = rewriteNames(frame, this.prefix, traits.rewritten);
    if (effect?.kind === 'parse') this.statements.set(effect.name, effect.bytes);
    this.pending.push(bytes);
  }

  /** A Sync or a FunctionCall: the extended-protocol batch runs (or is refused for what it holds). */
  private onBatchEnd(frame: Message): Promise<void> {
    this.pending.push(frame.bytes);
    if (this.pendingTraits.listen) return this.refuseBatch(listenRefusal());
    if (this.pendingTraits.identity) return this.refuseBatch(this.pendingTraits.identity);
    if (this.pendingTraits.copyInExtended) {
      return this.refuseBatch({ severity: 'ERROR', code: '0A000', message: 'COPY FROM STDIN is supported in a simple Query message only on this compute', hint: 'Send the COPY statement as a simple query (it is how psql and pg-copy-streams send it).' });
    }
    return this.runBatch(false, frame.type === 'S');
  }

  /** What a COPY FROM STDIN of this session runs through. */
  private copyHost(): CopyInHost {
    return {
      run: (bytes) => this.ctx.mux.run(this, bytes),
      status: () => this.ctx.mux.statusOf(this),
      write: (bytes) => this.write(bytes),
      failed: (e, wasInTransaction) => this.batchFailed(e, wasInTransaction),
      refuse: (err) => this.refuseBatch(err),
    };
  }

  /** Answers a batch with an error without running it (its messages are dropped up to the Sync). */
  private async refuseBatch(err: ErrorFields): Promise<void> {
    this.pending = [];
    this.pendingTraits = { listen: false, copyInExtended: false };
    let status = this.ctx.mux.statusOf(this);
    if (status === 'T') {
      // as an error inside the transaction would: it is now failed
      status = await this.ctx.mux.failTransaction(this, false).then(() => 'E' as const, () => status);
    }
    await this.write(concat([errorResponse(err), readyForQuery(status)]));
  }

  /**
   * `resets`: the batch is the proxy's session reset (see SESSION_RESET_SQL). `mergeable`: a batch that ends with a
   * ReadyForQuery and holds nothing refused, which may take the reset buffered behind it into its backend exec.
   */
  private runBatch(resets = false, mergeable = false): Promise<void> {
    const bytes = concat(this.pending);
    this.pending = [];
    this.pendingTraits = { listen: false, copyInExtended: false };
    return this.execute(bytes, resets, mergeable ? this.takeBufferedReset() : null);
  }

  /** Runs a batch (with the session reset behind it, `thenReset`) and writes its output. */
  private async execute(bytes: Uint8Array, resets: boolean, thenReset: Uint8Array | null): Promise<void> {
    const wasInTransaction = this.ctx.mux.statusOf(this) !== 'I';
    let out: Uint8Array;
    try {
      // the session's next batch is already here (a stateless session's reset sent with its request): keep the
      // backend for it, so that no other session's turn falls between them
      const opts = thenReset ? { thenReset } : { resets, holdTurn: this.stateless && this.hasNext() };
      out = await this.ctx.mux.run(this, bytes, opts);
    } catch (e) {
      await this.batchFailed(e, wasInTransaction);
      // the request's batch failed (before or under its reset): the reset runs on its own, as if sent alone
      if (thenReset && this.phase !== 'closed') await this.execute(thenReset, true, null);
      return;
    }
    await this.write(out);
  }

  /**
   * The proxy's session reset, as the backend runs it, when it is the next message already buffered (a stateless
   * session). Another message taken to look at it is kept as the next one to handle.
   */
  private takeBufferedReset(): Uint8Array | null {
    if (!this.stateless || this.lookahead || !this.reader.hasMessage()) return null;
    let frame: Message | null;
    try {
      frame = this.reader.next();
    } catch {
      return null; // an invalid message stays in the reader: drain() takes it next and ends the session
    }
    if (!frame) return null;
    if (frame.type === 'Q' && parseQuery(frame.body) === SESSION_RESET_SQL) {
      // what onQuery would run for it (its session-scoped rewrites), unless it would do anything else with it
      const traits = sqlTraits(SESSION_RESET_SQL, this);
      if (!traits.listen && !traits.identity && !traits.copyFromStdin) return rewriteNames(frame, this.prefix, traits.rewritten).bytes;
    }
    this.lookahead = frame;
    return null;
  }

  /** A complete message is waiting: taken aside (lookahead) or buffered. */
  private hasNext(): boolean {
    return this.lookahead !== null || this.reader.hasMessage();
  }

  private async batchFailed(e: unknown, wasInTransaction: boolean): Promise<void> {
    if (e instanceof SessionGone) return;
    if (e instanceof SessionRefused) return this.fatal(e.fields);
    if (e instanceof BackendFailure && e.reason === 'cancel') {
      let status: TxStatus = 'I';
      if (wasInTransaction) {
        // the backend was restarted under the transaction: recreate it, failed, as a cancel inside it leaves it
        status = await this.ctx.mux.failTransaction(this, true).then(() => 'E' as const, () => 'I' as const);
      }
      await this.write(concat([errorResponse({ severity: 'ERROR', code: '57014', message: 'canceling statement due to user request' }), readyForQuery(status)]));
      return;
    }
    if (e instanceof BackendFailure && e.reason === 'stopped') {
      return this.fatal({ severity: 'FATAL', code: '57P01', message: 'terminating connection due to administrator command' });
    }
    const message = e instanceof BackendFailure && e.reason === 'crash'
      ? `terminating connection because the compute's backend failed (${e.message}); it was restarted, and the outcome of the last statement is unknown`
      : `terminating connection: ${(e as Error)?.message ?? e}`;
    this.fatal({ severity: 'FATAL', code: e instanceof BackendFailure && e.reason === 'crash' ? '57P02' : 'XX000', message });
  }

  // ---- output and end -------------------------------------------------------------------------------------------

  private write(bytes: Uint8Array): Promise<void> {
    if (this.phase === 'closed' || bytes.length === 0) return Promise.resolve();
    if (this.socket.write(bytes)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** Sends an error and closes the connection. */
  fatal(err: ErrorFields): void {
    if (this.phase === 'closed') return;
    this.socket.end(errorResponse(err));
    this.closed();
  }

  close(): void {
    if (this.phase === 'closed') return;
    this.socket.end();
    this.closed();
  }

  private closed(): void {
    if (this.phase === 'closed') return;
    const wasReady = this.phase === 'ready';
    this.phase = 'closed';
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.socket.destroySoon();
    if (wasReady) {
      this.ctx.mux.detach(this);
      this.ctx.releaseKey(this.pid);
    }
    this.ctx.onClose(this);
  }

  get authenticated(): boolean {
    return this.phase === 'ready';
  }
}

function listenRefusal(): ErrorFields {
  return {
    severity: 'ERROR', code: '0A000',
    message: 'LISTEN is not supported on this compute',
    detail: "Client sessions share the compute's one backend between transactions (transaction pooling), so a session cannot hold a subscription.",
  };
}
