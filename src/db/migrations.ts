import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';

/** The committed drizzle migrations (SQL files and meta/_journal.json), shipped beside dist/ and src/. */
export const migrationsFolder = fileURLToPath(new URL('../../drizzle', import.meta.url));

export interface ShippedMigration {
  /** The file name without `.sql`, e.g. `0003_item_json_as_text`. */
  tag: string;
  /** The journal's timestamp: drizzle records it as the row's created_at once applied. */
  when: number;
  hash: string;
}

/** The migrations this build ships, oldest first. */
export function shippedMigrations(): ShippedMigration[] {
  const journal = JSON.parse(readFileSync(`${migrationsFolder}/meta/_journal.json`, 'utf8')) as {
    entries: { tag: string; when: number }[];
  };
  const files = readMigrationFiles({ migrationsFolder });
  return journal.entries.map((entry, i) => ({ tag: entry.tag, when: entry.when, hash: files[i].hash }));
}

export interface MigrationStatus {
  /** Whether drizzle's bookkeeping table exists (not on a database never migrated). */
  tracked: boolean;
  migrations: (ShippedMigration & { applied: boolean; /** applied, but the file changed since */ changed: boolean })[];
  applied: number;
  pending: number;
  /** Applied migrations this build does not ship: a newer gateway migrated the database. */
  unknown: number;
}

const rowsOf = (r: unknown) => (Array.isArray(r) ? r : (r as { rows: unknown[] }).rows) as Record<string, unknown>[];

/**
 * Which shipped migrations the database has, judged as drizzle's migrator judges it (a migration is
 * applied when its timestamp is not after the newest applied one). Reads only: creates nothing.
 */
export async function migrationStatus(db: PgDatabase<PgQueryResultHKT, any>): Promise<MigrationStatus> {
  const shipped = shippedMigrations();
  const [table] = rowsOf(await db.execute(sql`select to_regclass('drizzle.__drizzle_migrations') is not null as ok`));
  const tracked = table?.ok === true;
  const rows = tracked
    ? rowsOf(await db.execute(sql`select hash, created_at from drizzle.__drizzle_migrations order by created_at`)).map((r) => ({
        hash: String(r.hash),
        when: Number(r.created_at),
      }))
    : [];
  const newest = rows.reduce((max, r) => Math.max(max, r.when), -Infinity);
  const migrations = shipped.map((m) => {
    const applied = m.when <= newest;
    const row = rows.find((r) => r.when === m.when);
    return { ...m, applied, changed: applied && !!row && row.hash !== m.hash };
  });
  const known = new Set(shipped.map((m) => m.when));
  const applied = migrations.filter((m) => m.applied).length;
  return { tracked, migrations, applied, pending: migrations.length - applied, unknown: rows.filter((r) => !known.has(r.when)).length };
}
