import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { withDeadline } from './deadline.js';
import { migrationStatus, migrationsFolder, type MigrationStatus } from './migrations.js';
import * as schema from './schema/index.js';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  db: Db;
  kind: 'postgres' | 'pglite';
  /**
   * pgvector is installed and thread_item_embeddings has its `vec` column: vector retrieval is a
   * query. False where the server lacks the extension (the gateway then compares vectors itself).
   */
  vectors: boolean;
  /** Runs fn while holding a cluster-wide lock (Postgres advisory lock; PGlite has one process). */
  serialize<T>(fn: () => Promise<T>): Promise<T>;
  /** A cheap round trip, for readiness checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type DatabaseTarget = { url: string } | { dataDir: string | undefined /* undefined: in memory */ };

/** Defaults of DATABASE_STATEMENT_TIMEOUT_MS and DATABASE_CONNECT_TIMEOUT_MS (config.ts). */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 5_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** How much longer than the statement timeout the gateway itself waits for an answer. */
const ANSWER_MARGIN_MS = 1_000;

/**
 * On a bounded client (see boundedClient), the driver underneath and the deadline it applies: for
 * raw paths that must hold the driver's own query object (the ledger clears its parameters).
 */
export const RAW_CLIENT = Symbol('raw database client');
export interface RawClientAccess {
  client: unknown;
  deadlineMs: number;
}

export interface OpenDatabaseOptions {
  migrate?: boolean;
  /**
   * Called before migrations run (under the migration lock, so it sees what this process applies):
   * the database's migration status then. For progress lines; the migrations run whatever it does.
   */
  onMigrate?: (before: MigrationStatus) => void;
  poolSize?: number;
  /**
   * Postgres only. Each statement is cancelled by the server after this long (`statement_timeout`),
   * and the gateway stops waiting for any query (including the wait for a pooled connection) this
   * long plus 1 s after it was issued, so a hung server or a frozen network path fails the call
   * instead of holding it; a transaction gets twice that. 0 turns both off. Migrations run on a
   * connection of their own without these bounds.
   */
  statementTimeoutMs?: number;
  /** Postgres only: establishing a connection (TCP and startup) fails after this long. */
  connectTimeoutMs?: number;
}

/**
 * Opens Postgres (postgres.js) when a URL is given, else embedded PGlite, and applies the
 * committed drizzle migrations. One Drizzle schema serves both.
 */
export async function openDatabase(target: DatabaseTarget, opts: OpenDatabaseOptions = {}): Promise<Database> {
  if (!('url' in target)) {
    // PGlite runs in this process: there is no network to hang on, and a statement cannot be
    // cut short from outside (a slow query blocks the event loop itself), so no deadlines apply.
    const database = await openPglite(target.dataDir);
    if (opts.migrate !== false) await migrateDatabase(database, opts.onMigrate);
    database.vectors = await enableVectors(database, opts.migrate !== false);
    return database;
  }
  const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  if (opts.migrate !== false) {
    // A migration may take longer than any request-path bound: its own client, unbounded.
    const migrator = await openPostgres(target.url, 2, { statementTimeoutMs: 0, connectTimeoutMs });
    try {
      await migrateDatabase(migrator, opts.onMigrate);
      await enableVectors(migrator, true);
    } finally {
      await migrator.close();
    }
  }
  const database = await openPostgres(target.url, opts.poolSize ?? 10, {
    statementTimeoutMs: opts.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS,
    connectTimeoutMs,
  });
  database.vectors = await enableVectors(database, false);
  return database;
}

const rowsOf = (r: unknown) => (Array.isArray(r) ? r : (r as { rows: unknown[] }).rows) as Record<string, unknown>[];

/**
 * pgvector, where the database has it: the extension created (when `install`) and the embeddings
 * table given a `vec` column of type vector (no fixed size: the embedding model decides it). Not a
 * drizzle migration, because plain Postgres without the extension must still migrate. Returns
 * whether vector search can run in the database. A server without the extension, or a role that
 * may not create it, keeps the in-gateway comparison.
 */
