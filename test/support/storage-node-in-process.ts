// A storage node in the test process over a local-folder object store in `root` (local durability, quiet logs),
// guarded by a random token (node.token).
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createLogger } from '../../lib/logger.ts';
import { LocalFolderStore } from '../../storage-node/object-store/local-folder.ts';
import { startStorageNode } from '../../storage-node/server.ts';
import type { StorageNode } from '../../storage-node/server.ts';

export function startTestStorageNode(root: string): Promise<StorageNode> {
  return startStorageNode({
    dataDir: join(root, 'storage'),
    objectStore: new LocalFolderStore(join(root, 'objects')),
    host: '127.0.0.1',
    port: 0,
    token: randomBytes(16).toString('hex'),
    durability: 'local',
    logger: createLogger('storage-node', 'warn'),
  });
}
