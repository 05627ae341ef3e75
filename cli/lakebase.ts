#!/usr/bin/env node
// The `lakebase` command. `lakebase start` runs the whole lakebase on this machine (see README).
import { start } from './start.ts';

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
