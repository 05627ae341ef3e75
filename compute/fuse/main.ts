// The FUSE server process of one compute, forked by FuseServer.start (fuse-server.ts) with an IPC channel: its
// own process, so that the event loop serving the mount is never one that touches the mount, and a crash or a
// GC pause stalls only this compute. The first message is the mount's configuration; the storage token comes
// by environment (LAKEBASE_STORAGE_TOKEN), never argv. Logs go to the host as pino lines over IPC.
import { pino } from 'pino';
import { parse } from '../../lib/validate.ts';
import { FuseMount } from './fuse-mount.ts';
import { preflight } from './mount.ts';
import { mountConfigSchema } from './protocol.ts';
import type { FromChild, ToChild } from './protocol.ts';

function send(m: FromChild, then?: () => void): void {
  if (!process.connected) {
    then?.();
    return;
  }
  process.send!(m, undefined, {}, () => then?.());
}

if (!process.send) {
  console.error('compute/fuse/main.ts is started by FuseServer.start (compute/fuse/fuse-server.ts): it needs an IPC channel');
  process.exit(2);
}

const log = pino({ level: process.env.LAKEBASE_LOG_LEVEL ?? 'info', base: { component: 'fuse', pid: process.pid } }, { write: (line: string) => send({ t: 'log', line }) });
const token = process.env.LAKEBASE_STORAGE_TOKEN || undefined;
delete process.env.LAKEBASE_STORAGE_TOKEN; // not inherited by fusermount
let mount: FuseMount | null = null;
let stopping = false;
// ahead of the start message (a spare server waits for it): its failure is reported by the start, which awaits it
preflight().catch(() => undefined);

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

async function start(m: ToChild): Promise<void> {
  try {
    if (m.t !== 'start') throw new Error(`the first message must be 'start', not '${m.t}'`);
    const cfg = parse(mountConfigSchema, m.config);
    mount = await FuseMount.start(cfg, token, log, (event) => send({ t: 'event', event }));
  } catch (e) {
    send({ t: 'start_failed', message: message(e) }, () => process.exit(1));
    return;
  }
  process.on('message', (msg: ToChild) => onMessage(msg));
  send({ t: 'ready', info: mount.info });
}

function onMessage(m: ToChild): void {
  if (m.t === 'stats' && mount) send({ t: 'stats', id: m.id, stats: mount.stats() });
  else if (m.t === 'start_done') mount?.startDone();
  else if (m.t === 'stop') void stop();
}

/** Ships what is pending, unmounts, exits 0 (1 if the ship failed). */
async function stop(): Promise<void> {
  if (stopping || !mount) return;
  stopping = true;
  try {
    const lsn = await mount.stop();
    send({ t: 'stopped', lsn }, () => process.exit(0));
  } catch (e) {
    log.error({ err: message(e) }, 'stop failed');
    send({ t: 'stop_failed', message: message(e) }, () => process.exit(1));
  }
}

process.once('message', (m: ToChild) => void start(m));
process.on('SIGTERM', () => void stop());
// a Ctrl-C reaches the whole process group: Postgres then needs this mount for its shutdown checkpoint, so the
// mount goes only when the host says so (stop, kill) or is gone (disconnect)
process.on('SIGINT', () => {});
// the compute host is gone: nobody would ever stop or kill this mount, so take it down (unshipped data is lost,
// as in a crash; Postgres, if still running, sees the mount go away)
process.on('disconnect', () => {
  if (stopping) return;
  stopping = true;
  (mount ? mount.abort() : Promise.resolve()).finally(() => process.exit(1));
});
