import { databaseIdentity } from './identity.js';

/**
 * Which database a configuration uses, fit for a terminal (the CLI's own words for it): the
 * Postgres URL with its password masked and its query options dropped, or PGlite's DATA_DIR.
 */
export function databaseLabel(target: { databaseUrl?: string; dataDir: string }): string {
  return databaseIdentity(target).label;
}

type ErrorLike = { code?: unknown; message?: unknown; cause?: unknown; name?: unknown; errno?: unknown; syscall?: unknown; path?: unknown };

/** The error and its causes (Drizzle and postgres.js wrap the driver's or the system's error). */
function chain(err: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  for (let e = err as ErrorLike | undefined, i = 0; e && typeof e === 'object' && i < 6; e = e.cause as ErrorLike | undefined, i++)
    out.push(e);
  return out;
}

const firstLine = (text: string) => {
  const line = text.split('\n')[0].trim();
  return line.length > 240 ? `${line.slice(0, 237)}...` : line;
};

/**
 * Why a database could not be opened or migrated, in one line that says what to do: for the start
 * and for `npm run db:migrate` / `db:status`. Server messages (SQLSTATE) are kept: they name users
 * and databases, never passwords; connection URLs are masked.
 */
export function explainDatabaseError(
  err: unknown,
  target: { databaseUrl?: string; dataDir: string },
  opts: { connectTimeoutMs?: number } = {},
): string {
  const errors = chain(err);
  const code = errors.map((e) => (typeof e.code === 'string' ? e.code : undefined)).find(Boolean);
  const message = firstLine(String(errors.at(-1)?.message ?? err));
  const where = databaseLabel(target);
  if (target.databaseUrl) {
    let host = '?';
    try {
      const url = new URL(target.databaseUrl);
      host = `${url.hostname || 'localhost'}:${url.port || 5432}`;
    } catch {
      // config.ts already refused a URL that does not parse
    }
    switch (code) {
      case 'ECONNREFUSED':
        return `cannot reach ${where}: nothing accepts connections at ${host} (is Postgres running there? check DATABASE_URL's host and port)`;
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return `cannot reach ${where}: the host ${host.replace(/:\d+$/, '')} does not resolve (check DATABASE_URL's host)`;
      case 'CONNECT_TIMEOUT':
      case 'ETIMEDOUT':
        return `cannot reach ${where}: no answer from ${host} within ${Math.round((opts.connectTimeoutMs ?? 5_000) / 1000)} s (a firewall, or the wrong host; DATABASE_CONNECT_TIMEOUT_MS sets the wait)`;
      case 'ECONNRESET':
        return `cannot reach ${where}: the connection to ${host} was closed (does the server want TLS? add ?sslmode=require to DATABASE_URL)`;
      case '28P01':
      case '28000':
        return `${where} refused the login: ${message} (check the user and password in DATABASE_URL)`;
      case '3D000':
        return `${where}: ${message} (create it first, e.g. createdb, or CREATE DATABASE)`;
      case '42501':
        return `${where}: ${message} (the user in DATABASE_URL needs the right to create tables in the database)`;
      case '57P03':
        return `${where} is not accepting connections yet: ${message} (retry once it has started)`;
    }
    return `${where}: ${message}${typeof code === 'string' && !message.includes(code) ? ` (${code})` : ''}`;
  }
  const path = errors.map((e) => (typeof e.path === 'string' ? e.path : undefined)).find(Boolean);
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return `cannot open ${where}: no permission to write ${path ?? target.dataDir} (set DATA_DIR to a directory this user may write)`;
    case 'EROFS':
      return `cannot open ${where}: ${path ?? target.dataDir} is on a read-only file system (set DATA_DIR to a writable directory)`;
    case 'ENOSPC':
      return `cannot open ${where}: the disk is full`;
    case 'ENOTDIR':
    case 'EEXIST':
      return `cannot open ${where}: a file is in the way of ${path ?? target.dataDir} (set DATA_DIR to a directory, or to a path that does not exist yet)`;
  }
  return `cannot open ${where}: ${message} (is another process using DATA_DIR? stop it, or set DATA_DIR to another directory)`;
}
