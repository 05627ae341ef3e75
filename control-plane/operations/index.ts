// Control-plane operations: records (records.ts), the runner of background jobs (runner.ts) and the jobs (jobs.ts).
// One runner per control plane (per state store), made on first use from the services' Plane, which also starts
// the recovery of the jobs a previous process left running.
import { createLogger } from '../../lib/logger.ts';
import type { Plane } from '../plane.ts';
import type { StateStore } from '../state-store.ts';
import { jobRegistry } from './jobs.ts';
import { OperationRunner } from './runner.ts';
import type { RunnerOptions } from './runner.ts';

export { KEEP_PER_PROJECT, beginOperation, endOperation, prune, recordOperations } from './records.ts';
export type { OperationSpec } from './records.ts';
export { OperationRunner, interruptedError, isTransient } from './runner.ts';
export type { RunnerOptions } from './runner.ts';
export { jobRegistry, storageJobError } from './jobs.ts';
export type { JobDefinition, JobRegistry } from './jobs.ts';

const runners = new WeakMap<StateStore, OperationRunner>();

/** The control plane's runner; the first call makes it and starts recovering the jobs left running. */
export function operationsOf(plane: Pick<Plane, 'state' | 'storage'>, opts: RunnerOptions = {}): OperationRunner {
  let runner = runners.get(plane.state);
  if (!runner) {
    const log = opts.log ?? createLogger('control-plane');
    runner = new OperationRunner(plane.state, jobRegistry(plane), { ...opts, log });
    runners.set(plane.state, runner);
    runner.recover().catch((e: unknown) => log.error({ err: e }, 'recovering the operations left running failed'));
  }
  return runner;
}

/** The runner of a control plane's state store, if one was made (to stop it when the control plane closes). */
export function runnerOf(state: StateStore): OperationRunner | undefined {
  return runners.get(state);
}
