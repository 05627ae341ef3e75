// The steps of one SQL-over-HTTP request that woke its compute, for the `Server-Timing` header of its response
// (issue 12: a cold start is visible to whoever waits for it) and the proxy's wake-phase histogram. A request
// served by a running compute records nothing and sends no header.
export interface TimingEntry {
  name: string;
  ms: number;
}

/** Server-Timing metric names are HTTP tokens; the control plane's phase names are mapped onto them. */
const TOKEN = /[^A-Za-z0-9!#$%&'*+.^_`|~-]/g;

export class RequestTiming {
  private readonly entries: TimingEntry[] = [];
  /** The request waited for a wake (its own or one it joined), so its response carries the header. */
  woke = false;

  /** A step of the request; `woke` marks the one that waited for the directory's wake. */
  add(name: string, ms: number): void {
    this.entries.push({ name: name.replace(TOKEN, '_'), ms });
  }

  /** The directory's wake: its total and the steps the control plane reported inside it. */
  addWake(ms: number, phases: Record<string, number> | undefined): void {
    this.woke = true;
    this.add('wake', ms);
    for (const [name, phaseMs] of Object.entries(phases ?? {})) this.add(`wake.${name}`, phaseMs);
  }

  get steps(): readonly TimingEntry[] {
    return this.entries;
  }

  /** `wake;dur=212.4, wake.compute_start;dur=190.0, connect;dur=3.1, query;dur=7.9`, or null when nothing woke. */
  header(): string | null {
    if (!this.woke) return null;
    return this.entries.map((e) => `${e.name};dur=${e.ms.toFixed(1)}`).join(', ');
  }
}
