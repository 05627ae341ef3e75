// Machines for a test: each service in its own network namespace with only a loopback and one veth interface
// (10.213.<lab>.N/24), the veths joined by a bridge in a hub namespace that has no address. Nothing is added to
// the test machine's own network; everything is removed at the end (and named lbt<lab>-... so that a leftover of
// a killed run is recognisable). Where namespaces cannot be made (no root, no iproute2), the same lab runs each
// service on its own 127.0.0.N address instead, as the issue allows.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';

export interface NetLab {
  /** 'netns' or 'loopback' (the fallback). */
  kind: 'netns' | 'loopback';
  /** The address of a machine. */
  address(machine: string): string;
  /** Runs a command on a machine. */
  spawn(machine: string, command: string, args: string[], env: Record<string, string>): ChildProcess;
  destroy(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

function canMakeNamespaces(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    const probe = `lbtprobe${process.pid}`;
    ip('netns', 'add', probe);
    ip('netns', 'del', probe);
    return true;
  } catch {
    return false;
  }
}

/** One machine per name, in namespaces when possible. */
export function createNetLab(machines: string[]): NetLab {
  return canMakeNamespaces() ? namespaceLab(machines) : loopbackLab(machines);
}

function loopbackLab(machines: string[]): NetLab {
  const addr = new Map(machines.map((m, i) => [m, `127.0.0.${i + 2}`]));
  return {
    kind: 'loopback',
    address: (m) => addr.get(m)!,
    spawn: (_m, command, args, env) => spawn(command, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] }),
    destroy: () => {},
  };
}

function namespaceLab(machines: string[]): NetLab {
  const lab = process.pid % 250;
  const prefix = `lbt${lab}`;
  const hub = `${prefix}-hub`;
  const ns = (m: string) => `${prefix}-${m}`;
  const addr = new Map(machines.map((m, i) => [m, `10.213.${lab}.${i + 2}`]));
  const made: string[] = [];
  const destroy = () => {
    for (const n of made.reverse()) {
      try {
        ip('netns', 'del', n);
      } catch {
        // already gone
      }
    }
  };
  try {
    ip('netns', 'add', hub);
    made.push(hub);
    ip('-n', hub, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', hub, 'link', 'set', 'br0', 'up');
    machines.forEach((m, i) => {
      ip('netns', 'add', ns(m));
      made.push(ns(m));
      ip('-n', ns(m), 'link', 'set', 'lo', 'up');
      // the pair is made in the hub, then one end moves into the machine: nothing touches the root namespace
      ip('-n', hub, 'link', 'add', `v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(m));
      ip('-n', hub, 'link', 'set', `v${i}`, 'master', 'br0', 'up');
      ip('-n', ns(m), 'addr', 'add', `${addr.get(m)}/24`, 'dev', 'eth0');
      ip('-n', ns(m), 'link', 'set', 'eth0', 'up');
    });
  } catch (e) {
    destroy();
    throw e;
  }
  return {
    kind: 'netns',
    address: (m) => addr.get(m)!,
    spawn: (m, command, args, env) => spawn('ip', ['netns', 'exec', ns(m), command, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] }),
    destroy,
  };
}
