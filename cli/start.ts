// `lakebase start`: runs the whole lakebase on this machine as supervised processes.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Supervisor } from './supervisor.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export async function start(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { dir: { type: 'string' }, 'storage-port': { type: 'string' }, quiet: { type: 'boolean' } },
  });
  const dir = resolve(values.dir ?? process.env.LAKEBASE_DIR ?? '.lakebase');
  await mkdir(dir, { recursive: true });
  const quiet = values.quiet ?? false;
  const supervisor = new Supervisor((line) => {
    if (!quiet) process.stderr.write(line + '\n');
  });
  const storageEnv: Record<string, string> = {};
  if (!process.env.LAKEBASE_S3_BUCKET && !process.env.LAKEBASE_OBJECT_STORE_DIR) storageEnv.LAKEBASE_OBJECT_STORE_DIR = join(dir, 'objects');
  const storage = await supervisor.start({
    name: 'storage-node',
    script: join(ROOT, 'storage-node/main.ts'),
    args: ['--data-dir', join(dir, 'storage-node'), '--port', values['storage-port'] ?? process.env.LAKEBASE_STORAGE_PORT ?? '9870'],
    env: storageEnv,
    readyMessage: 'storage node listening',
  });
  const local = { storageUrl: String(storage.ready.url), dir };
  await writeFile(join(dir, 'local.json'), JSON.stringify(local, null, 2) + '\n');
  process.stdout.write(
    [
      '',
      'lakebase is running',
      `  storage node   ${local.storageUrl}   (API: docs/storage-node-api.md)`,
      `  state          ${dir}`,
      `  details        ${join(dir, 'local.json')}`,
      '  Ctrl-C to stop.',
      '',
    ].join('\n') + '\n',
  );
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('stopping: flushing to the object store...\n');
    supervisor.stopAll().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

