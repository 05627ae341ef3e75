// The Iceberg v2 writer (lake/iceberg) against a real LocalFolderStore, checked with an independent reader:
// icebird reads every table this test writes. icebird fetches files by URL and the global fetch does not do
// file://, so for the duration of this file fetch answers file:// URLs (GET, ranged GET, HEAD) from disk; that is
// transport only, icebird does all the Iceberg, Avro and Parquet reading.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { avroMetadata, avroRead, icebergRead } from 'icebird';
import { parquetMetadata } from 'hyparquet';
import { LocalFolderStore } from '../storage-node/object-store/local-folder.ts';
import { PreconditionFailedError } from '../storage-node/object-store/object-store.ts';
import { IcebergError, IcebergTable, objectUri, type IcebergSchema, type Row } from '../lake/iceberg/index.ts';
import { newTableMetadata, parseJsonWithIds, parseTableMetadata, stringifyMetadata } from '../lake/iceberg/metadata.ts';
import { formatDecimal, parseDecimal } from '../lake/iceberg/values.ts';

// ---------------------------------------------------------------------------------------------------------------
// file:// transport for icebird

const realFetch = globalThis.fetch;

async function fileFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  if (!url.startsWith('file://')) return realFetch(input, init);
  const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
  const path = fileURLToPath(url);
  const info = await stat(path).catch(() => null);
  if (!info?.isFile()) return new Response(null, { status: 404, statusText: 'Not Found' });
  const size = info.size;
  if (method === 'HEAD') return new Response(null, { status: 200, headers: { 'content-length': String(size) } });
  const data = await readFile(path);
  const range = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined)).get('range');
  if (!range) return new Response(data, { status: 200, headers: { 'content-length': String(size) } });
  const m = /^bytes=(\d+)-(\d*)$/.exec(range.trim());
  const start = m ? Number(m[1]) : Number.NaN;
  const end = m && m[2] !== '' ? Math.min(Number(m[2]), size - 1) : size - 1;
  if (!m || start >= size || end < start) {
    return new Response(null, { status: 416, headers: { 'content-range': `bytes */${size}` } });
  }
  const body = data.subarray(start, end + 1);
  return new Response(body, {
    status: 206,
    headers: { 'content-length': String(body.length), 'content-range': `bytes ${start}-${end}/${size}` },
  });
}

// ---------------------------------------------------------------------------------------------------------------
// the table under test

const schema: IcebergSchema = {
  'schema-id': 0,
  type: 'struct',
  'identifier-field-ids': [1],
  fields: [
    { id: 1, name: 'id', required: true, type: 'long' },
    { id: 2, name: 'i', required: true, type: 'int' },
    { id: 3, name: 'l', required: false, type: 'long' },
    { id: 4, name: 'f', required: false, type: 'float' },
    { id: 5, name: 'd', required: false, type: 'double' },
    { id: 6, name: 'b', required: false, type: 'boolean' },
    { id: 7, name: 's', required: false, type: 'string' },
    { id: 8, name: 'dec', required: false, type: 'decimal(10, 2)' },
    { id: 9, name: 'dt', required: false, type: 'date' },
    { id: 10, name: 'ts', required: false, type: 'timestamp' },
    { id: 11, name: 'tstz', required: false, type: 'timestamptz' },
    { id: 12, name: 'u', required: false, type: 'uuid' },
    { id: 13, name: 'bin', required: false, type: 'binary' },
    { id: 14, name: 'tags', required: false, type: { type: 'list', 'element-id': 15, element: 'long', 'element-required': false } },
    { id: 16, name: 'note', required: false, type: 'string' },
  ],
};

const ascii = (text: string) => new TextEncoder().encode(text);

