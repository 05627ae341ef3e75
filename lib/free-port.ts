// A free TCP port on 127.0.0.1, for a server that must be told its port before it starts. Racy by nature: another
// process can take the port before the server binds it. Prefer port 0 and reading the port the server reports;
// where that cannot be done (`lakebase start`: the proxy's TCP port, named by the control plane), retry on failure.
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
