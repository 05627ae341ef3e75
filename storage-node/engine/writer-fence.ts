// Writer generations: the fence that keeps a compute which was taken over (a frozen host that resumes) from ever
// writing to its timeline again. Each read-write compute start takes a new generation (POST /writer); every batch
// carries the one its compute got, and only the current one is accepted. `expectedLsn` alone cannot do this: until
// the new compute writes, the old one's next batch still matches the head.
import { ConflictError } from './errors.ts';

/** 409 `writer_fenced`: the batch's compute is not (or no longer) the timeline's writer; nothing of it is applied. */
export class WriterFencedError extends ConflictError {
  constructor(message: string) {
    super('writer_fenced', message);
  }
}

/**
 * Refuses a batch whose writer generation is not the timeline's current one. A batch without one is accepted only
 * while no compute ever took the timeline (current 0: old computes, templates, tools).
 */
export function checkWriterGeneration(timelineId: string, current: number, batchGeneration: number | undefined): void {
  const mine = batchGeneration ?? 0;
  if (mine === current) return;
  if (mine > current) {
    throw new WriterFencedError(
      `timeline ${timelineId}'s writer generation is ${current}, this batch's is ${mine}: unknown generation (only POST /v1/timelines/${timelineId}/writer hands them out)`,
    );
  }
  throw takenOverError(timelineId, current, batchGeneration);
}

/** The refusal of a batch of an older writer generation than the timeline's `current` one. */
export function takenOverError(timelineId: string, current: number, batchGeneration: number | undefined): WriterFencedError {
  const theirs = batchGeneration === undefined ? 'this batch has none' : `this batch's is ${batchGeneration}`;
  return new WriterFencedError(
    `timeline ${timelineId} was taken over by a newer compute (writer generation ${current}; ${theirs}): this compute may no longer write to it`,
  );
}