function row(id: number, over: Partial<Row> = {}): Row {
  return {
    id: BigInt(id),
    i: id * 10 - 25,
    l: 9_007_199_254_740_993n * BigInt(id % 2 === 0 ? 1 : -1),
    f: 1.1 * id,
    d: -0.5 * id,
    b: id % 2 === 0,
    s: `row ${id} é`,
    dec: id % 2 === 0 ? `${id}.25` : `-${id * 100}.50`,
    dt: 19_000 + id,
    ts: 1_700_000_000_123_456n + BigInt(id),
    tstz: -86_400_000_000n * BigInt(id) - 7n,
    u: `f79c3e09-677c-4bbd-a479-3f349cb785e${id}`,
    bin: ascii(`bin-${id}`),
    tags: [BigInt(id), null, 2n ** 62n],
    note: null,
    ...over,
  };
}

/** A row as icebird returns it (icebird 0.3.1 on hyparquet 1.19), derived from the row this test wrote. */
function asIcebird(r: Row, fields = schema.fields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { name } of fields) {
    const v = r[name];
    if (v === null || v === undefined) {
      // a null list comes back undefined, as does a column the data file does not have
      out[name] = name === 'tags' || !(name in r) ? undefined : null;
      continue;
    }
    switch (name) {
      case 'f':
        out[name] = Math.fround(v as number); // float is stored as 32 bits
        break;
      case 'dec': // hyparquet scales the unscaled integer in floating point
        out[name] = Number(BigInt((v as string).replace('.', ''))) * 10 ** -2;
        break;
      case 'dt':
        out[name] = new Date((v as number) * 86_400_000);
        break;
      case 'ts':
      case 'tstz': // a Date, so the microseconds are cut to milliseconds
        out[name] = new Date(Number((v as bigint) / 1000n));
        break;
      case 'u': // the 16 bytes: hyparquet 1.19 does not format UUIDs
        out[name] = Uint8Array.from(Buffer.from((v as string).replace(/-/g, ''), 'hex'));
        break;
      case 'bin': // icebird reads unannotated BYTE_ARRAY as UTF-8 text
        out[name] = new TextDecoder().decode(v as Uint8Array);
        break;
      default:
        out[name] = v;
    }
  }
  return out;
}

/** A row as this writer's own reader returns it: the same, but float rounded to 32 bits. */
const asStored = (r: Row): Row => (typeof r.f === 'number' ? { ...r, f: Math.fround(r.f) } : r);

const byId = (a: Record<string, unknown>, b: Record<string, unknown>) => ((a.id as bigint) < (b.id as bigint) ? -1 : 1);

async function icebirdRows(table: IcebergTable): Promise<Record<string, unknown>[]> {
  return ((await icebergRead({ tableUrl: table.location })) as Record<string, unknown>[]).sort(byId);
}

async function avroFile(uri: string) {
  const buf = await readFile(fileURLToPath(uri));
  const reader = { view: new DataView(buf.buffer, buf.byteOffset, buf.byteLength), offset: 0 };
  const { metadata, syncMarker } = avroMetadata(reader);
  return { metadata, records: avroRead({ reader, metadata, syncMarker }) };
}

/** Every field of an Avro schema (nested records too) carries a field-id. */
function fieldsWithoutId(type: unknown, path = ''): string[] {
  if (Array.isArray(type)) return type.flatMap((t) => fieldsWithoutId(t, path));
  if (!type || typeof type !== 'object') return [];
  const t = type as { type: string; fields?: { name: string; type: unknown; 'field-id'?: number }[]; items?: unknown };
  if (t.type === 'record') {
    return (t.fields ?? []).flatMap((f) => [
      ...(typeof f['field-id'] === 'number' ? [] : [`${path}${f.name}`]),
      ...fieldsWithoutId(f.type, `${path}${f.name}.`),
    ]);
  }
  if (t.type === 'array') return fieldsWithoutId(t.items, path);
  return [];
}

// ---------------------------------------------------------------------------------------------------------------

let root: string;
let store: LocalFolderStore;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'lake-iceberg-'));
  store = new LocalFolderStore(root, { noSync: true });
  globalThis.fetch = fileFetch as typeof fetch;
});

