// Synced tables (ours; docs/lakehouse.md): /projects/{id}/branches/{branch_id}/synced_tables.
import type { Hono } from 'hono';
import type { ApiDeps } from './deps.ts';

export function syncedTableRoutes(_app: Hono, _d: ApiDeps): void {}