async function enableVectors(database: Database, install: boolean): Promise<boolean> {
  const { db } = database;
  if (install) {
    try {
      await database.serialize(async () => {
        const [available] = rowsOf(
          await db.execute(sql`select exists (select 1 from pg_available_extensions where name = 'vector') as ok`),
        );
        if (!available?.ok) return;
        await db.execute(sql`create extension if not exists vector`);
        await db.execute(sql`alter table thread_item_embeddings add column if not exists vec vector`);
      });
    } catch {
      // no permission to create the extension: the in-gateway comparison serves
    }
  }
  const [ready] = rowsOf(
    await db.execute(sql`
      select exists (select 1 from pg_extension where extname = 'vector')
        and exists (select 1 from information_schema.columns where table_name = 'thread_item_embeddings' and column_name = 'vec') as ok`),
  );
  return ready?.ok === true;
}

async function openPostgres(url: string, max: number, bounds: { statementTimeoutMs: number; connectTimeoutMs: number }): Promise<Database> {
  const { default: postgres } = await import('postgres');
  const { drizzle } = await import('drizzle-orm/postgres-js');
  // serialize() holds one connection while the work it guards (migrations) runs on another: a
  // pool of one would wait on itself forever.
  const client = postgres(url, {
    max: Math.max(2, max),
    onnotice: () => {},
    connect_timeout: Math.max(1, Math.ceil(bounds.connectTimeoutMs / 1000)),
    idle_timeout: 60,
    ...(bounds.statementTimeoutMs > 0 ? { connection: { statement_timeout: bounds.statementTimeoutMs } } : {}),
  });
  const db = drizzle(bounds.statementTimeoutMs > 0 ? boundedClient(client, bounds.statementTimeoutMs + ANSWER_MARGIN_MS) : client, {
    schema,
  }) as unknown as Db;
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
    vectors: false,
    serialize,
    ping: async () => {
      await (bounds.statementTimeoutMs > 0
        ? withDeadline(client`select 1`, bounds.statementTimeoutMs + ANSWER_MARGIN_MS, 'the database')
        : client`select 1`);
    },
    close: () => client.end({ timeout: 5 }),
  };
}

/**
 * The postgres.js client as Drizzle uses it (`unsafe` for statements, `begin` for transactions),
 * with the gateway's own deadline on each: postgres.js has no client-side query timeout, and a
 * server-side one never arrives over a frozen connection. postgres.js queries are lazy (they run
 * when awaited), so the deadline starts when Drizzle awaits them.
 */
function boundedClient<C extends { unsafe: (...args: any[]) => any; begin: (...args: any[]) => any }>(client: C, deadlineMs: number): C {
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop === RAW_CLIENT) return { client: target, deadlineMs } satisfies RawClientAccess;
      if (prop === 'unsafe') {
        return (...args: unknown[]) => {
          const query = target.unsafe(...args);
          return {
            then: (onOk?: (v: unknown) => unknown, onErr?: (e: unknown) => unknown) =>
              withDeadline(query, deadlineMs, 'the database').then(onOk, onErr),
            values: () => withDeadline(query.values(), deadlineMs, 'the database'),
          };
        };
      }
      if (prop === 'begin') return (...args: unknown[]) => withDeadline(target.begin(...args), 2 * deadlineMs, 'a database transaction');
      return Reflect.get(target, prop, receiver);
    },
  });
}

async function openPglite(dataDir: string | undefined): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { vector } = await import('@electric-sql/pglite-pgvector');
  const { drizzle } = await import('drizzle-orm/pglite');
  let dir: string | undefined;
  if (dataDir) {
    dir = resolve(dataDir, 'pglite');
    mkdirSync(dir, { recursive: true });
  }
  // PGlite ships pgvector as an extension bundle: vector retrieval runs in the embedded database too.
  const client = await PGlite.create({ dataDir: dir, extensions: { vector } });
  const db = drizzle(client, { schema }) as unknown as Db;
  return {
    db,
    kind: 'pglite',
    vectors: false,
    serialize: (fn) => fn(),
    ping: async () => {
      await client.query('select 1');
    },
    close: () => client.close(),
  };
}

async function migrateDatabase(database: Database, onMigrate?: (before: MigrationStatus) => void): Promise<void> {
  const run = async (migrate: (db: any, config: { migrationsFolder: string }) => Promise<void>) => {
    if (onMigrate) onMigrate(await migrationStatus(database.db));
    await migrate(database.db, { migrationsFolder });
  };
  if (database.kind === 'postgres') {
    const { migrate } = await import('drizzle-orm/postgres-js/migrator');
    // Several instances may start at once: serialize migrations with a session advisory lock.
    await database.serialize(() => run(migrate));
  } else {
    const { migrate } = await import('drizzle-orm/pglite/migrator');
    await run(migrate);
  }
}
