import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import * as schema from './schema/index.js';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  db: Db;
  kind: 'postgres' | 'pglite';
  /** Runs fn while holding a cluster-wide lock (Postgres advisory lock; PGlite has one process). */
  serialize<T>(fn: () => Promise<T>): Promise<T>;
  /** A cheap round trip, for readiness checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

const migrationsFolder = fileURLToPath(new URL('../../drizzle', import.meta.url));

export type DatabaseTarget = { url: string } | { dataDir: string | undefined /* undefined: in memory */ };

/**
 * Opens Postgres (postgres.js) when a URL is given, else embedded PGlite, and applies the
 * committed drizzle migrations. One Drizzle schema serves both.
 */
export async function openDatabase(target: DatabaseTarget, opts: { migrate?: boolean; poolSize?: number } = {}): Promise<Database> {
  const database = 'url' in target ? await openPostgres(target.url, opts.poolSize ?? 10) : await openPglite(target.dataDir);
  if (opts.migrate !== false) await migrateDatabase(database);
  return database;
}

async function openPostgres(url: string, max: number): Promise<Database> {
  const { default: postgres } = await import('postgres');
  const { drizzle } = await import('drizzle-orm/postgres-js');
  // serialize() holds one connection while the work it guards (migrations) runs on another: a
  // pool of one would wait on itself forever.
  const client = postgres(url, { max: Math.max(2, max), onnotice: () => {}, connect_timeout: 10, idle_timeout: 60 });
  const db = drizzle(client, { schema }) as unknown as Db;
  const serialize = async <T>(fn: () => Promise<T>): Promise<T> => {
    const conn = await client.reserve();
    try {
      await conn`select pg_advisory_lock(727274001)`;
      return await fn();
    } finally {
      await conn`select pg_advisory_unlock(727274001)`.catch(() => {});
      conn.release();
    }
  };
  return {
    db,
    kind: 'postgres',
    serialize,
    ping: async () => {
      await client`select 1`;
    },
    close: () => client.end({ timeout: 5 }),
  };
}

async function openPglite(dataDir: string | undefined): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  let dir: string | undefined;
  if (dataDir) {
    dir = resolve(dataDir, 'pglite');
    mkdirSync(dir, { recursive: true });
  }
  const client = await PGlite.create(dir);
  const db = drizzle(client, { schema }) as unknown as Db;
  return {
    db,
    kind: 'pglite',
    serialize: (fn) => fn(),
    ping: async () => {
      await client.query('select 1');
    },
    close: () => client.close(),
  };
}

async function migrateDatabase(database: Database): Promise<void> {
  if (database.kind === 'postgres') {
    const { migrate } = await import('drizzle-orm/postgres-js/migrator');
    // Several instances may start at once: serialize migrations with a session advisory lock.
    await database.serialize(() => migrate(database.db as any, { migrationsFolder }));
  } else {
    const { migrate } = await import('drizzle-orm/pglite/migrator');
    await migrate(database.db as any, { migrationsFolder });
  }
}
