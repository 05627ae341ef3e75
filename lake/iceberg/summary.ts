// Snapshot summaries: the operation plus the standard metrics of the spec's Appendix F (added/removed/total
// files, records, sizes and equality deletes), kept apart from the caller's own entries so those can be carried
// over to a compaction snapshot. Totals are the previous snapshot's totals plus this snapshot's changes, so a
// commit never has to read the table's manifests to write its summary.

export type Operation = 'append' | 'replace' | 'overwrite' | 'delete';

/** What a snapshot changes, in files, records and bytes. */
export interface SummaryDelta {
  addedDataFiles: number;
  addedRecords: number;
  addedDeleteFiles: number;
  addedEqualityDeletes: number;
  addedFilesSize: number;
  removedDataFiles: number;
  removedRecords: number;
  removedDeleteFiles: number;
  removedEqualityDeletes: number;
  removedFilesSize: number;
}

export function emptyDelta(): SummaryDelta {
  return {
    addedDataFiles: 0,
    addedRecords: 0,
    addedDeleteFiles: 0,
    addedEqualityDeletes: 0,
    addedFilesSize: 0,
    removedDataFiles: 0,
    removedRecords: 0,
    removedDeleteFiles: 0,
    removedEqualityDeletes: 0,
    removedFilesSize: 0,
  };
}

const TOTALS = [
  'total-data-files',
  'total-delete-files',
  'total-records',
  'total-files-size',
  'total-position-deletes',
  'total-equality-deletes',
] as const;

/** Keys this writer owns; anything else in a summary is the caller's. */
export const STANDARD_KEYS = new Set<string>([
  'operation',
  ...TOTALS,
  'added-data-files',
  'deleted-data-files',
  'added-delete-files',
  'added-equality-delete-files',
  'removed-equality-delete-files',
  'removed-delete-files',
  'added-records',
  'deleted-records',
  'added-files-size',
  'removed-files-size',
  'added-equality-deletes',
  'removed-equality-deletes',
  'changed-partition-count',
]);

/** The caller's entries of a summary (what compaction carries over). */
export function userEntries(summary: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(summary).filter(([k]) => !STANDARD_KEYS.has(k)));
}

function total(previous: Record<string, string> | undefined, key: string): number {
  const n = Number.parseInt(previous?.[key] ?? '0', 10);
  return Number.isFinite(n) ? n : 0;
}

/** A snapshot summary: the caller's entries, then the operation and metrics (which the caller cannot override). */
export function buildSummary(
  operation: Operation,
  delta: SummaryDelta,
  previous: Record<string, string> | undefined,
  user: Record<string, string>,
): Record<string, string> {
  const out: Record<string, string> = { ...userEntries(user), operation };
  const put = (key: string, n: number) => {
    if (n !== 0) out[key] = String(n);
  };
  put('added-data-files', delta.addedDataFiles);
  put('deleted-data-files', delta.removedDataFiles);
  put('added-delete-files', delta.addedDeleteFiles);
  put('added-equality-delete-files', delta.addedDeleteFiles);
  put('removed-delete-files', delta.removedDeleteFiles);
  put('removed-equality-delete-files', delta.removedDeleteFiles);
  put('added-records', delta.addedRecords);
  put('deleted-records', delta.removedRecords);
  put('added-files-size', delta.addedFilesSize);
  put('removed-files-size', delta.removedFilesSize);
  put('added-equality-deletes', delta.addedEqualityDeletes);
  put('removed-equality-deletes', delta.removedEqualityDeletes);
  const changed = delta.addedDataFiles + delta.addedDeleteFiles + delta.removedDataFiles + delta.removedDeleteFiles;
  if (changed > 0) out['changed-partition-count'] = '1';
  const totals: Record<(typeof TOTALS)[number], number> = {
    'total-data-files': total(previous, 'total-data-files') + delta.addedDataFiles - delta.removedDataFiles,
    'total-delete-files': total(previous, 'total-delete-files') + delta.addedDeleteFiles - delta.removedDeleteFiles,
    'total-records': total(previous, 'total-records') + delta.addedRecords - delta.removedRecords,
    'total-files-size': total(previous, 'total-files-size') + delta.addedFilesSize - delta.removedFilesSize,
    'total-position-deletes': total(previous, 'total-position-deletes'),
    'total-equality-deletes': total(previous, 'total-equality-deletes') + delta.addedEqualityDeletes - delta.removedEqualityDeletes,
  };
  for (const key of TOTALS) out[key] = String(Math.max(0, totals[key]));
  return out;
}
