// A synced table's target name as the API takes it: `schema.table` or `table` (in public), unquoted Postgres names,
// folded to lower case as Postgres folds them.
import { loadError } from './errors.ts';
import type { TableName } from './load-sql.ts';

export const TABLE_NAME_RULE = /^(?:[A-Za-z_][A-Za-z0-9_$]{0,62}\.)?[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

export function parseTableName(text: string, where: string): TableName {
  if (!TABLE_NAME_RULE.test(text)) {
    throw loadError(400, 'BAD_REQUEST', `${where} must be "schema.table" or "table" (unquoted Postgres names of up to 63 characters), got ${JSON.stringify(text)}`);
  }
  const lower = text.toLowerCase();
  const dot = lower.indexOf('.');
  return dot < 0 ? { schema: 'public', name: lower } : { schema: lower.slice(0, dot), name: lower.slice(dot + 1) };
}
