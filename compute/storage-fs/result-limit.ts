// What a protocol call keeps of Postgres' output, bounded. PGlite hands the worker its output as Postgres writes
// it (views of the wasm memory), and the whole batch's output is held until the batch ends and its write batch is
// acknowledged (no byte of a result reaches a client before that). So one `SELECT` of a big table would be held
// whole, several times over. This collector copies the output straight into one buffer that grows in place (a
// resizable ArrayBuffer: reserved up to the limit, committed as it grows, never copied) and counts it. A message
// that would take it past the limit flips it into overflow: the statement's rows (DataRow, CopyData) kept so far
// are dropped, `onExceeded` asks Postgres to stop the statement (the cancel hook's interrupt), every later byte of
// the statement is discarded as it arrives, and the statement's end (the 57014 its interrupt raised, or its
// CommandComplete if it finished first) is replaced by one 54000 ErrorResponse; the rest of the batch up to its
// ReadyForQuery is dropped (Postgres skips it after the error), and that ReadyForQuery is kept as Postgres sent it.
// Memory stays bounded whether or not the statement reaches an interrupt check.
import { errorResponse } from '../../lib/pg-wire/index.ts';

const MiB = 1024 * 1024;
/** Room beyond the limit for the messages written in place of dropped ones (an ErrorResponse, a ReadyForQuery). */
const SLACK = 64 * 1024;
/** A result up to this size is collected in a scratch buffer reused by every call, then copied out once. */
const SMALL = 1 * MiB;

/**
 * The worker's scratch buffer: most results fit, and reserving a resizable buffer (its whole maximum as address
 * space) for every call cost more than the query itself. Taken by one collector at a time.
 */
const scratch = new Uint8Array(SMALL);
let scratchTaken = false;

const T = (c: string): number => c.charCodeAt(0);
/** Rows of a result: what the limit drops. */
const ROWS = new Set([T('D'), T('d')]);
/** Messages that end a statement: CommandComplete, ErrorResponse, EmptyQueryResponse, PortalSuspended. */
const STATEMENT_END = new Set([T('C'), T('E'), T('I'), T('s')]);
const READY = T('Z');

type State = 'normal' | 'overflow' | 'skipping';

export interface ResultLimitOptions {
  /** Most bytes of output one call keeps. */
  limitBytes: number;
  /** Called when the output passes the limit (once per statement): stop the statement. */
  onExceeded: () => void;
}

/** The error a client gets for a result over the limit (program_limit_exceeded, as Postgres' own size limits). */
export function resultTooLarge(limitBytes: number, finished = false): Uint8Array {
  const mb = Math.round((limitBytes / MiB) * 10) / 10;
  return errorResponse({
    severity: 'ERROR',
    code: '54000',
    message: `result of query exceeds the compute's limit of ${mb} MB`,
    // finished: it ended (CommandComplete) before the interrupt reached it, so whatever it changed stands
    detail: finished
      ? 'The statement completed before it could be stopped, so any changes it made stand; its rows were discarded before they were sent.'
      : 'The statement was stopped and its rows were discarded before they were sent.',
    hint: 'Add LIMIT, fetch the rows in parts with a cursor (DECLARE ... FETCH), or raise --max-result-mb on the compute host.',
  });
}

export class OutputCollector {
  private readonly limit: number;
  private readonly onExceeded: () => void;
  /** The resizable buffer, once the output outgrew the scratch buffer (or found it taken). */
  private buf: ArrayBuffer | null = null;
  private view: Uint8Array;
  private readonly usesScratch: boolean;
  private len = 0;
  /** The message being read: its first 5 bytes (type, length), how much of its body is left, kept or not. */
  private readonly header = new Uint8Array(5);
  private headerLen = 0;
  private bodyLeft = 0;
  private keeping = false;
  /** Offset of the current statement's first row message, -1 while it has none. */
  private rowsStart = -1;
  private state: State = 'normal';
  /** Bytes Postgres wrote, and bytes discarded (over the limit). */
  seen = 0;
  dropped = 0;
  /** Statements refused for their result's size. */
  refused = 0;

