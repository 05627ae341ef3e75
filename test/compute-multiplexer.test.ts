// The multiplexer's group commit with a scripted backend: batches that run while others wait are deferred and
// shipped by one flush, their results held until it resolves; a failed deferred batch is followed by a flush
// (which settles the backend's account of deferred changes) before anything else runs. And its hand-offs: only
// when another session's batch comes, each ending with that session's own identity.
import { describe, expect, it } from 'vitest';
import { Multiplexer } from '../compute/host/multiplexer.ts';
import type { Backend, MuxSession } from '../compute/host/multiplexer.ts';

const READY_IDLE = new Uint8Array([0x5a, 0, 0, 0, 5, 0x49]);

function session(id: number, user = 'postgres'): MuxSession {
  return { id, user, prefix: `lb${id}_`, statements: new Map(), terminate: () => {} };
}

/** A backend whose batches (one byte: a marker) finish when the test says so. */
class ScriptedBackend implements Backend {
  readonly log: string[] = [];
  private readonly waiting = new Map<number, { resolve: (b: Uint8Array) => void; reject: (e: Error) => void }>();
  private flushGate: (() => void) | null = null;

  exec(bytes: Uint8Array, opts?: { deferFlush?: boolean }): Promise<Uint8Array> {
    if (bytes.length !== 1) return Promise.resolve(READY_IDLE); // the multiplexer's own (SET SESSION AUTHORIZATION)
    this.log.push(`exec ${bytes[0]}${opts?.deferFlush ? ' deferred' : ''}`);
    return new Promise((resolve, reject) => this.waiting.set(bytes[0], { resolve, reject }));
  }

  flush(): Promise<void> {
    this.log.push('flush');
    return new Promise((resolve) => (this.flushGate = resolve));
  }

  finish(marker: number, error?: Error): void {
    const w = this.waiting.get(marker)!;
    this.waiting.delete(marker);
    if (error) w.reject(error);
    else w.resolve(READY_IDLE);
  }

  releaseFlush(): void {
    const g = this.flushGate!;
    this.flushGate = null;
    g();
  }
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

describe('multiplexer group commit', () => {
  it('defers the batches that waited, ships them with one flush, and releases their results only after it', async () => {
    const backend = new ScriptedBackend();
    const mux = new Multiplexer(backend, { idleInTransactionTimeoutMs: 0 });
    const [a, b, c] = [session(1), session(2), session(3)];
    for (const s of [a, b, c]) mux.attach(s);
    const ra = mux.run(a, new Uint8Array([1]));
    await tick();
    const settled: string[] = [];
    const rb = mux.run(b, new Uint8Array([2])).then(() => settled.push('b'));
    const rc = mux.run(c, new Uint8Array([3])).then(() => settled.push('c'));
    backend.finish(1);
    await ra;
    await tick();
    backend.finish(2);
    await tick();
    backend.finish(3);
    await tick();
    expect(backend.log).toEqual(['exec 1', 'exec 2 deferred', 'exec 3 deferred', 'flush']);
    expect(settled).toEqual([]); // held until the flush is acknowledged
    backend.releaseFlush();
    await Promise.all([rb, rc]);
    expect(settled).toEqual(['b', 'c']);
    mux.close(new Error('done'));
  });

  it('flushes after a deferred batch failed, before the next batch runs', async () => {
    const backend = new ScriptedBackend();
    const mux = new Multiplexer(backend, { idleInTransactionTimeoutMs: 0 });
    const [a, b, c] = [session(1), session(2), session(3)];
    for (const s of [a, b, c]) mux.attach(s);
    const ra = mux.run(a, new Uint8Array([1]));
    await tick();
    const rb = mux.run(b, new Uint8Array([2]));
    rb.catch(() => {});
    backend.finish(1);
    await ra;
    await tick();
    const rc = mux.run(c, new Uint8Array([3]));
    backend.finish(2, new Error('worker died'));
    await expect(rb).rejects.toThrow('worker died');
    await tick();
    expect(backend.log).toEqual(['exec 1', 'exec 2 deferred', 'flush']);
    backend.releaseFlush();
    await tick();
    // nothing else waits now: c's batch ships on its own
    expect(backend.log).toEqual(['exec 1', 'exec 2 deferred', 'flush', 'exec 3']);
    backend.finish(3);
    await rc;
    mux.close(new Error('done'));
  });
});

/** A backend that records the SQL of the simple Queries it gets and answers each with ReadyForQuery 'I'. */
class RecordingBackend implements Backend {
  readonly log: string[] = [];

  exec(bytes: Uint8Array): Promise<Uint8Array> {
    if (bytes.length === 1) {
      this.log.push(`batch ${bytes[0]}`);
      return Promise.resolve(READY_IDLE);
    }
    const out: Uint8Array[] = [];
    for (let off = 0; off < bytes.length;) {
      const len = new DataView(bytes.buffer, bytes.byteOffset + off + 1, 4).getInt32(0);
      if (bytes[off] === 0x51) {
        this.log.push(new TextDecoder().decode(bytes.subarray(off + 5, off + len)));
        out.push(READY_IDLE);
      }
      off += 1 + len;
    }
    return Promise.resolve(new Uint8Array(out.flatMap((b) => [...b])));
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }
}

describe('multiplexer hand-offs', () => {
  it('hands the backend off only when another session runs, and always restores the incoming identity', async () => {
    const backend = new RecordingBackend();
    const mux = new Multiplexer(backend, { idleInTransactionTimeoutMs: 0 });
    const [a, b] = [session(1, 'alice'), session(2, 'bob')];
    for (const s of [a, b]) mux.attach(s);
    for (const [s, marker] of [[a, 1], [a, 2], [b, 3], [b, 4], [a, 5]] as const) await mux.run(s, new Uint8Array([marker]));
    const identities = backend.log.filter((l) => l.startsWith('SET SESSION AUTHORIZATION "'));
    expect(identities).toEqual(['SET SESSION AUTHORIZATION "alice"', 'SET SESSION AUTHORIZATION "bob"', 'SET SESSION AUTHORIZATION "alice"']);
    // the same session back to back: nothing between its batches
    expect(backend.log.indexOf('batch 2') - backend.log.indexOf('batch 1')).toBe(1);
    expect(backend.log.indexOf('batch 4') - backend.log.indexOf('batch 3')).toBe(1);
    // a hand-off from a session captures its state first (as the superuser), and resets every setting
    const handOff = backend.log.slice(backend.log.indexOf('batch 2') + 1, backend.log.indexOf('batch 3'));
    expect(handOff[0]).toMatch(/^SELECT 'role', .*; SET SESSION AUTHORIZATION postgres; RESET ROLE; SELECT .*pg_settings.*; RESET ALL$/);
    mux.close(new Error('done'));
  });
});
