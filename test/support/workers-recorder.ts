// An upstream that records exactly what reaches it (HTTP requests with their raw body bytes, WebSocket
// messages with their type) and answers with what the test scripts: the far side of byte-transparency checks.
import http from 'node:http';
import type net from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RecordedMessage {
  data: Buffer;
  isBinary: boolean;
}

export interface ScriptedResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface Recorder {
  origin: string;
  requests: RecordedRequest[];
  /** The next HTTP answers (default: 200, empty). */
  respond: ScriptedResponse[];
  /** Upgrade requests seen, and the messages each socket received. */
  upgrades: Array<{ url: string; headers: http.IncomingHttpHeaders; received: RecordedMessage[] }>;
  /** Messages the recorder sends on each new WebSocket, in order, right after it opens. */
  greeting: RecordedMessage[];
  close(): Promise<void>;
}

export async function startRecorder(): Promise<Recorder> {
  const requests: RecordedRequest[] = [];
  const respond: ScriptedResponse[] = [];
  const upgrades: Recorder['upgrades'] = [];
  const greeting: RecordedMessage[] = [];
  const sockets = new Set<WebSocket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      const answer = respond.shift() ?? { status: 200, headers: {}, body: Buffer.alloc(0) };
      res.writeHead(answer.status, { ...answer.headers, 'Content-Length': String(answer.body.length) });
      res.end(answer.body);
    });
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      const record = { url: req.url ?? '', headers: req.headers, received: [] as RecordedMessage[] };
      upgrades.push(record);
      ws.on('message', (data: Buffer, isBinary: boolean) => record.received.push({ data: Buffer.from(data), isBinary }));
      ws.on('close', () => sockets.delete(ws));
      for (const m of greeting) ws.send(m.data, { binary: m.isBinary });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    respond,
    upgrades,
    greeting,
    async close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
