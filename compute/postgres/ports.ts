// A free TCP port for a postmaster (PostgreSQL takes a port number, not a listening socket): the OS picks one, it is
// released, and postgres binds it. Another process could take it in between; a start that fails on it retries.
import * as net from 'node:net';

export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host || '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
