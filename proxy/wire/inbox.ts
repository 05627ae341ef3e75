// The client's bytes during a wire session's handshake (startup packet, password or SASL messages), which may
// arrive in any chunking: a message reader the handshake awaits, message by message.
import { MessageReader, ProtocolError, type Message } from '../../lib/pg-wire/index.ts';

export const MAX_STARTUP_PACKET = 10_000;

export class Inbox {
  readonly reader = new MessageReader({ maxStartupLength: MAX_STARTUP_PACKET });
  private wake: (() => void) | null = null;
  closed = false;

  push(chunk: Uint8Array): void {
    this.reader.push(chunk);
    this.notify();
  }

  close(): void {
    this.closed = true;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private async until<T>(take: () => T | null): Promise<T> {
    for (;;) {
      const v = take();
      if (v !== null) return v;
      if (this.closed) throw new ProtocolError('client closed the connection');
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  /** The next startup-phase packet's payload (after its length word). */
  startup(): Promise<Uint8Array> {
    return this.until(() => this.reader.nextStartup());
  }

  /** The next tagged message; `maxLength` bounds its length word. */
  message(maxLength: number): Promise<Message> {
    return this.until(() => this.reader.next(maxLength));
  }
}
