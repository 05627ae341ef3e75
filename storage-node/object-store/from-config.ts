// Which object store the storage node uses, from its environment:
//
//   LAKEBASE_S3_BUCKET              presence selects S3 (AWS S3, Cloudflare R2, MinIO...)
//   LAKEBASE_S3_ENDPOINT            e.g. https://<account>.r2.cloudflarestorage.com (absent: AWS S3)
//   LAKEBASE_S3_REGION              default 'auto'
//   LAKEBASE_S3_PREFIX              keys are stored under it (default '')
//   LAKEBASE_S3_FORCE_PATH_STYLE    true/false (default: true when an endpoint is given, else false)
//   LAKEBASE_S3_ACCESS_KEY_ID       with the secret below; both absent: the AWS SDK's default credential chain
//   LAKEBASE_S3_SECRET_ACCESS_KEY
//   LAKEBASE_OBJECT_STORE_DIR       the local folder (when no bucket is set; default given by the caller)
//
// Empty values count as unset.

import { LocalFolderStore } from './local-folder.ts';
import type { ObjectStore, ObjectStoreMetrics } from './object-store.ts';
import { S3Store } from './s3.ts';

export type ObjectStoreConfig =
  | { kind: 'local'; path: string }
  | {
      kind: 's3';
      endpoint?: string;
      region: string;
      bucket: string;
      prefix: string;
      forcePathStyle: boolean;
      accessKeyId?: string;
      secretAccessKey?: string;
    };

export interface ObjectStoreDefaults {
  /** The local folder used when neither LAKEBASE_S3_BUCKET nor LAKEBASE_OBJECT_STORE_DIR is set. */
  localPath: string;
}

export interface CreateObjectStoreOptions {
  metrics?: ObjectStoreMetrics;
}

/** A configuration problem, with a message that names the variable at fault. */
export class ObjectStoreConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ObjectStoreConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

const S3_VARS = [
  'LAKEBASE_S3_ENDPOINT',
  'LAKEBASE_S3_REGION',
  'LAKEBASE_S3_PREFIX',
  'LAKEBASE_S3_FORCE_PATH_STYLE',
  'LAKEBASE_S3_ACCESS_KEY_ID',
  'LAKEBASE_S3_SECRET_ACCESS_KEY',
] as const;

function read(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

function parseBool(name: string, value: string): boolean {
  switch (value.toLowerCase()) {
    case 'true':
    case '1':
    case 'yes':
    case 'on':
      return true;
    case 'false':
    case '0':
    case 'no':
    case 'off':
      return false;
    default:
      throw new ObjectStoreConfigError(`${name} must be true or false, not ${JSON.stringify(value)}`);
  }
}

/** Reads and checks the configuration; throws ObjectStoreConfigError on a bad one. */
export function objectStoreConfigFromEnv(env: Env, defaults: ObjectStoreDefaults): ObjectStoreConfig {
  const bucket = read(env, 'LAKEBASE_S3_BUCKET');
  const dir = read(env, 'LAKEBASE_OBJECT_STORE_DIR');
  if (bucket === undefined) {
    const stray = S3_VARS.filter((n) => read(env, n) !== undefined);
    if (stray.length > 0) {
      throw new ObjectStoreConfigError(
        `${stray.join(', ')} ${stray.length === 1 ? 'is' : 'are'} set but LAKEBASE_S3_BUCKET is not: ` +
          'set LAKEBASE_S3_BUCKET to use S3, or unset the LAKEBASE_S3_* variables to use a local folder',
      );
    }
    const path = dir ?? defaults.localPath;
    if (!path) throw new ObjectStoreConfigError('no object store: set LAKEBASE_OBJECT_STORE_DIR or LAKEBASE_S3_BUCKET');
    return { kind: 'local', path };
  }
  if (dir !== undefined) {
    throw new ObjectStoreConfigError(
      'both LAKEBASE_S3_BUCKET and LAKEBASE_OBJECT_STORE_DIR are set: choose S3 or a local folder, not both',
    );
  }
  return validateS3Config({
    kind: 's3',
    endpoint: read(env, 'LAKEBASE_S3_ENDPOINT'),
    region: read(env, 'LAKEBASE_S3_REGION') ?? 'auto',
    bucket,
    prefix: read(env, 'LAKEBASE_S3_PREFIX') ?? '',
    forcePathStyle: (() => {
      const v = read(env, 'LAKEBASE_S3_FORCE_PATH_STYLE');
      return v === undefined ? read(env, 'LAKEBASE_S3_ENDPOINT') !== undefined : parseBool('LAKEBASE_S3_FORCE_PATH_STYLE', v);
    })(),
    accessKeyId: read(env, 'LAKEBASE_S3_ACCESS_KEY_ID'),
    secretAccessKey: read(env, 'LAKEBASE_S3_SECRET_ACCESS_KEY'),
  });
}

type S3Config = Extract<ObjectStoreConfig, { kind: 's3' }>;

function validateS3Config(c: S3Config): S3Config {
  // S3 and R2 bucket names are 3-63 of a-z 0-9 . - (AWS's legacy names may also hold A-Z and _, up to 255).
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/.test(c.bucket)) {
    throw new ObjectStoreConfigError(
      `LAKEBASE_S3_BUCKET ${JSON.stringify(c.bucket)} is not a bucket name (3-63 characters of a-z 0-9 . -; ` +
        'put any key prefix in LAKEBASE_S3_PREFIX)',
    );
  }
  if (c.endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(c.endpoint);
    } catch {
      throw new ObjectStoreConfigError(`LAKEBASE_S3_ENDPOINT ${JSON.stringify(c.endpoint)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ObjectStoreConfigError(`LAKEBASE_S3_ENDPOINT must be an http(s) URL, not ${JSON.stringify(c.endpoint)}`);
    }
  }
  if (!/^[a-z0-9-]+$/i.test(c.region)) {
    throw new ObjectStoreConfigError(`LAKEBASE_S3_REGION ${JSON.stringify(c.region)} is not a region name`);
  }
  if ((c.accessKeyId === undefined) !== (c.secretAccessKey === undefined)) {
    throw new ObjectStoreConfigError(
      'LAKEBASE_S3_ACCESS_KEY_ID and LAKEBASE_S3_SECRET_ACCESS_KEY must be set together (or neither, to use the default AWS credential chain)',
    );
  }
  if (c.prefix.startsWith('/') || c.prefix.split('/').some((s) => s === '..' || s === '.')) {
    throw new ObjectStoreConfigError(`LAKEBASE_S3_PREFIX ${JSON.stringify(c.prefix)} must be relative, without '.' or '..'`);
  }
  return c;
}

export function createObjectStore(config: ObjectStoreConfig, options: CreateObjectStoreOptions = {}): ObjectStore {
  switch (config.kind) {
    case 'local':
      return new LocalFolderStore(config.path, { metrics: options.metrics });
    case 's3':
      return new S3Store({ ...validateS3Config(config), metrics: options.metrics });
    default: {
      const never: never = config;
      throw new ObjectStoreConfigError(`unknown object store kind ${JSON.stringify((never as { kind: unknown }).kind)}`);
    }
  }
}

export function objectStoreFromEnv(
  env: Env,
  defaults: ObjectStoreDefaults & CreateObjectStoreOptions,
): ObjectStore {
  return createObjectStore(objectStoreConfigFromEnv(env, defaults), { metrics: defaults.metrics });
}
