// The Iceberg writer's entry point: the table, its types, its error, and the URI helper callers need to say
// where a table lives.
export { IcebergTable } from './table.ts';
export { IcebergError } from './errors.ts';
export { objectUri } from './uri.ts';
export type * from './types.ts';
