// Layer files (storage-node/engine/layer-file.ts) through the layer store that reads them: what is encoded is
// what an index and its blobs read back, and a damaged file is refused with CorruptLayerError, never misread.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../storage-node/api/types.ts';
import { CorruptLayerError, FOOTER_SIZE, LAYER_MAGIC, encodeLayer } from '../storage-node/engine/layer-file.ts';
import type { LayerContent } from '../storage-node/engine/layer-file.ts';
import { LayerStore } from '../storage-node/engine/layer-store.ts';
import { decodeDelta, reconstructPage } from '../storage-node/engine/page.ts';
import { LocalFolderStore } from '../storage-node/object-store/local-folder.ts';

const TL = 'ab'.repeat(16);
const dirs: string[] = [];
const stores: LayerStore[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function layerStore(): Promise<LayerStore> {
  const root = await mkdtemp(join(tmpdir(), 'lakebase-layer-'));
  dirs.push(root);
  const s = new LayerStore(join(root, 'cache'), new LocalFolderStore(join(root, 'objects')));
  stores.push(s);
  return s;
}

function content(): LayerContent {
  const image = Buffer.alloc(PAGE_SIZE);
  image.write('hello page', 100);
  return {
    timelineId: TL,
    kind: 'delta',
    lsnStart: 3,
    lsnEnd: 5,
    ns: [['base/1', 3, { type: 'file', ino: 'i.3.0' }], ['old', 4, null], ['dir', 5, { type: 'dir' }]],
    sizes: [['i.3.0', 3, { size: 8192, cut: 0 }], ['i.3.0', 5, { size: 20000, cut: 100 }]],
    pages: [
      ['i.3.0/0', 3, { kind: 'image', bytes: image }],
      ['i.3.0/0', 5, { kind: 'delta', ranges: [{ offset: 0, bytes: Buffer.from('AB') }, { offset: 8000, bytes: Buffer.from('tail') }] }],
      ['i.3.0/2', 5, { kind: 'image', bytes: Buffer.alloc(PAGE_SIZE) }],
    ],
    times: [[3, 1_700_000_000_000], [5, 1_700_000_000_500]],
  };
}

describe('layer files', () => {
  it('round trip: the index says what was written, and each blob reads back as its version', async () => {
    const store = await layerStore();
    const c = content();
    const { bytes, index } = encodeLayer(c);
    expect(bytes.subarray(0, 8).equals(LAYER_MAGIC)).toBe(true);
    await store.put(TL, 'delta-a.layer', bytes);

    const read = await store.readIndex(TL, 'delta-a.layer', bytes.length);
    expect(read).toEqual(index);
    expect(read).toMatchObject({ format: 'lakebase-layer', version: 1, timelineId: TL, kind: 'delta', lsnStart: 3, lsnEnd: 5 });
    expect(read.ns).toEqual(c.ns);
    expect(read.sizes).toEqual([['i.3.0', 3, 8192, 0], ['i.3.0', 5, 20000, 100]]);
    expect(read.times).toEqual(c.times);
    expect(read.pages.map(([key, lsn, kind]) => [key, lsn, kind])).toEqual([['i.3.0/0', 3, 'i'], ['i.3.0/0', 5, 'd'], ['i.3.0/2', 5, 'i']]);

    const blob = (i: number) => store.readBlob({ timelineId: TL, layer: 'delta-a.layer', offset: read.pages[i][3], length: read.pages[i][4] });
    const image = await blob(0);
    expect(image.length).toBe(110); // stored without its trailing zeros
    const page = reconstructPage(image, [decodeDelta(await blob(1))]);
    expect(page.subarray(0, 2).toString()).toBe('AB');
    expect(page.subarray(100, 110).toString()).toBe('hello page');
    expect(page.subarray(8000, 8004).toString()).toBe('tail');
    expect((await blob(2)).length).toBe(0); // an all-zero page costs no bytes
  });

  it('reads the same index and blobs from the object store when there is no local copy', async () => {
    const root = await mkdtemp(join(tmpdir(), 'lakebase-layer-'));
    dirs.push(root);
    const objects = new LocalFolderStore(join(root, 'objects'));
    const writer = new LayerStore(join(root, 'cache-1'), objects);
    const reader = new LayerStore(join(root, 'cache-2'), objects);
    stores.push(writer, reader);
    const { bytes, index } = encodeLayer(content());
    await writer.put(TL, 'delta-b.layer', bytes);
    expect(await reader.readIndex(TL, 'delta-b.layer', bytes.length)).toEqual(index);
    const [, , , offset, length] = index.pages[0];
    expect(await reader.readBlob({ timelineId: TL, layer: 'delta-b.layer', offset, length })).toEqual(bytes.subarray(offset, offset + length));
  });

  /** Stores `bytes` as a layer and reads its index back. */
  async function readDamaged(bytes: Buffer): Promise<unknown> {
    const store = await layerStore();
    await store.put(TL, 'damaged.layer', bytes);
    return store.readIndex(TL, 'damaged.layer', bytes.length);
  }

  it('refuses a flipped byte in the index (checksum)', async () => {
    const { bytes } = encodeLayer(content());
    const indexOffset = Number(bytes.readBigUInt64BE(bytes.length - FOOTER_SIZE));
    const damaged = Buffer.from(bytes);
    damaged[indexOffset + 10] ^= 0x01;
    await expect(readDamaged(damaged)).rejects.toThrow(CorruptLayerError);
    await expect(readDamaged(damaged)).rejects.toThrow(/index checksum mismatch/);
  });

  it('refuses a truncated file (no footer where it should be)', async () => {
    const { bytes } = encodeLayer(content());
    for (const cut of [1, FOOTER_SIZE, bytes.length - 40]) {
      await expect(readDamaged(bytes.subarray(0, bytes.length - cut))).rejects.toThrow(CorruptLayerError);
    }
  });

  it('refuses a wrong end magic', async () => {
    const { bytes } = encodeLayer(content());
    const damaged = Buffer.from(bytes);
    damaged.write('LKBLEND2', damaged.length - 8);
    await expect(readDamaged(damaged)).rejects.toThrow(/layer damaged.layer is corrupt: bad footer/);
  });

  it('refuses an index of another format or version, even with a good checksum', async () => {
    for (const patch of [{ format: 'other' }, { version: 2 }]) {
      const c = content();
      const { bytes, index } = encodeLayer(c);
      // Re-encode the same blobs with a doctored index and a checksum that matches it.
      const indexOffset = Number(bytes.readBigUInt64BE(bytes.length - FOOTER_SIZE));
      const json = Buffer.from(JSON.stringify({ ...index, ...patch }));
      const footer = Buffer.from(bytes.subarray(bytes.length - FOOTER_SIZE));
      footer.writeBigUInt64BE(BigInt(json.length), 8);
      footer.writeUInt32BE(crc32(json), 16);
      const doctored = Buffer.concat([bytes.subarray(0, indexOffset), json, footer]);
      await expect(readDamaged(doctored)).rejects.toThrow(/unknown format or version/);
    }
  });

  it('CorruptLayerError is a storage fault answered as a 500', () => {
    const e = new CorruptLayerError('x.layer', 'bad footer');
    expect(e).toMatchObject({ name: 'CorruptLayerError', status: 500, code: 'internal_error', kind: 'storage' });
  });
});
