import type { Config } from '../config.js';
import { databaseIdentity, type DatabaseIdentity } from '../db/identity.js';

/** Where a gateway started with this configuration answers on this machine. */
export function localGatewayUrl(config: Pick<Config, 'host' | 'port'>): string | null {
  if (!config.port) return null; // PORT=0: a random port, nothing to find
  const host = ['0.0.0.0', '::', ''].includes(config.host) ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
  return `http://${host}:${config.port}`;
}

const KIND_NAMES = { postgres: 'Postgres', pglite: 'embedded PGlite' } as const;

/**
 * Asks the gateway at `PORT` (the CLI's own configuration: where `npm start` in the same shell would
 * listen) which database it serves, by the non-secret fingerprint on its `/health`, and returns a
 * warning when that is not the database this command works on. Nothing listening, a slow answer
 * (over `timeoutMs`), or something that is not this gateway: no warning, never an error.
 */
export async function otherDatabaseWarning(config: Config, opts: { timeoutMs?: number } = {}): Promise<string | null> {
  const url = localGatewayUrl(config);
  if (!url) return null;
  let theirs: Partial<DatabaseIdentity> | undefined;
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(opts.timeoutMs ?? 700) });
    theirs = ((await res.json()) as { database?: Partial<DatabaseIdentity> })?.database;
  } catch {
    return null;
  }
  if (!theirs || typeof theirs.fingerprint !== 'string' || (theirs.kind !== 'postgres' && theirs.kind !== 'pglite')) return null;
  const mine = databaseIdentity(config);
  if (theirs.fingerprint === mine.fingerprint) return null;
  const gatewaySide =
    theirs.kind === mine.kind
      ? `${KIND_NAMES[theirs.kind]}, but another ${theirs.kind === 'pglite' ? 'data directory' : 'server or database'}`
      : KIND_NAMES[theirs.kind];
  const fix =
    theirs.kind === 'postgres'
      ? "the gateway's DATABASE_URL"
      : mine.kind === 'postgres'
        ? "no DATABASE_URL and the gateway's DATA_DIR"
        : "the gateway's DATA_DIR";
  return [
    `warning: the gateway running at ${url} uses a different database than this command.`,
    `  gateway:      ${gatewaySide}`,
    `  this command: ${mine.label}`,
    '  The gateway does not see what this command reads or writes: keys made here are refused there (401).',
    `  Run the CLI with ${fix} (in the environment or .env), as the gateway was started.`,
  ].join('\n');
}
