// COPY ... FROM STDIN in a simple Query, streamed in chunks. PGlite must receive a COPY's data in the same call
// as the statement (without it Postgres sees end-of-input and exits), so the session answers CopyInResponse itself
// and runs the data as a series of the same COPY statement: the CopyData is collected up to a chunk size, cut at
// the last row end (copy-format.ts), and each chunk runs as `<statement> + CopyData + CopyDone`, one backend call.
// A COPY that needs more than one chunk runs inside a transaction block: the client's, or BEGIN ... COMMIT of its
// own (ROLLBACK on an error or a CopyFail), so a bad row in a late chunk commits nothing. The session holds the
// backend throughout (the multiplexer follows the 'T' status of each chunk). One chunk runs while the next is
// collected; the next cut waits for it, which stops reading the socket (it pauses once its buffer is full).
// The client sees what Postgres would send for one COPY: CopyInResponse, then `COPY <total>` or the error, and
// ReadyForQuery. A COPY the compute cannot cut (binary format, several statements in the Query, a row longer
// than the chunk) is held until its end, up to maxCopyBytes (more: 54000).
import {
  commandComplete, concat, copyData, copyDone, copyInResponse, messagesIn, parseCommandComplete, parseReadyForQuery,
  query, readyForQuery,
} from '../../../lib/pg-wire/index.ts';
import type { ErrorFields, Message, TxStatus } from '../../../lib/pg-wire/index.ts';
import { dropMessages } from './backend-output.ts';
import { copyFormat, RowScanner } from './copy-format.ts';
import type { CopyFormat } from './copy-format.ts';

/** Default chunk size of a streamed COPY FROM STDIN. */
export const DEFAULT_COPY_CHUNK_BYTES = 4 * 1024 * 1024;

/** What a COPY needs from its session. */
export interface CopyInHost {
  /** Runs one batch on the shared backend for the session (Multiplexer.run). */
  run(bytes: Uint8Array): Promise<Uint8Array>;
  /** The session's transaction status on the backend. */
  status(): TxStatus;
  write(bytes: Uint8Array): Promise<void>;
  /** A batch failed outside Postgres (the backend was restarted, the session is gone): tell the client. */
  failed(e: unknown, wasInTransaction: boolean): Promise<void>;
  /** Answers with an error and ReadyForQuery (failing the session's transaction, as an error inside it would). */
  refuse(err: ErrorFields): Promise<void>;
}

export interface CopyInLimits {
  /** Data of a COPY that cannot be cut held at most (its end must arrive within it). */
  maxCopyBytes: number;
  /** Data collected before a chunk is cut at the last row end and run. */
  copyChunkBytes?: number;
}

interface ChunkResult {
  rows: number;
  error: Uint8Array | null;
  status: TxStatus | null;
  /** Notices and other asynchronous messages, relayed as they come. */
  relay: Uint8Array[];
}

function readResult(out: Uint8Array): ChunkResult {
  const r: ChunkResult = { rows: 0, error: null, status: null, relay: [] };
  for (const m of messagesIn(out)) {
    if (m.type === 'C') {
      const tag = parseCommandComplete(m.body);
      if (tag.startsWith('COPY ')) r.rows += Number(tag.slice(5)) || 0;
    } else if (m.type === 'E') r.error ??= m.bytes.slice();
    else if (m.type === 'Z') r.status = parseReadyForQuery(m.body);
    else if (m.type === 'N' || m.type === 'S' || m.type === 'A') r.relay.push(m.bytes.slice());
    // 'G' (the client has its CopyInResponse) and BEGIN/COMMIT's CommandComplete are the compute's own
  }
  return r;
}

export class CopyIn {
  private readonly host: CopyInHost;
  private readonly statement: Uint8Array;
  private readonly fmt: CopyFormat | null;
  private readonly scanner: RowScanner | null;
  private readonly chunkBytes: number;
  private readonly maxBytes: number;
  /** Collected data not yet sent, from absolute offset `base`; `cut`: just past its last row end (-1: none). */
  private parts: Uint8Array[] = [];
  private bytes = 0;
  private base = 0;
  private cut = -1;
  private header: Uint8Array | null = null;
  private chunks = 0;
  private rows = 0;
  /** The compute opened the transaction block (BEGIN) the chunks run in. */
  private wrapped = false;
  private clientInTransaction = false;
  private inflight: Promise<void> = Promise.resolve();
  private state: 'copying' | 'failed' | 'done' = 'copying';

  constructor(host: CopyInHost, sql: string, queryFrame: Uint8Array, limits: CopyInLimits) {
    this.host = host;
    this.statement = queryFrame.slice();
    this.fmt = copyFormat(sql);
    this.scanner = this.fmt && this.fmt.kind !== 'binary' ? new RowScanner(this.fmt) : null;
    this.chunkBytes = limits.copyChunkBytes ?? DEFAULT_COPY_CHUNK_BYTES;
    this.maxBytes = limits.maxCopyBytes;
    this.clientInTransaction = host.status() !== 'I';
  }

  /** Tells the client to send its data. */
  start(binary: boolean): Promise<void> {
    return this.host.write(copyInResponse(binary || this.fmt?.kind === 'binary'));
  }

  get finished(): boolean {
    return this.state === 'done';
  }

