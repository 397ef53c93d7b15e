// `npm run db:migrate` and `npm run db:status`: the committed migrations (drizzle/) against the
// database the gateway would use (DATABASE_URL, else embedded PGlite in DATA_DIR). The gateway also
// migrates at every start; these are for doing it ahead of a rollout, and for looking.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfigFromProcess, type Config } from '../config.js';
import { readInstanceLock } from '../keys/instance-lock.js';
import { openDatabase, type DatabaseTarget } from './client.js';
import { databaseLabel, explainDatabaseError } from './explain.js';
import { migrationStatus, shippedMigrations, type MigrationStatus } from './migrations.js';

const USAGE = `Usage: npm run db:migrate          apply the pending migrations
       npm run db:status [-- --json]  which migrations are applied and which are pending

Both use DATABASE_URL (Postgres) when it is set, else the embedded PGlite database in DATA_DIR.`;

class UsageError extends Error {}
class CliError extends Error {}

const say = (line = '') => process.stdout.write(`${line}\n`);

function target(config: Config): DatabaseTarget {
  return config.databaseUrl ? { url: config.databaseUrl } : { dataDir: config.dataDir };
}

/** PGlite's directory holds a database once it has PG_VERSION; before the first start or migrate it does not. */
const pgliteExists = (config: Config) => existsSync(join(resolve(config.dataDir, 'pglite'), 'PG_VERSION'));

/** Embedded PGlite admits one process: a live gateway on DATA_DIR has it (and migrated it at its start). */
function refuseIfHeld(config: Config, command: string) {
  if (config.databaseUrl) return;
  const holder = readInstanceLock(config.dataDir);
  if (!holder) return;
  throw new CliError(
    `${databaseLabel(config)} is held by the running gateway (pid ${holder.pid}, ${holder.url}), which applied its migrations when it started; stop it to run db:${command} (embedded PGlite admits one process)`,
  );
}

function printStatus(status: MigrationStatus) {
  const { migrations, applied, pending } = status;
  const summary = pending === 0 ? 'none pending' : `${pending} pending (npm run db:migrate applies them; so does starting the gateway)`;
  say(`migrations: ${applied} of ${migrations.length} applied, ${summary}`);
  for (const m of migrations)
    say(`  ${m.applied ? 'applied' : 'pending'}  ${m.tag}${m.changed ? '  (its file changed after it was applied)' : ''}`);
  if (status.unknown)
    say(
      `note: the database has ${status.unknown} applied migration(s) this build does not ship: a newer gateway migrated it; run that version`,
    );
}

async function status(config: Config, json: boolean) {
  refuseIfHeld(config, 'status');
  const label = databaseLabel(config);
  let result: MigrationStatus;
  let exists = true;
  if (!config.databaseUrl && !pgliteExists(config)) {
    // Nothing to open, and opening would create it: every shipped migration is pending.
    exists = false;
    const migrations = shippedMigrations().map((m) => ({ ...m, applied: false, changed: false }));
    result = { tracked: false, migrations, applied: 0, pending: migrations.length, unknown: 0 };
  } else {
    const database = await openDatabase(target(config), { migrate: false, poolSize: 2, connectTimeoutMs: config.databaseConnectTimeoutMs });
    try {
      result = await migrationStatus(database.db);
    } finally {
      await database.close();
    }
  }
  if (json) {
    say(
      JSON.stringify(
        {
          database: label,
          kind: config.databaseUrl ? 'postgres' : 'pglite',
          exists,
          applied: result.applied,
          pending: result.pending,
          unknown: result.unknown,
          migrations: result.migrations.map((m) => ({ tag: m.tag, applied: m.applied, changed: m.changed })),
        },
        null,
        2,
      ),
    );
    return;
  }
  say(`database: ${label}${exists ? '' : ' (not created yet: the first db:migrate or start creates it)'}`);
  printStatus(result);
}

async function migrate(config: Config) {
  refuseIfHeld(config, 'migrate');
  say(`database: ${databaseLabel(config)}`);
  const started = performance.now();
  let before: MigrationStatus | undefined;
  const database = await openDatabase(target(config), {
    poolSize: 2,
    connectTimeoutMs: config.databaseConnectTimeoutMs,
    onMigrate: (status) => {
      before = status;
      const pending = status.migrations.filter((m) => !m.applied);
      if (pending.length) say(`applying ${pending.length} migration(s): ${pending.map((m) => m.tag).join(', ')} ...`);
    },
  });
  try {
    const after = await migrationStatus(database.db);
    const added = after.applied - (before?.applied ?? 0);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    say(
      added > 0
        ? `done in ${seconds} s: ${added} applied, ${after.applied} of ${after.migrations.length} in all`
        : `nothing to apply: all ${after.applied} migrations were already applied`,
    );
    if (after.unknown)
      say(
        `note: the database has ${after.unknown} applied migration(s) this build does not ship: a newer gateway migrated it; run that version`,
      );
  } finally {
    await database.close();
  }
}

async function run(argv: string[]) {
  const [command, ...rest] = argv;
  if (command === 'help' || argv.includes('--help') || argv.includes('-h')) return say(USAGE);
  const json = rest.includes('--json');
  const unknown = rest.filter((a) => a !== '--json' || command !== 'status');
  if (!command || !['migrate', 'status'].includes(command) || unknown.length)
    throw new UsageError(`unknown arguments: ${argv.join(' ') || '(none)'}`);
  const loaded = loadConfigFromProcess();
  if (!loaded.ok) {
    for (const line of loaded.errors) process.stderr.write(`config error: ${line}\n`);
    process.exitCode = 1;
    return;
  }
  const config = loaded.config;
  try {
    if (command === 'migrate') await migrate(config);
    else await status(config, json);
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(explainDatabaseError(err, config, { connectTimeoutMs: config.databaseConnectTimeoutMs }));
  }
}

run(process.argv.slice(2)).then(
  () => process.exit(),
  (err) => {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n\n${USAGE}\n`);
      process.exit(2);
    }
    process.stderr.write(`error: ${err instanceof CliError ? err.message : (err?.stack ?? err)}\n`);
    process.exit(1);
  },
);
