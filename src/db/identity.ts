import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * Which database a configuration points at, in two forms:
 * - `label`, for the operator's own terminal: the connection string with its password masked (and
 *   its query options dropped: they may carry secrets too), or the embedded database's directory;
 * - `fingerprint`, safe to publish on `/health`: a short hash of the database's kind and address
 *   (host, port, database name; or the data directory's real path), never a credential. The CLI
 *   compares it with a running gateway's to warn when the two do not share a database.
 */
export interface DatabaseIdentity {
  kind: 'postgres' | 'pglite';
  label: string;
  fingerprint: string;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]', '']);

const hash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16);

function realDir(dir: string): string {
  const abs = resolve(dir);
  try {
    return realpathSync(abs);
  } catch {
    return abs; // not created yet: the gateway or the CLI creates it at this path
  }
}

export function databaseIdentity(target: { databaseUrl?: string; dataDir: string }): DatabaseIdentity {
  if (!target.databaseUrl) {
    const dir = realDir(target.dataDir);
    return { kind: 'pglite', label: `embedded PGlite in ${dir}`, fingerprint: hash(`pglite\n${dir}`) };
  }
  let url: URL;
  try {
    url = new URL(target.databaseUrl);
  } catch {
    return { kind: 'postgres', label: 'Postgres (DATABASE_URL does not parse)', fingerprint: hash('postgres\n?') };
  }
  const user = decodeURIComponent(url.username);
  const host = url.hostname.toLowerCase();
  const port = url.port || '5432';
  // postgres.js (and libpq) take the user name as the database when the URL names none.
  const dbname = decodeURIComponent(url.pathname.replace(/^\//, '')) || user;
  const canonicalHost = LOOPBACK.has(host) ? 'localhost' : host;
  const auth = user ? `${encodeURIComponent(user)}${url.password ? ':***' : ''}@` : '';
  const label = `${url.protocol}//${auth}${url.host || 'localhost'}${url.port ? '' : ':5432'}/${encodeURIComponent(dbname)}${url.search ? ' (+ options)' : ''}`;
  return { kind: 'postgres', label, fingerprint: hash(`postgres\n${canonicalHost}\n${port}\n${dbname}`) };
}
