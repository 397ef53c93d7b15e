/**
 * Deadlines for calls to a dependency that may accept and never answer (a hung Postgres, a frozen
 * network path): a server-side statement timeout cannot help when its answer cannot reach us, so
 * the caller stops waiting on its own clock. The call itself is not cancelled; it settles (or its
 * connection fails) later, unobserved.
 */
export class DeadlineError extends Error {
  override name = 'DeadlineError';
  readonly code = 'CMG_DEADLINE';
  constructor(
    what: string,
    readonly ms: number,
  ) {
    super(`${what} did not answer within ${ms} ms`);
  }
}

/** Settles as `work` does, or rejects with a DeadlineError after `ms`. */
export function withDeadline<T>(work: PromiseLike<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(what, ms)), ms);
    timer.unref?.();
  });
  return Promise.race([Promise.resolve(work), deadline]).finally(() => clearTimeout(timer));
}

// SQLSTATE 57014 query_canceled (statement_timeout), 57P01-57P03 (shutdown, cannot connect now),
// class 08 (connection exception); postgres.js and system codes for a connection that failed.
const UNAVAILABLE_STATES = /^(57014|57P0[1-3]|08[0-9A-Z]{3})$/;
const UNAVAILABLE_CODES = new Set([
  'CMG_DEADLINE',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
]);

/**
 * Whether an error means "the database did not answer" (timeout, cancelled statement, connection
 * lost) rather than a bug: such errors are answered 503 `service_unavailable`, not 500. Drizzle
 * wraps driver errors in `cause`, so the chain is walked.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (
    let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0;
    e && typeof e === 'object' && i < 5;
    e = e.cause as typeof e, i++
  ) {
    if (typeof e.code === 'string' && (UNAVAILABLE_STATES.test(e.code) || UNAVAILABLE_CODES.has(e.code))) return true;
  }
  return false;
}
