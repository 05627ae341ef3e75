// Prepared migrations, as Neon's MCP server keeps them: in the server's memory from prepare_database_migration
// (DDL applied on a temporary branch) until complete_database_migration applies it to the parent. Bounded: at
// most MAX_PENDING, the oldest forgotten first, none older than a day.
import { randomUUID } from 'node:crypto';

export interface Migration {
  id: string;
  projectId: string;
  /** The temporary branch the migration was tried on, and the branch it is for. */
  branchId: string;
  parentId: string;
  databaseName: string;
  migrationSql: string;
  createdAt: number;
}

const MAX_PENDING = 1000;
const MAX_AGE_MS = 24 * 3600_000;

export class MigrationStore {
  private readonly byId = new Map<string, Migration>();

  add(m: Omit<Migration, 'id' | 'createdAt'>): Migration {
    this.expire();
    while (this.byId.size >= MAX_PENDING) this.byId.delete(this.byId.keys().next().value as string);
    const migration = { ...m, id: randomUUID(), createdAt: Date.now() };
    this.byId.set(migration.id, migration);
    return migration;
  }

  get(id: string): Migration | undefined {
    this.expire();
    return this.byId.get(id);
  }

  delete(id: string): void {
    this.byId.delete(id);
  }

  private expire(): void {
    const oldest = Date.now() - MAX_AGE_MS;
    for (const [id, m] of this.byId) if (m.createdAt < oldest) this.byId.delete(id);
  }
}
