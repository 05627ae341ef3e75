// A Postgres-wire client byte stream, whether it arrives over a WebSocket (binary frames concatenated) or a
// TCP socket, with the little flow control the relay needs.
import type net from 'node:net';
import tls from 'node:tls';
import type { WebSocket } from 'ws';
import { tlsServerEndPoint } from '../auth/channel-binding.ts';

export interface ClientTransport {
  /** Replaces the data handler (handshake reader first, relay later). */
  onData(cb: (chunk: Buffer) => void): void;
  onClose(cb: () => void): void;
  /** Returns false when the client is slow and the caller should wait for `onDrain`. */
  write(data: Uint8Array): boolean;
  onceDrain(cb: () => void): void;
  pause(): void;
  resume(): void;
  /** Flushes what was written, then closes. */
  end(): void;
  destroy(): void;
  /** A TLS connection's tls-server-end-point channel-binding data (SCRAM-SHA-256-PLUS); null or absent without TLS. */
  channelBinding?(): Buffer | null;
}

const HIGH_WATER = 1 << 20;

export function wsTransport(ws: WebSocket): ClientTransport {
  let dataCb: (chunk: Buffer) => void = () => {};
  let pending = 0;
  let drainCbs: (() => void)[] = [];
  ws.binaryType = 'nodebuffer';
  ws.on('message', (data, isBinary) => {
    // Neon: a text frame is an I/O error ("unexpected text message in the websocket") and ends the session.
    if (!isBinary) {
      ws.close(1003, 'unexpected text message in the websocket');
      return;
    }
    dataCb(Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data));
  });
  ws.on('error', () => ws.terminate());
  return {
    onData(cb) {
      dataCb = cb;
    },
    onClose(cb) {
      ws.on('close', cb);
    },
    write(data) {
      if (ws.readyState !== ws.OPEN) return true;
      pending += data.length;
      ws.send(data, { binary: true }, () => {
        pending -= data.length;
        if (pending < HIGH_WATER / 2 && drainCbs.length) {
          const cbs = drainCbs;
          drainCbs = [];
          for (const cb of cbs) cb();
        }
      });
      return pending < HIGH_WATER;
    },
    onceDrain(cb) {
      if (pending < HIGH_WATER / 2) cb();
      else drainCbs.push(cb);
    },
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    end: () => ws.close(1000),
    destroy: () => ws.terminate(),
    // wss: ends at whatever terminates TLS in front, which the tunnel's Postgres session cannot see
    channelBinding: () => null,
  };
}

export function tcpTransport(socket: net.Socket): ClientTransport {
  let dataCb: (chunk: Buffer) => void = () => {};
  socket.setNoDelay(true);
  socket.on('data', (chunk: Buffer) => dataCb(chunk));
  socket.on('error', () => socket.destroy());
  return {
    onData(cb) {
      dataCb = cb;
    },
    onClose(cb) {
      socket.on('close', cb);
    },
    write: (data) => (socket.writable ? socket.write(data) : true),
    onceDrain(cb) {
      if (!socket.writableNeedDrain) cb();
      else socket.once('drain', cb);
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    end: () => socket.end(),
    destroy: () => socket.destroy(),
    channelBinding: () => {
      const cert = socket instanceof tls.TLSSocket ? socket.getX509Certificate() : undefined;
      return cert ? tlsServerEndPoint(cert) : null;
    },
  };
}
