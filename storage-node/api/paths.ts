// Data-directory paths as the API accepts them: normalised, and never leaving the data directory.
import { ServiceError } from '../../lib/errors.ts';
import type { DataPath } from './types.ts';

/** Why a path was refused (400 `invalid_path`); thrown by normaliseDataPath. */
export class InvalidPathError extends ServiceError {
  constructor(path: string, why: string) {
    super(400, 'invalid_path', `invalid path ${JSON.stringify(path)}: ${why}`);
    this.name = 'InvalidPathError';
  }
}

const MAX_PATH_LENGTH = 1024;

/**
 * Validates a data-directory path and returns it normalised. A path must stay inside the data directory:
 * absolute paths, '..' segments and NUL bytes are refused rather than resolved.
 */
export function normaliseDataPath(path: unknown): DataPath {
  if (typeof path !== 'string') throw new InvalidPathError(String(path), 'not a string');
  if (path.length > MAX_PATH_LENGTH) throw new InvalidPathError(path.slice(0, 64) + '…', `longer than ${MAX_PATH_LENGTH}`);
  if (path.includes('\0')) throw new InvalidPathError(path, 'contains a NUL byte');
  if (path.startsWith('/')) throw new InvalidPathError(path, 'absolute paths are not allowed');
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new InvalidPathError(path, "'..' would leave the data directory");
    parts.push(part);
  }
  return parts.join('/');
}

/** Parent directory of a normalised path ('' for top-level entries). */
export function parentOf(path: DataPath): DataPath {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}
