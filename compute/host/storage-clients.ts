// The host's clients of the storage nodes its computes use. Several storage nodes serve one bucket, each project's
// timelines on one of them, and the control plane names it in each start (StartRequest.storageUrl); a start that
// names none uses the host's own --storage-url. One client per node, reused across starts (its keep-alive
// connections), all with the host's one storage token (every node of a deployment takes the same), closed with the
// host.
import { StorageClient } from '../../storage-node/client.ts';

export class StorageClients {
  /** The host's own node (--storage-url), as a client's base URL (no trailing slash). */
  readonly defaultUrl: string;
  private readonly token: string | undefined;
  private readonly clients = new Map<string, StorageClient>();

  constructor(defaultUrl: string, token?: string) {
    this.token = token;
    this.defaultUrl = this.get(defaultUrl).baseUrl;
  }

  /** The node a start uses: the one it names, else the host's own (the same spelling a client keys on). */
  urlFor(storageUrl?: string): string {
    return storageUrl === undefined ? this.defaultUrl : StorageClients.key(storageUrl);
  }

  /** The client of that node (default: the host's own), made on first use. */
  get(storageUrl?: string): StorageClient {
    const key = storageUrl === undefined ? this.defaultUrl : StorageClients.key(storageUrl);
    let client = this.clients.get(key);
    if (!client) {
      client = new StorageClient(key, this.token);
      this.clients.set(key, client);
    }
    return client;
  }

  /** Closes every client's idle connections (the host is closing). */
  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  /** `http://a:1/` and `http://a:1` are one node. */
  private static key(url: string): string {
    return url.replace(/\/+$/, '');
  }
}
