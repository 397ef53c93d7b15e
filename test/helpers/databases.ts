import { inject } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';

export type DbKind = 'pglite' | 'postgres';

/** PGlite always; Postgres too when the run has one (CI always does). */
export function dbKinds(): DbKind[] {
  return inject('postgresUrl') ? ['pglite', 'postgres'] : ['pglite'];
}

export function openTestDatabase(kind: DbKind): Promise<Database> {
  if (kind === 'postgres') return openDatabase({ url: inject('postgresUrl') }, { poolSize: 4 });
  return openDatabase({ dataDir: undefined });
}
