// Manifests (storage-node/engine/manifest.ts): what a new timeline's manifest says, that a manifest read back is
// the one written, that anything else is refused, and the object keys a reader of the bucket relies on.
import { describe, expect, it } from 'vitest';
import { keys, lsnHex, newManifest, parseManifest } from '../storage-node/engine/manifest.ts';
import type { Manifest } from '../storage-node/engine/manifest.ts';

const TL = '0123456789abcdef'.repeat(2);
const PARENT = 'f'.repeat(32);
const KEY = keys.manifest(TL);

/** As the engine writes it (StorageEngine.uploadManifest). */
const encode = (m: Manifest): Buffer => Buffer.from(JSON.stringify(m, null, 1));

describe('manifests', () => {
  it('a new timeline starts at its branch point with no layers', () => {
    expect(newManifest(TL, null, 0, 1000)).toEqual({
      format: 'lakebase-manifest', version: 1, timelineId: TL, ancestorTimelineId: null, ancestorLsn: 0, createdAt: 1000,
      uploadedLsn: 0, gcCutoffLsn: 0, generation: 0, layers: [],
    });
    const branch = newManifest(TL, PARENT, 42, 2000);
    expect(branch).toMatchObject({ ancestorTimelineId: PARENT, ancestorLsn: 42, uploadedLsn: 42, gcCutoffLsn: 42 });
  });

  it('round trip: a manifest read back is the one written', () => {
    const m: Manifest = {
      ...newManifest(TL, PARENT, 7, 1_700_000_000_000),
      uploadedLsn: 40,
      gcCutoffLsn: 12,
      generation: 9,
      layers: [
        { name: `delta-${lsnHex(8)}-${lsnHex(40)}-0a0b0c0d.layer`, kind: 'delta', lsnStart: 8, lsnEnd: 40, size: 123456 },
        { name: `image-${lsnHex(12)}-${lsnHex(12)}-01020304.layer`, kind: 'image', lsnStart: 12, lsnEnd: 12, size: 99 },
      ],
    };
    expect(parseManifest(KEY, encode(m))).toEqual(m);
  });

  it('refuses what is not a lakebase manifest of a known version, naming the key', () => {
    const good = newManifest(TL, null, 0, 1);
    const bad: [unknown, RegExp][] = [
      [{ ...good, format: 'something-else' }, /not a lakebase manifest \(format something-else version 1\)/],
      [{ ...good, version: 2 }, /not a lakebase manifest \(format lakebase-manifest version 2\)/],
      [{ timelineId: TL }, /not a lakebase manifest/],
    ];
    for (const [body, msg] of bad) {
      expect(() => parseManifest(KEY, Buffer.from(JSON.stringify(body)))).toThrow(msg);
      expect(() => parseManifest(KEY, Buffer.from(JSON.stringify(body)))).toThrow(KEY);
    }
    expect(() => parseManifest(KEY, Buffer.from('{"format": "lakebase-manifest", '))).toThrow(SyntaxError);
  });

  it('keys: one folder per timeline; LSNs as 16 hex digits, so key order is LSN order', () => {
    expect(keys.manifest(TL)).toBe(`timelines/${TL}/manifest.json`);
    expect(keys.layer(TL, 'x.layer')).toBe(`timelines/${TL}/layers/x.layer`);
    expect(keys.walObject(TL, 255)).toBe(`timelines/${TL}/wal/00000000000000ff.batch`);
    for (const k of [keys.manifest(TL), keys.layer(TL, 'x'), keys.walObject(TL, 1)]) {
      expect(k.startsWith(keys.timelinePrefix(TL))).toBe(true);
      expect(k.startsWith(keys.timelinesPrefix)).toBe(true);
    }
    expect(keys.walObject(TL, 3).startsWith(keys.walPrefix(TL))).toBe(true);
    const lsns = [0, 1, 9, 10, 15, 16, 255, 256, 2 ** 32, Number.MAX_SAFE_INTEGER];
    const sorted = lsns.map((l) => keys.walObject(TL, l)).sort();
    expect(sorted).toEqual(lsns.map((l) => keys.walObject(TL, l)));
    expect(lsnHex(Number.MAX_SAFE_INTEGER)).toHaveLength(16);
  });
});
