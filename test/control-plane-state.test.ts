// The control plane's durable state on a real local-folder object store: a change is one small object whatever the
// size of the state; a restart reads the snapshot and the changes after it; two control planes on one bucket never
// overwrite each other, even when one is stale past a snapshot; the single document of older versions is read.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { emptyState } from '../control-plane/model.ts';
import type { BranchRecord, ControlPlaneState } from '../control-plane/model.ts';
import { StateConflictError, StateStore } from '../control-plane/state-store.ts';
import { LocalFolderStore } from '../storage-node/object-store/local-folder.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function bucket(): Promise<LocalFolderStore> {
  const d = await mkdtemp(join(tmpdir(), 'lakebase-cp-state-'));
  dirs.push(d);
  return new LocalFolderStore(d);
}

function branch(i: number): BranchRecord {
  const now = new Date(1_790_000_000_000 + i).toISOString();
  return {
    id: `br-${i}`, project_id: 'p1', name: `branch-${i}`, parent_id: 'br-0', parent_lsn: '0/1000', parent_timestamp: null,
    timeline_id: i.toString(16).padStart(32, '0'), default: false, protected: false, expires_at: null, created_at: now, updated_at: now,
  };
}

async function addBranches(s: StateStore, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    await s.mutate((d) => {
      d.branches[`br-${i}`] = branch(i);
    });
  }
}

const changeObjects = async (b: LocalFolderStore) => b.list('control-plane/log/');
const snapshots = async (b: LocalFolderStore) => b.list('control-plane/snapshot/');

describe('control-plane state store', () => {
  it('writes each change as one small object, whatever the size of the state, and reads it all back after a restart', async () => {
    const b = await bucket();
    const s = new StateStore(b);
    await s.load();
    await addBranches(s, 0, 10);
    const early = (await changeObjects(b)).at(-1)!.size;
    await addBranches(s, 10, 1500); // past the snapshot interval (1000 changes): one snapshot on the way
    const late = (await changeObjects(b)).at(-1)!.size;
    expect(late).toBeLessThan(early * 1.2);
    expect(late).toBeLessThan(2048);
    await expect.poll(async () => (await snapshots(b)).length).toBe(1);
    expect((await changeObjects(b)).length).toBeLessThan(1500); // the changes the snapshot holds were removed

    const again = new StateStore(b);
    await again.load();
    expect(Object.keys(again.current.branches)).toHaveLength(1500);
    expect(again.current.branches['br-1499']).toEqual(branch(1499));
    expect(again.changes).toBe(1500);
  });

  it('a change to a long list writes the records it touched, not the list, and a reload keeps the order', async () => {
    const b = await bucket();
    const s = new StateStore(b);
    await s.load();
    const role = (i: number) => ({ branch_id: `br-${i}`, name: 'owner', protected: false, no_login: false, created_at: '2026-01-01T00:00:00.000Z' });
    await s.mutate((d) => {
      for (let i = 0; i < 1500; i++) d.roles.push(role(i) as never);
    });
    await s.mutate((d) => {
      d.roles = d.roles.filter((r) => r.branch_id !== 'br-3'); // a removal near the start shifts every later index
      d.roles[700].name = 'renamed';
      d.roles.push(role(9999) as never);
    });
    expect((await changeObjects(b)).at(-1)!.size).toBeLessThan(1024);
    const again = new StateStore(b);
    await again.load();
    expect(again.current.roles).toEqual(s.current.roles);
    expect(again.current.roles.map((r) => r.branch_id).slice(0, 4)).toEqual(['br-0', 'br-1', 'br-2', 'br-4']);
    expect(again.current.roles[700].name).toBe('renamed');
  });

  it('a failed change writes nothing; a change returns plain copies of the records it touched; the state is frozen', async () => {
    const b = await bucket();
    const s = new StateStore(b);
    await s.load();
    await addBranches(s, 0, 2);
    await expect(s.mutate((d) => {
      d.branches['br-0'].name = 'renamed';
      throw new Error('refused');
    })).rejects.toThrow('refused');
    expect(s.current.branches['br-0'].name).toBe('branch-0');
    expect(await changeObjects(b)).toHaveLength(2);
    const got = await s.mutate((d) => {
      const x = d.branches['br-1'];
      x.name = 'one';
      return { branch: x, list: [x] };
    });
    expect(got.branch.name).toBe('one'); // usable after the draft is finished
    expect(got.list[0].name).toBe('one');
    expect(() => {
      (s.current.branches['br-1'] as { name: string }).name = 'outside';
    }).toThrow(TypeError);
    expect(await s.mutate(() => 'nothing changed')).toBe('nothing changed');
    expect(await changeObjects(b)).toHaveLength(3);
  });

  it('two control planes on one bucket: the second writer of a change is refused, also when it is stale past a snapshot', async () => {
    const b = await bucket();
    const a = new StateStore(b);
    await a.load();
    await addBranches(a, 0, 3);
    const stale = new StateStore(b);
    await stale.load();
    await addBranches(a, 3, 4);
    await expect(addBranches(stale, 100, 101)).rejects.toBeInstanceOf(StateConflictError);
    expect(stale.current.branches['br-100']).toBeUndefined();

    // a snapshot removes the changes it holds; a writer behind it would create such a change again unnoticed
    const behind = new StateStore(b);
    await behind.load();
    await addBranches(a, 4, 6);
    await a.flush();
    expect((await changeObjects(b)).length).toBe(0);
    await expect(addBranches(behind, 200, 201)).rejects.toBeInstanceOf(StateConflictError);
    expect((await changeObjects(b)).length).toBe(0); // its change was withdrawn

    const fresh = new StateStore(b);
    await fresh.load();
    expect(Object.keys(fresh.current.branches).sort()).toEqual(['br-0', 'br-1', 'br-2', 'br-3', 'br-4', 'br-5']);
  });

  it('reads the single state document of older versions, goes on from it, and drops it at the first snapshot', async () => {
    const b = await bucket();
    const old: ControlPlaneState = { ...emptyState(), template_timeline_id: 'f'.repeat(32), branches: { 'br-0': branch(0) } };
    await b.put('control-plane/state.json', Buffer.from(JSON.stringify(old)));
    const s = new StateStore(b);
    await s.load();
    expect(s.current.template_timeline_id).toBe('f'.repeat(32));
    await addBranches(s, 1, 3);
    const reread = new StateStore(b);
    await reread.load();
    expect(Object.keys(reread.current.branches).sort()).toEqual(['br-0', 'br-1', 'br-2']);
    await s.flush();
    expect(await b.get('control-plane/state.json')).toBeNull();
    const last = new StateStore(b);
    await last.load();
    expect(last.current).toEqual(s.current);
  });
});
