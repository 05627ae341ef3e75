// Prometheus metrics of one proxy instance, in a registry of its own (several proxies may share a process).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PROXY_ERROR_CODES } from './errors.ts';

export type Protocol = 'http' | 'websocket' | 'tcp';

// The `code` label of errors: a ProxyError's code, a SQLSTATE (Postgres's or the proxy's own), or one of these.
// Anything else is counted as `other`, so the label set stays bounded whatever a compute or a caller sends.
const ERROR_LABELS = new Set<string>([...PROXY_ERROR_CODES, 'response_too_large', 'protocol', 'internal']);
const SQLSTATE = /^[0-9A-Z]{5}$/;

export function errorLabel(code: string): string {
  return ERROR_LABELS.has(code) || SQLSTATE.test(code) ? code : 'other';
}

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly activeSessions = new Gauge({
    name: 'lakebase_proxy_active_sessions',
    help: 'Client sessions in progress (HTTP requests, WebSocket and TCP connections)',
    labelNames: ['protocol'],
    registers: [this.registry],
  });
  readonly sessions = new Counter({
    name: 'lakebase_proxy_sessions_total',
    help: 'Client sessions started',
    labelNames: ['protocol'],
    registers: [this.registry],
  });
  readonly queries = new Counter({
    name: 'lakebase_proxy_http_queries_total',
    help: 'SQL-over-HTTP queries run (each query of a batch counts)',
    registers: [this.registry],
  });
  readonly wakes = new Counter({
    name: 'lakebase_proxy_wake_total',
    help: 'Compute wake requests to the directory, by outcome',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly wakeSeconds = new Histogram({
    name: 'lakebase_proxy_wake_duration_seconds',
    help: 'Time to wake a compute, retries included',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly wakeSteps = new Histogram({
    name: 'lakebase_proxy_wake_step_seconds',
    help: 'Steps of SQL-over-HTTP requests that woke their compute (as in their Server-Timing header): wake (the directory call), wake.<step> (inside the control plane and compute host), connect, query',
    labelNames: ['step'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly errorCounter = new Counter({
    name: 'lakebase_proxy_errors_total',
    help: 'Errors returned to clients, by protocol and code (HTTP status, SQLSTATE or proxy error kind)',
    labelNames: ['protocol', 'code'],
    registers: [this.registry],
  });
  /** Counts an error returned to a client; `code` goes through errorLabel (a closed set). */
  readonly errors = {
    inc: (labels: { protocol: Protocol; code: string }): void => this.errorCounter.inc({ protocol: labels.protocol, code: errorLabel(labels.code) }),
  };

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'lakebase_proxy_' });
  }

  sessionStarted(protocol: Protocol): () => void {
    this.sessions.inc({ protocol });
    this.activeSessions.inc({ protocol });
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.activeSessions.dec({ protocol });
    };
  }

  /** One step of a request that woke its compute; the step names come from a closed set (control plane and host). */
  wakeStep(step: string, seconds: number): void {
    this.wakeSteps.observe({ step: step.slice(0, 40) }, seconds);
  }

  wake(seconds: number, ok: boolean): void {
    this.wakes.inc({ outcome: ok ? 'ok' : 'error' });
    this.wakeSeconds.observe(seconds);
  }
}
