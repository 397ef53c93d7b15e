/**
 * Telling database errors apart without looking at values. Drivers and Drizzle put SQL text and
 * parameters (message text, for thread memory) into error messages, so log lines carry only what
 * `describeDbError` returns: the SQLSTATE and the error's class name, never its message.
 */

/** The innermost error with a SQLSTATE (Drizzle wraps driver errors in `cause`). */
function sqlState(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++) {
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  }
  return undefined;
}

/** The innermost error's own code (SQLSTATE, or a driver/system code such as ECONNREFUSED). */
function innerCode(err: unknown): string | undefined {
  let code: string | undefined;
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++) {
    if (typeof e.code === 'string' && /^[A-Za-z0-9_]{1,40}$/.test(e.code)) code = e.code;
  }
  return code;
}

/**
 * Whether an error says "this data can never be stored" rather than "the database is away":
 * SQLSTATE class 22 (data exception: NUL, invalid encoding, out of range), 23 (constraint
 * violation) or 54 (program limit, e.g. a value too large), or a JavaScript TypeError/RangeError
 * from encoding a malformed record. Connection loss, timeouts, cancellations and missing tables
 * are not: those are retried, never quarantined.
 */
export function isPoisonError(err: unknown): boolean {
  const state = sqlState(err);
  if (state) return /^(22|23|54)/.test(state);
  return err instanceof TypeError || err instanceof RangeError;
}

/** Loggable facts about a database error: its SQLSTATE or driver code and class name. No message. */
export function describeDbError(err: unknown): { error: string; code?: string } {
  const code = sqlState(err) ?? innerCode(err);
  const name = err instanceof Error ? err.name : typeof err;
  return code ? { error: name, code } : { error: name };
}
