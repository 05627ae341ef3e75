#!/usr/bin/env node
// The `lakebase` command. `lakebase start` runs the whole lakebase on this machine (see README).
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Supervisor } from './supervisor.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const HELP = `lakebase: an open lakebase (serverless Postgres on branchable storage in S3/R2)

Usage:
  lakebase start [--dir DIR] [--storage-port N] [--quiet]
      Runs every service on this machine, supervised (a service that dies is restarted).
      State (object store folder, storage node disk) lives in DIR (default .lakebase, or LAKEBASE_DIR).
      With LAKEBASE_S3_BUCKET (and LAKEBASE_S3_ENDPOINT, ...) the object store is that bucket instead.
      Writes DIR/local.json with the addresses of what it started. Ctrl-C stops everything cleanly.
  lakebase help

Environment: LAKEBASE_DIR, LAKEBASE_STORAGE_PORT (9870), LAKEBASE_DURABILITY (local | object-store),
LAKEBASE_S3_* (see docs/storage-node-api.md), LAKEBASE_LOG_LEVEL (info).`;

async function start(argv: string[]): Promise<void> {
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

const [command, ...rest] = process.argv.slice(2);
switch (command) {
  case 'start':
    await start(rest);
    break;
  case undefined:
  case 'help':
  case '--help':
  case '-h':
    process.stdout.write(HELP + '\n');
    break;
  default:
    process.stderr.write(`lakebase: unknown command ${JSON.stringify(command)}\n\n${HELP}\n`);
    process.exit(2);
}
