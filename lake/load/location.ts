// A synced table's source location: an absolute URI inside the project's bucket (`file:///root/...` for the local
// folder, `s3://bucket/prefix/...` for S3), as objectUri writes them, turned into the bucket's key. Anything else is
// refused with the bucket it must be in, before the bucket is read.
import type { ObjectStore } from '../../storage-node/object-store/object-store.ts';
import { objectUri } from '../iceberg/uri.ts';
import { loadError } from './errors.ts';

/** The bucket's URI as users write it. */
export function bucketUri(store: Pick<ObjectStore, 'uri'>): string {
  return objectUri(store, '');
}

/** The key of a location in the bucket (trailing slashes dropped), or a 400 saying where a source must be. */
export function keyOfLocation(store: Pick<ObjectStore, 'uri'>, location: string): string {
  const base = bucketUri(store);
  const outside = () =>
    loadError(400, 'BAD_REQUEST', `synced_table.source_location must be a location inside the project's bucket, ${base}/ (e.g. ${base}/lake/rates), got ${JSON.stringify(location)}`);
  if (!location.startsWith(`${base}/`)) throw outside();
  const key = location.slice(base.length + 1).replace(/\/+$/, '');
  if (key === '') throw loadError(400, 'BAD_REQUEST', `synced_table.source_location must name a table, a file or a folder inside ${base}/, not the bucket itself`);
  const segments = key.split('/');
  if (key.includes('\0') || key.includes('\\') || segments.some((s) => s === '' || s === '.' || s === '..') || segments[0] === '.lakebase-store') {
    throw loadError(400, 'BAD_REQUEST', `synced_table.source_location ${JSON.stringify(location)} is not a plain path inside ${base}/ (no empty, "." or ".." segments)`);
  }
  return key;
}

/** The bucket's own areas (page storage, control-plane state) and other projects' lake files are not sources. */
export function checkProjectScope(key: string, projectId: string, location: string): void {
  const top = key.split('/')[0];
  const lakeOwner = top === 'lake' ? key.split('/')[key.startsWith('lake/exports/') ? 2 : 1] : projectId;
  if (top === 'timelines' || top === 'control-plane' || lakeOwner !== projectId) {
    throw loadError(403, 'LOCATION_NOT_ALLOWED', `synced_table.source_location ${JSON.stringify(location)} is not this project's to read: use lake/${projectId}/... or a folder of your own outside lake/, timelines/ and control-plane/`);
  }
}