  /** The next client message while in copy-in mode; false when it is not the COPY's (the session handles it). */
  async onFrame(frame: Message): Promise<boolean> {
    if (this.state === 'done') return false;
    if (this.state === 'failed') {
      // as Postgres after a failed COPY: the client's remaining CopyData and its CopyDone/CopyFail are ignored
      if (frame.type === 'c' || frame.type === 'f') this.state = 'done';
      if (frame.type === 'd' || frame.type === 'c' || frame.type === 'f') return true;
      this.state = 'done';
      return false;
    }
    switch (frame.type) {
      case 'd':
        return this.onData(frame.body).then(() => true);
      case 'c':
      case 'f':
        await this.finish(frame.bytes);
        return true;
      case 'H':
      case 'S':
        return true; // Postgres ignores Flush and Sync in copy-in mode
      case 'X':
        this.state = 'done';
        return false;
      default:
        await this.abort({ severity: 'ERROR', code: '08P01', message: `unexpected message type 0x${frame.bytes[0].toString(16).padStart(2, '0')} during COPY from stdin` });
        this.state = 'done';
        return true;
    }
  }

  private async onData(body: Uint8Array): Promise<void> {
    if (body.length === 0) return;
    this.parts.push(body);
    this.bytes += body.length;
    const end = this.scanner ? this.scanner.feed(body) : -1;
    if (end >= 0) this.cut = end - this.base;
    if (this.bytes >= this.chunkBytes && this.cut > 0) await this.sendChunk();
    else if (this.bytes > this.maxBytes) {
      await this.abort({
        severity: 'ERROR', code: '54000',
        message: `COPY FROM STDIN data is over the compute's limit of ${Math.round(this.maxBytes / 1048576)} MiB without a row end the compute can cut at`,
        hint: this.fmt?.kind === 'text' || this.fmt?.kind === 'csv'
          ? 'A single row is longer than the limit: split it, or load it another way.'
          : 'The binary format, and a COPY sent together with other statements in one Query, are held whole: split the data into several COPY statements, or use the text or CSV format.',
      });
    }
  }

  /** The collected data up to its last row end, taken out of `parts`. */
  private take(n: number): Uint8Array[] {
    // clients send a row a message (pgbench, psql): tens of thousands of parts, taken in one splice
    let k = 0;
    let left = n;
    while (left > 0 && this.parts[k].length <= left) left -= this.parts[k++].length;
    const out = this.parts.splice(0, k);
    if (left > 0) {
      out.push(this.parts[0].subarray(0, left));
      this.parts[0] = this.parts[0].subarray(left);
    }
    this.bytes -= n;
    this.base += n;
    this.cut = -1;
    return out;
  }

  private async sendChunk(): Promise<void> {
    // one chunk runs while the next is collected: this cut waits for the one before it
    await this.inflight;
    if (this.state !== 'copying') return;
    const data = copyData(this.take(this.cut));
    const first = this.chunks++ === 0;
    const parts: Uint8Array[] = [];
    if (first) {
      this.wrapped = !this.clientInTransaction;
      if (this.wrapped) parts.push(query('BEGIN'));
      const firstEnd = this.scanner!.firstEnd;
      // later chunks carry the header line again: their statement skips (or matches) one, as the first did
      if (this.fmt!.header && firstEnd > 0) this.header = copyData([data.subarray(5, 5 + firstEnd)]);
    }
    parts.push(this.statement);
    if (!first && this.header) parts.push(this.header);
    parts.push(data, copyDone());
    const batch = concat(parts);
    this.inflight = this.runChunk(batch, false);
  }

  /** CopyDone or CopyFail: the last chunk (the whole COPY when it fitted in one), then the answer. */
  private async finish(end: Uint8Array): Promise<void> {
    await this.inflight;
    if (this.state !== 'copying') {
      this.state = 'done';
      return;
    }
    const first = this.chunks === 0;
    const parts: Uint8Array[] = [this.statement];
    if (!first && this.header) parts.push(this.header);
    if (this.bytes > 0) parts.push(copyData(this.take(this.bytes)));
    parts.push(end.slice());
    // after an error or a CopyFail, COMMIT ends the failed block with a rollback
    if (this.wrapped) parts.push(query('COMMIT'));
    this.state = 'done';
    await this.runChunk(concat(parts), true);
  }

  /** Runs a chunk; never rejects (a failure is answered to the client here). */
  private async runChunk(batch: Uint8Array, last: boolean): Promise<void> {
    let out: Uint8Array;
    try {
      out = await this.host.run(batch);
    } catch (e) {
      if (!last) this.state = 'failed';
      await this.host.failed(e, this.clientInTransaction);
      return;
    }
    if (!this.fmt) {
      // several statements in the Query: their results as they are (the client has its CopyInResponse)
      await this.host.write(dropMessages(out, 'G', 1));
      return;
    }
    const r = readResult(out);
    this.rows += r.rows;
    if (r.relay.length > 0) await this.host.write(concat(r.relay));
    if (!last && !r.error) return;
    let status = r.status ?? this.host.status();
    if (!last) {
      this.state = 'failed';
      this.parts = [];
      this.bytes = 0;
      if (this.wrapped) {
        try {
          status = this.readyStatus(await this.host.run(query('ROLLBACK')));
        } catch (e) {
          await this.host.failed(e, false);
          return;
        }
      }
    }
    await this.host.write(concat([r.error ?? commandComplete(`COPY ${this.rows}`), readyForQuery(status)]));
  }

  private readyStatus(out: Uint8Array): TxStatus {
    return readResult(out).status ?? this.host.status();
  }

  /** Ends the COPY with an error the compute raises itself (nothing more of it runs). */
  private async abort(err: ErrorFields): Promise<void> {
    await this.inflight;
    if (this.state !== 'copying') return;
    this.state = 'failed';
    this.parts = [];
    this.bytes = 0;
    if (this.wrapped) {
      try {
        await this.host.run(query('ROLLBACK'));
      } catch (e) {
        await this.host.failed(e, false);
        return;
      }
    }
    await this.host.refuse(err);
  }
}