afterAll(async () => {
  globalThis.fetch = realFetch;
  await store?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('IcebergTable, read back by icebird', () => {
  const prefix = 'lake/p1/main/events';
  let table: IcebergTable;
  let expected: Row[] = [];

  it('creates an empty v2 table once', async () => {
    expect(await IcebergTable.open(store, prefix)).toBeNull();
    table = await IcebergTable.create(store, prefix, schema, { owner: 'lakebase' });
    expect(table.location).toBe(`${store.description}/${prefix}`);
    expect(table.version).toBe(1);
    expect(table.currentSnapshot).toBeNull();
    expect(await readFile(join(root, prefix, 'metadata/version-hint.text'), 'utf8')).toBe('1');
    const meta = JSON.parse(await readFile(join(root, prefix, 'metadata/v1.metadata.json'), 'utf8'));
    expect(meta).toMatchObject({
      'format-version': 2,
      location: table.location,
      'last-sequence-number': 0,
      'last-column-id': 16,
      'current-schema-id': 0,
      'partition-specs': [{ 'spec-id': 0, fields: [] }],
      'default-spec-id': 0,
      'last-partition-id': 999,
      'sort-orders': [{ 'order-id': 0, fields: [] }],
      'default-sort-order-id': 0,
      properties: { owner: 'lakebase' },
      snapshots: [],
    });
    expect(meta['table-uuid']).toMatch(/^[0-9a-f-]{36}$/);
    await expect(IcebergTable.create(store, prefix, schema)).rejects.toBeInstanceOf(PreconditionFailedError);
  });

  it('appends rows of every type', async () => {
    expected = [row(1), row(2), row(3, { note: 'three', tags: [] }), row(4, { l: null, f: null, d: null, b: null, s: null, dec: null, dt: null, ts: null, tstz: null, u: null, bin: null, tags: null })];
    const r = await table.commit({ rows: expected, summary: { 'lakebase.lsn': '0/16B3748' } });
    expect(r.sequenceNumber).toBe(1);
    expect(r.snapshotId > 0n).toBe(true);
    expect(table.version).toBe(2);
    expect(table.currentSnapshot).toMatchObject({
      snapshotId: r.snapshotId,
      sequenceNumber: 1,
      summary: { operation: 'append', 'lakebase.lsn': '0/16B3748', 'added-data-files': '1', 'added-records': '4', 'total-records': '4', 'total-data-files': '1', 'total-delete-files': '0' },
    });
    expect(await icebirdRows(table)).toStrictEqual(expected.map((x) => asIcebird(x)));
    expect((await table.readRows()).sort(byId)).toStrictEqual(expected.map(asStored));
  });

  it('writes Parquet with field ids, spec types and the schema', async () => {
    const [file] = await table.files();
    const md = parquetMetadata((await readFile(fileURLToPath(file.path))).buffer as ArrayBuffer);
    const kv = md.key_value_metadata?.find((k) => k.key === 'iceberg.schema');
    expect(JSON.parse(kv?.value ?? '{}')).toStrictEqual(schema);
    const el = Object.fromEntries(md.schema.map((e) => [e.name, e]));
    for (const e of md.schema.slice(1)) if (e.name !== 'list') expect(e.field_id, e.name).toBeTypeOf('number');
    expect(el.id).toMatchObject({ type: 'INT64', repetition_type: 'REQUIRED', field_id: 1 });
    expect(el.i).toMatchObject({ type: 'INT32', repetition_type: 'REQUIRED', field_id: 2 });
    expect(el.l).toMatchObject({ type: 'INT64', repetition_type: 'OPTIONAL' });
    expect(el.dec).toMatchObject({ type: 'INT64', converted_type: 'DECIMAL', precision: 10, scale: 2, logical_type: { type: 'DECIMAL', precision: 10, scale: 2 } });
    expect(el.dt).toMatchObject({ type: 'INT32', converted_type: 'DATE' });
    expect(el.ts).toMatchObject({ type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: false, unit: 'MICROS' } });
    expect(el.tstz).toMatchObject({ type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' } });
    expect(el.s).toMatchObject({ type: 'BYTE_ARRAY', converted_type: 'UTF8' });
    expect(el.u).toMatchObject({ type: 'FIXED_LEN_BYTE_ARRAY', type_length: 16, logical_type: { type: 'UUID' } });
    expect(el.bin).toMatchObject({ type: 'BYTE_ARRAY' });
    expect(el.bin.converted_type).toBeUndefined();
    expect(el.tags).toMatchObject({ converted_type: 'LIST', field_id: 14, num_children: 1, repetition_type: 'OPTIONAL' });
    expect(el.list).toMatchObject({ repetition_type: 'REPEATED' });
    expect(el.element).toMatchObject({ type: 'INT64', field_id: 15, repetition_type: 'OPTIONAL' });
  });

  it('updates (equality delete + new row) and deletes in single commits', async () => {
    const updated = row(2, { s: 'updated', note: 'new version' });
    const up = await table.commit({ deletes: [{ id: 2n, s: 'ignored: only identifier fields count' }], rows: [updated, row(5)] });
    expect(table.currentSnapshot?.summary).toMatchObject({ operation: 'overwrite', 'added-delete-files': '1', 'added-equality-deletes': '1', 'total-records': '6' });
    const del = await table.commit({ deletes: [{ id: 3 }], summary: { 'lakebase.lsn': '0/16B3800' } });
    expect(del.sequenceNumber).toBe(up.sequenceNumber + 1);
    expect(table.currentSnapshot?.summary).toMatchObject({ operation: 'delete', 'total-delete-files': '2', 'total-data-files': '2' });
    expected = [row(1), updated, row(4, expected[3]), row(5)];
    expect(await icebirdRows(table)).toStrictEqual(expected.map((x) => asIcebird(x)));
    expect((await table.readRows()).sort(byId)).toStrictEqual(expected.map(asStored));
    const files = await table.files();
    expect(files.map((f) => f.content).sort()).toStrictEqual(['data', 'data', 'equality-deletes', 'equality-deletes']);
  });

  it('writes manifests and manifest lists icebird reads, with the v2 metadata and field ids', async () => {
    const meta = JSON.parse(await readFile(join(root, prefix, `metadata/v${table.version}.metadata.json`), 'utf8'));
    expect(meta.snapshots).toHaveLength(3);
    expect(meta['snapshot-log']).toHaveLength(3);
    expect(meta['metadata-log']).toHaveLength(3);
    expect(meta['last-sequence-number']).toBe(3);
    expect(meta.refs.main.type).toBe('branch');
    const current = meta.snapshots[2];
    expect(current['parent-snapshot-id']).toBe(meta.snapshots[1]['snapshot-id']);
    const list = await avroFile(current['manifest-list']);
    expect(list.metadata['format-version']).toBe('2');
    expect(fieldsWithoutId(list.metadata['avro.schema'])).toStrictEqual([]);
    // the new delete manifest first, then every earlier manifest carried over unchanged
    expect(list.records.map((m) => [m.content, m.sequence_number, m.added_files_count])).toStrictEqual([
      [1, 3n, 1],
      [0, 2n, 1],
      [1, 2n, 1],
      [0, 1n, 1],
    ]);
    for (const m of list.records) {
      const manifest = await avroFile(m.manifest_path);
      expect(manifest.metadata).toMatchObject({ 'partition-spec': '[]', 'partition-spec-id': '0', 'format-version': '2', content: m.content === 0 ? 'data' : 'deletes' });
      expect(manifest.metadata.schema).toMatchObject({ type: 'struct' });
      expect(fieldsWithoutId(manifest.metadata['avro.schema'])).toStrictEqual([]);
      const [entry] = manifest.records;
      expect(entry.status).toBe(1);
      expect(entry.data_file.partition).toStrictEqual({});
      expect(entry.data_file.content).toBe(m.content === 0 ? 0 : 2);
      expect(entry.data_file.equality_ids).toStrictEqual(m.content === 0 ? undefined : [1]);
      expect(entry.data_file.file_size_in_bytes).toBe(BigInt((await stat(fileURLToPath(entry.data_file.file_path))).size));
    }
  });

  it('evolves the schema: old rows read the new column as missing', async () => {
    const evolved: IcebergSchema = { ...schema, fields: [...schema.fields, { id: 17, name: 'extra', required: false, type: 'string' }] };
    await table.commit({ schema: evolved, rows: [{ ...row(6), extra: 'x6' }], summary: { 'lakebase.lsn': '0/16B3900' } });
    expect(table.schema['schema-id']).toBe(1);
    expect(table.schema.fields.map((f) => f.id)).toContain(17);
    const meta = JSON.parse(await readFile(join(root, prefix, `metadata/v${table.version}.metadata.json`), 'utf8'));
    expect(meta['last-column-id']).toBe(17);
    expect(meta.schemas.map((s: IcebergSchema) => s['schema-id'])).toStrictEqual([0, 1]);
    expected = [...expected, { ...row(6), extra: 'x6' }];
    expect(await icebirdRows(table)).toStrictEqual(expected.map((x) => asIcebird(x, evolved.fields)));
    const mine = (await table.readRows()).sort(byId);
    expect(mine).toStrictEqual(expected.map((x) => asStored({ ...x, extra: x.extra ?? null })));
    await expect(table.commit({ schema: { ...evolved, fields: evolved.fields.slice(1) } })).rejects.toThrow(/drops field "id"/);
    await expect(table.commit({ schema: { ...evolved, fields: [...evolved.fields, { id: 5, name: 'again', required: false, type: 'int' }] } })).rejects.toThrow(/id 5/);
  });

  it('compacts into one data file without deletes; icebird reads the same rows', async () => {
    const r = await table.compact();
    expect(r).toStrictEqual({ filesBefore: 5, filesAfter: 1, rows: 5 });
    const files = await table.files();
    expect(files).toHaveLength(1);
    expect(files[0]).toMatchObject({ content: 'data', records: 5 });
    expect(table.currentSnapshot?.summary).toMatchObject({
      operation: 'replace',
      'lakebase.lsn': '0/16B3900',
      'total-data-files': '1',
      'total-delete-files': '0',
      'total-records': '5',
      'deleted-data-files': '3',
      'removed-delete-files': '2',
      'added-records': '5',
    });
    // the rows are the same; the rewritten file has the new column, so old rows now hold an explicit null
    expected = expected.map((x) => ({ ...x, extra: x.extra ?? null }));
    expect(await icebirdRows(table)).toStrictEqual(expected.map((x) => asIcebird(x, table.schema.fields)));
    expect(await table.compact()).toStrictEqual({ filesBefore: 1, filesAfter: 1, rows: 5 });
  });

  it('expires old snapshots and deletes only files no retained snapshot uses', async () => {
    const dir = join(root, prefix);
    const count = async (sub: string) => (await readdir(join(dir, sub))).length;
    const dataBefore = await count('data');
    const r = await table.expireSnapshots(1);
    expect(r.expired).toBe(4);
    // 3 data + 2 delete files, their 5 manifests, 4 manifest lists
    expect(r.filesDeleted).toBe(14);
    expect(await count('data')).toBe(dataBefore - 5);
    const meta = JSON.parse(await readFile(join(dir, `metadata/v${table.version}.metadata.json`), 'utf8'));
    expect(meta.snapshots).toHaveLength(1);
    expect(meta['snapshot-log']).toHaveLength(1);
    expect(await icebirdRows(table)).toStrictEqual(expected.map((x) => asIcebird(x, table.schema.fields)));
    expect(await table.expireSnapshots(1)).toStrictEqual({ expired: 0, filesDeleted: 0 });
    const reopened = await IcebergTable.open(store, prefix);
    expect((await reopened!.readRows()).length).toBe(5);
  });

  it('lets only one of two racing writers commit a version', async () => {
    const other = (await IcebergTable.open(store, prefix))!;
    expect(other.version).toBe(table.version);
    const dataBefore = await readdir(join(root, prefix, 'data'));
    const metaBefore = await readdir(join(root, prefix, 'metadata'));
    await table.commit({ rows: [row(7)] });
    const lost = other.commit({ rows: [row(8)], deletes: [{ id: 1n }] });
    await expect(lost).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(lost).rejects.toThrow(/another writer committed version/);
    expect(other.version).toBe(table.version - 1);
    // the loser left nothing behind: one new data file, manifest, list and metadata file (the winner's) + the hint
    expect((await readdir(join(root, prefix, 'data'))).length).toBe(dataBefore.length + 1);
    expect((await readdir(join(root, prefix, 'metadata'))).length).toBe(metaBefore.length + 3);
    expected = [...expected, { ...row(7), extra: null }];
    expect(await icebirdRows(table)).toStrictEqual(expected.map((x) => asIcebird(x, table.schema.fields)));
    // after reopening, the loser commits on top of the winner
    const again = (await IcebergTable.open(store, prefix))!;
    await again.commit({ rows: [row(8)], deletes: [{ id: 1n }] });
    expected = [...expected.filter((x) => x.id !== 1n), { ...row(8), extra: null }];
    expect(await icebirdRows(again)).toStrictEqual(expected.map((x) => asIcebird(x, table.schema.fields)));
  });

  it('finds the newest version past a stale version hint', async () => {
    const latest = (await IcebergTable.open(store, prefix))!;
    await store.put(`${prefix}/metadata/version-hint.text`, Buffer.from('2'));
    expect((await IcebergTable.open(store, prefix))!.version).toBe(latest.version);
  });
});

describe('snapshot ids in metadata JSON', () => {
  it('serialises and parses ids above 2^53 exactly', () => {
    const meta = newTableMetadata('file:///x/t', schema, { note: '"snapshot-id": 5', 'snapshot-id': '123' });
    const id = 2n ** 62n + 1n;
    meta['current-snapshot-id'] = id;
    meta.snapshots = [{ 'snapshot-id': id, 'sequence-number': 1, 'timestamp-ms': 1, 'manifest-list': 'file:///x/t/m.avro', summary: { operation: 'append' } }];
    meta['snapshot-log'] = [{ 'snapshot-id': id, 'timestamp-ms': 1 }];
    meta.refs = { main: { 'snapshot-id': id, type: 'branch' } };
    const text = stringifyMetadata(meta);
    expect(text).toContain(`"current-snapshot-id": ${id}`);
    expect(text).toContain('"snapshot-id": "123"');
    const parsed = parseTableMetadata(text, 'test');
    expect(parsed['current-snapshot-id']).toBe(id);
    expect(parsed.snapshots[0]['snapshot-id']).toBe(id);
    expect(parsed.refs.main['snapshot-id']).toBe(id);
    expect(parsed.properties).toStrictEqual({ note: '"snapshot-id": 5', 'snapshot-id': '123' });
    expect(parseJsonWithIds('{"snapshot-id": 9223372036854775807}')).toStrictEqual({ 'snapshot-id': 9_223_372_036_854_775_807n });
  });

  it('keeps a real table snapshot id above 2^53 exactly through the file', async () => {
    const prefix = 'lake/p1/main/ids';
    const t = await IcebergTable.create(store, prefix, schema);
    let id = 0n;
    for (let i = 0; i < 20 && id <= 2n ** 53n; i++) id = (await t.commit({ rows: [row(i + 1)] })).snapshotId;
    expect(id > 2n ** 53n).toBe(true);
    const text = await readFile(join(root, prefix, `metadata/v${t.version}.metadata.json`), 'utf8');
    expect(text).toMatch(new RegExp(`"current-snapshot-id": ${id}\\b`));
    expect((await IcebergTable.open(store, prefix))!.currentSnapshot?.snapshotId).toBe(id);
    // icebird parses with JSON.parse (rounding ids alike) and still finds the current snapshot
    expect((await icebergRead({ tableUrl: t.location })).length).toBeGreaterThan(0);
  });
});

describe('checks and helpers', () => {
  it('rejects wrong values with the field named', async () => {
    const t = await IcebergTable.create(store, 'lake/p1/main/checks', schema);
    await expect(t.commit({ rows: [row(1, { i: 1.5 })] })).rejects.toThrow(/field "i": expected a 32-bit integer/);
    await expect(t.commit({ rows: [row(1, { dec: '1.234' })] })).rejects.toThrow(IcebergError);
    await expect(t.commit({ rows: [row(1, { id: null })] })).rejects.toThrow(/"id" is required/);
    await expect(t.commit({ rows: [{ ...row(1), nope: 1 }] })).rejects.toThrow(/evolve the schema/);
    await expect(t.commit({ deletes: [{ i: 1 }] })).rejects.toThrow(/identifier field "id"/);
    const noKey = await IcebergTable.create(store, 'lake/p1/main/nokey', { ...schema, 'identifier-field-ids': [] });
    await expect(noKey.commit({ deletes: [{ id: 1n }] })).rejects.toThrow(/identifier-field-ids/);
    expect(t.version).toBe(1);
    expect(await readdir(join(root, 'lake/p1/main/checks'))).toStrictEqual(['metadata']);
  });

  it('round-trips wide decimals and nested lists through its own reader', async () => {
    const wide: IcebergSchema = {
      'schema-id': 0,
      type: 'struct',
      fields: [
        { id: 1, name: 'k', required: true, type: 'int' },
        { id: 2, name: 'big', required: false, type: 'decimal(38, 4)' },
        { id: 3, name: 'small', required: false, type: 'decimal(5, 0)' },
        { id: 4, name: 'grid', required: false, type: { type: 'list', 'element-id': 5, 'element-required': true, element: { type: 'list', 'element-id': 6, 'element-required': false, element: 'string' } } },
        { id: 7, name: 'weird name-1', required: false, type: 'string' },
      ],
    };
    const t = await IcebergTable.create(store, 'lake/p1/main/wide', wide);
    const rows = [
      { k: 1, big: '-1234567890123456789012345678901234.5678', small: '99999', grid: [['a', null], []], 'weird name-1': 'w' },
      { k: 2, big: '0.0001', small: '-5', grid: null, 'weird name-1': null },
    ];
    await t.commit({ rows });
    expect(await t.readRows()).toStrictEqual(rows);
    const read = (await icebergRead({ tableUrl: t.location })) as Record<string, unknown>[];
    expect(read.map((r) => r['weird name-1'])).toStrictEqual(['w', null]);
  });

  it('parses and formats decimals exactly', () => {
    expect(parseDecimal('-12.5', { precision: 10, scale: 2 }, 'x')).toBe(-1250n);
    expect(parseDecimal('7', { precision: 3, scale: 0 }, 'x')).toBe(7n);
    expect(formatDecimal(-1250n, 2)).toBe('-12.50');
    expect(formatDecimal(5n, 3)).toBe('0.005');
    expect(() => parseDecimal('1000', { precision: 3, scale: 0 }, 'x')).toThrow(/fits decimal\(3, 0\)/);
  });

  it('joins store and key into one URI', () => {
    expect(objectUri({ uri: 's3://bucket/pre/' }, '/lake/t')).toBe('s3://bucket/pre/lake/t');
    expect(objectUri({ uri: 'file:///' }, 'lake/t')).toBe('file:///lake/t');
    expect(objectUri({ uri: 'file:///data' }, 'lake/t')).toBe('file:///data/lake/t');
  });
});
