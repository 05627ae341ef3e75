// Reads and writes layer files: a local copy on this node's disk when there is one, byte ranges from the
// object store when there is not (a node started on an empty disk downloads only what reads touch).
import { closeSync, mkdirSync, openSync, readSync, existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ObjectStore } from '../object-store/object-store.ts';
import { FOOTER_SIZE, parseFooter, parseIndex } from './layer-file.ts';
import type { LayerIndex } from './layer-file.ts';
import { keys } from './manifest.ts';
import type { LayerRef } from './timeline.ts';

export type ReadSource = 'local_layer' | 'object_store';

export class LayerStore {
  private readonly cacheDir: string;
  private readonly store: ObjectStore;
  private readonly fds = new Map<string, number>();
  private readonly onRead: (source: ReadSource, bytes: number) => void;

  constructor(cacheDir: string, store: ObjectStore, onRead: (source: ReadSource, bytes: number) => void = () => {}) {
    this.cacheDir = cacheDir;
    this.store = store;
    this.onRead = onRead;
    mkdirSync(cacheDir, { recursive: true });
  }

  private localPath(tl: string, name: string): string {
    return join(this.cacheDir, tl, name);
  }

  /** Keeps a local copy and uploads the layer; resolves once it is in the object store. */
  async put(tl: string, name: string, bytes: Buffer): Promise<void> {
    const path = this.localPath(tl, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
    await this.store.put(keys.layer(tl, name), bytes, { ifNoneMatch: '*' });
  }

  private fd(tl: string, name: string): number | null {
    const id = `${tl}/${name}`;
    const cached = this.fds.get(id);
    if (cached !== undefined) return cached;
    const path = this.localPath(tl, name);
    if (!existsSync(path)) return null;
    const fd = openSync(path, 'r');
    this.fds.set(id, fd);
    return fd;
  }

  private readLocal(fd: number, offset: number, length: number): Buffer {
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, buf, done, length - done, offset + done);
      if (n === 0) throw new Error('unexpected end of layer file');
      done += n;
    }
    return buf;
  }

  private async readRange(tl: string, name: string, offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const fd = this.fd(tl, name);
    if (fd !== null) {
      this.onRead('local_layer', length);
      return this.readLocal(fd, offset, length);
    }
    const res = await this.store.get(keys.layer(tl, name), { start: offset, end: offset + length });
    if (!res) throw new Error(`layer ${name} of timeline ${tl} is missing from the object store`);
    this.onRead('object_store', length);
    return res.body;
  }

  async readBlob(ref: LayerRef): Promise<Buffer> {
    return this.readRange(ref.timelineId, ref.layer, ref.offset, ref.length);
  }

  /** The layer's index: from the local copy, or with two range reads (footer, then index) from the bucket. */
  async readIndex(tl: string, name: string, size: number): Promise<LayerIndex> {
    const footer = await this.readRange(tl, name, size - FOOTER_SIZE, FOOTER_SIZE);
    const f = parseFooter(name, footer);
    const json = await this.readRange(tl, name, f.indexOffset, f.indexLength);
    return parseIndex(name, json, f.crc);
  }

  async remove(tl: string, name: string): Promise<void> {
    const id = `${tl}/${name}`;
    const fd = this.fds.get(id);
    if (fd !== undefined) {
      closeSync(fd);
      this.fds.delete(id);
    }
    await rm(this.localPath(tl, name), { force: true });
    await this.store.delete(keys.layer(tl, name));
  }

  async removeTimeline(tl: string): Promise<void> {
    for (const [id, fd] of this.fds) {
      if (id.startsWith(tl + '/')) {
        closeSync(fd);
        this.fds.delete(id);
      }
    }
    await rm(join(this.cacheDir, tl), { recursive: true, force: true });
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
