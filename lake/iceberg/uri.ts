// Iceberg metadata stores absolute URIs (manifest-list, manifest_path, file_path); the object store speaks keys.
// This is the one place that maps between the two, for `file:///root` (LocalFolderStore) and `s3://bucket/prefix`.
import type { ObjectStore } from '../../storage-node/object-store/object-store.ts';
import { tableError } from './errors.ts';

type Described = Pick<ObjectStore, 'uri'>;

/** The store's base URI without trailing slashes (`file:///` becomes `file://`, to which `/key` is added). */
function baseUri(store: Described): string {
  let base = store.uri;
  while (base.endsWith('/') && !base.endsWith('://')) base = base.slice(0, -1);
  return base;
}

/** The absolute URI of `key` in `store`: `${store.uri}/${key}` with exactly one slash between. */
export function objectUri(store: Described, key: string): string {
  const base = baseUri(store);
  const rest = key.replace(/^\/+/, '');
  return rest === '' ? base : `${base}/${rest}`;
}

/** The key of an absolute URI written by `objectUri` for this store; anything else is a file this writer cannot reach. */
export function keyOfUri(store: Described, uri: string): string {
  const prefix = `${baseUri(store)}/`;
  if (!uri.startsWith(prefix) || uri.length === prefix.length) {
    throw tableError(
      'foreign_uri',
      `the table references ${uri}, which is not inside this object store (${store.uri}); ` +
        'open the table through the store it was written to',
    );
  }
  return uri.slice(prefix.length);
}
