// Structured JSON logs (pino) for every lakebase process. LAKEBASE_LOG_LEVEL sets the level (default info).
import { pino } from 'pino';
import type { Logger } from 'pino';

export type { Logger };

export function createLogger(component: string, level = process.env.LAKEBASE_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { component, pid: process.pid } });
}
