// Runs the jobs of background operations. A change records its operation `running` with its job (records.ts) in
// the same state write as the change, then launches it here; the job runs with at most `maxConcurrent` others,
// transient failures (storage or compute unreachable or failing, status 0 or 503) are retried with exponential
// backoff, and the operation ends `finished` or `failed` with its error. Because the job lives in the state
// document, a control-plane restart loses nothing: recover() runs the jobs left running again, or marks their
// operations failed when their action cannot be resumed (jobs.ts says which).
//
// Changes done within the request record their operations finished through record(): the same records, one write.
import { ServiceError, toServiceError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import type { ControlPlaneState, JobAction, OperationAction, OperationJobInputs, OperationRecord } from '../model.ts';
import type { StateStore } from '../state-store.ts';
import type { JobDefinition, JobRegistry } from './jobs.ts';
import { beginOperation, endOperation, noteFailure, recordOperations } from './records.ts';
import type { OperationSpec } from './records.ts';

export interface RunnerOptions {
  /** Jobs running at once; more wait their turn (default 4). */
  maxConcurrent?: number;
  /** Attempts of a job before a transient failure fails its operation (default 5). */
  maxAttempts?: number;
  /** The wait after the first failed attempt, doubled after each (default 200 ms, at most maxBackoffMs: 5 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** An attempt that takes longer fails (transiently), so a hung storage node cannot hold an operation forever (60 s). */
  attemptTimeoutMs?: number;
  log?: Logger;
}

const DEFAULTS = { maxConcurrent: 4, maxAttempts: 5, backoffMs: 200, maxBackoffMs: 5000, attemptTimeoutMs: 60_000 };

/** Worth another attempt: a dependency that did not answer, failed, or was unavailable. */
export function isTransient(e: ServiceError): boolean {
  return e.kind === 'storage' || e.kind === 'compute' || e.status === 0 || e.status === 503;
}

export function interruptedError(action: OperationAction): ServiceError {
  return new ServiceError(500, 'OPERATION_INTERRUPTED', `interrupted by a control-plane restart: a ${action} operation cannot be resumed; run the change again`, { kind: 'control_plane' });
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

function runJob<A extends JobAction>(jobs: JobRegistry, job: { action: A; input: OperationJobInputs[A] }): Promise<void> {
  const def: JobDefinition<A> = jobs[job.action];
  return def.run(job.input);
}

interface Pending {
  projectId: string | null;
  done: Promise<void>;
  resolve: () => void;
}

export class OperationRunner {
  private readonly state: StateStore;
  private readonly jobs: JobRegistry;
  private readonly opts: typeof DEFAULTS;
  private readonly log: Logger | undefined;
  private readonly queue: string[] = [];
  /** Launched and not yet ended in this process (queued or running), by operation id. */
  private readonly pending = new Map<string, Pending>();
  private active = 0;
  private stopped = false;

  constructor(state: StateStore, jobs: JobRegistry, opts: RunnerOptions = {}) {
    this.state = state;
    this.jobs = jobs;
    const { log, ...rest } = opts;
    this.opts = { ...DEFAULTS, ...rest };
    this.log = log;
  }

  /** Records the operations of a change done within the request, finished (inside its state write). */
  record(draft: ControlPlaneState, projectId: string, started: number, specs: OperationSpec[]): OperationRecord[] {
    return recordOperations(draft, projectId, started, specs);
  }

  /** Records a running operation and its job (inside the change's state write); launch() it once written. */
  begin<A extends JobAction>(draft: ControlPlaneState, projectId: string, started: number, spec: OperationSpec & { action: A }, input: OperationJobInputs[A]): OperationRecord {
    return beginOperation(draft, projectId, started, spec, input);
  }

  /** Starts the jobs of the running operations among `ops` (those finished already are ignored). */
  launch(ops: OperationRecord[]): void {
    for (const op of ops) if (op.status === 'running') this.enqueue(op.id, op.project_id);
  }

  /** Jobs launched in this process and not ended yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  private enqueue(id: string, projectId: string | null): void {
    if (this.stopped || this.pending.has(id)) return;
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    this.pending.set(id, { projectId, done, resolve });
    this.queue.push(id);
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.active < this.opts.maxConcurrent && this.queue.length > 0) {
      const id = this.queue.shift()!;
      this.active++;
      this.execute(id)
        .catch((e: unknown) => this.log?.error({ err: e, operationId: id }, 'operation job could not record its end'))
        .finally(() => {
          this.active--;
          this.pending.get(id)?.resolve();
          this.pending.delete(id);
          this.pump();
        });
    }
  }

  private async execute(id: string): Promise<void> {
    const job = this.state.current.operation_jobs?.[id];
    if (!job) return; // ended meanwhile
    let failures = this.state.current.operations?.find((o) => o.id === id)?.failures_count ?? 0;
    for (let attempt = 1; ; attempt++) {
      const error = await this.attempt(id, job);
      if (this.stopped) return; // a stopped runner writes nothing more: as if its process had died
      if (!error) return this.state.mutate((d) => endOperation(d, id, failures, null));
      failures++;
      if (!isTransient(error) || attempt >= this.opts.maxAttempts) {
        this.log?.warn({ operationId: id, action: job.action, code: error.code, err: error.message, failures }, 'operation failed');
        return this.state.mutate((d) => endOperation(d, id, failures, error));
      }
      this.log?.warn({ operationId: id, action: job.action, code: error.code, err: error.message, attempt }, 'operation attempt failed; retrying');
      await this.state.mutate((d) => noteFailure(d, id, failures));
      await delay(Math.min(this.opts.maxBackoffMs, this.opts.backoffMs * 2 ** (attempt - 1)) * (0.8 + Math.random() * 0.4));
      if (this.stopped) return;
    }
  }

  private async attempt(id: string, job: Parameters<typeof runJob>[1]): Promise<ServiceError | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ServiceError(503, 'OPERATION_TIMEOUT', `operation ${id}: an attempt of its ${job.action} job took more than ${this.opts.attemptTimeoutMs} ms`)), this.opts.attemptTimeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([runJob(this.jobs, job), timeout]);
      return null;
    } catch (e) {
      return toServiceError(e);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * At start-up: runs again the jobs a previous process left running, when their action is resumable, and marks
   * the other running operations failed ("interrupted by a control-plane restart").
   */
  async recover(): Promise<void> {
    const s = this.state.current;
    const jobs = s.operation_jobs ?? {};
    const resumable = (id: string): boolean => jobs[id] !== undefined && this.jobs[jobs[id].action]?.resumable === true;
    const stale = (s.operations ?? []).filter((o) => o.status === 'running' && !this.pending.has(o.id) && !resumable(o.id));
    const dropped = Object.keys(jobs).filter((id) => !resumable(id) && !this.pending.has(id));
    if (stale.length > 0 || dropped.length > 0) {
      await this.state.mutate((d) => {
        for (const o of stale) endOperation(d, o.id, o.failures_count, interruptedError(o.action));
        for (const id of dropped) delete d.operation_jobs?.[id];
      });
      this.log?.warn({ operations: stale.map((o) => o.id) }, 'operations interrupted by a restart marked failed');
    }
    const resumed = Object.keys(jobs).filter(resumable);
    for (const id of resumed) this.enqueue(id, s.operations?.find((o) => o.id === id)?.project_id ?? null);
    if (resumed.length > 0) this.log?.info({ operations: resumed }, 'resuming operations left running by a restart');
  }

  /** Waits (at most `timeoutMs`) for the jobs of a project launched in this process to end. */
  async settle(projectId: string, timeoutMs = 30_000): Promise<void> {
    const mine = [...this.pending.values()].filter((p) => p.projectId === projectId).map((p) => p.done);
    if (mine.length > 0) await Promise.race([Promise.all(mine), delay(timeoutMs)]);
  }

  /** Waits for every job launched in this process to end (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending.values()].map((p) => p.done));
  }

  /**
   * Stops: no job starts or retries any more, and jobs still running record nothing (their operations stay running
   * in the state document, for the next start-up to resume). Call it when the control plane closes.
   */
  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
    for (const p of this.pending.values()) p.resolve();
  }
}
