// Snapshot exports (ours; docs/lakehouse.md): /projects/{id}/branches/{branch_id}/exports.
import type { Hono } from 'hono';
import type { ApiDeps } from './deps.ts';

export function exportRoutes(_app: Hono, _d: ApiDeps): void {}