  constructor(opts: ResultLimitOptions) {
    this.limit = opts.limitBytes;
    this.onExceeded = opts.onExceeded;
    this.usesScratch = !scratchTaken;
    if (this.usesScratch) scratchTaken = true;
    this.view = this.usesScratch ? scratch : new Uint8Array(0);
  }

  /** One piece of output, a view that is only valid during the call. */
  write(chunk: Uint8Array): void {
    this.seen += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, chunk.length - off);
        if (this.keeping) this.append(chunk.subarray(off, off + n));
        else this.dropped += n;
        this.bodyLeft -= n;
        off += n;
        continue;
      }
      const n = Math.min(5 - this.headerLen, chunk.length - off);
      this.header.set(chunk.subarray(off, off + n), this.headerLen);
      this.headerLen += n;
      off += n;
      if (this.headerLen === 5) this.startMessage();
    }
  }

  /** A complete message header is in `header`: decide what happens to the message. */
  private startMessage(): void {
    const type = this.header[0];
    const size = 1 + new DataView(this.header.buffer).getInt32(1, false);
    this.headerLen = 0;
    this.bodyLeft = Math.max(0, size - 5);
    this.keeping = this.decide(type, size);
    if (this.keeping) this.append(this.header);
    else this.dropped += 5;
  }

  private decide(type: number, size: number): boolean {
    if (this.state === 'normal') {
      if (this.len + size <= this.limit) {
        if (ROWS.has(type) && this.rowsStart < 0) this.rowsStart = this.len;
        if (STATEMENT_END.has(type) || type === READY) this.rowsStart = -1;
        return true;
      }
      this.overflow();
    }
    if (this.state === 'overflow' && (STATEMENT_END.has(type) || type === READY)) {
      this.append(resultTooLarge(this.limit, type === T('C')));
      this.state = 'skipping';
    }
    if (type !== READY) return false;
    this.state = 'normal';
    return true;
  }

  /** The output passed the limit: drop the statement's rows and have Postgres stop the statement. */
  private overflow(): void {
    if (this.rowsStart >= 0) {
      this.dropped += this.len - this.rowsStart;
      this.len = this.rowsStart;
      this.rowsStart = -1;
      // shrinking a resizable buffer gives its pages back at once (a garbage buffer would wait for a GC)
      if (this.buf) this.setSize(Math.max(this.len + SLACK, 64 * 1024));
    }
    this.state = 'overflow';
    this.refused++;
    this.onExceeded();
  }

  private append(bytes: Uint8Array): void {
    const need = this.len + bytes.length;
    if (need > this.view.length) this.grow(need);
    this.view.set(bytes, this.len);
    this.len = need;
  }

  private grow(need: number): void {
    const max = this.limit + SLACK;
    if (need > max) throw new Error(`internal error: result buffer of ${max} bytes overrun`);
    this.setSize(Math.min(max, Math.max(need, 2 * this.view.length, 64 * 1024)));
  }

  private setSize(size: number): void {
    if (!this.buf) {
      // out of the scratch buffer: what it holds moves to the resizable one
      const kept = this.view.subarray(0, this.len);
      this.buf = new ArrayBuffer(size, { maxByteLength: this.limit + SLACK });
      this.view = new Uint8Array(this.buf, 0, size);
      this.view.set(kept);
      this.releaseScratch();
      return;
    }
    if (size < this.buf.byteLength || size > this.view.length) this.buf.resize(size);
    this.view = new Uint8Array(this.buf, 0, size);
  }

  private releaseScratch(): void {
    if (this.usesScratch && this.view !== scratch) scratchTaken = false;
  }

  /** The kept output, in a buffer of its own (transferable: it is never a view of a larger buffer). */
  finish(): Uint8Array {
    const buf = this.buf;
    const len = this.len;
    const view = this.view;
    this.buf = null;
    this.view = new Uint8Array(0);
    if (view === scratch) scratchTaken = false;
    if (!buf) return view.slice(0, len);
    if (len === 0) return new Uint8Array(0);
    buf.resize(len);
    if (len > SMALL) return new Uint8Array(buf, 0, len);
    // a small result gets a plain buffer; the resizable one gives its pages back now rather than at a GC
    const out = new Uint8Array(buf, 0, len).slice();
    buf.resize(0);
    return out;
  }
}
