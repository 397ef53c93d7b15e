import { describeDbError } from '../db/db-errors.js';

const MAX_MESSAGE = 300;

function hasSqlState(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++) {
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return true;
  }
  return false;
}

/** A message with any SQL text and parameters cut off (Drizzle writes "Failed query: … params: …"). */
export function scrubMessage(message: string): string {
  let m = message;
  const failed = m.indexOf('Failed query');
  if (failed >= 0) m = m.slice(0, failed) + '[query omitted]';
  const params = m.indexOf('params:');
  if (params >= 0) m = m.slice(0, params) + '[parameters omitted]';
  return m.length > MAX_MESSAGE ? m.slice(0, MAX_MESSAGE) + '…' : m;
}

/**
 * The logger's serializer for `err` and `cause`. Database errors carry their SQL, parameters
 * (message text, key hashes) and quoted values in messages and in own fields (postgres.js:
 * `query`, `parameters`, `args`); they are logged as their SQLSTATE and class only. Other errors
 * keep a scrubbed message and their stack frames.
 */
export function safeError(value: unknown): unknown {
  if (typeof value === 'string') return scrubMessage(value);
  if (!value || typeof value !== 'object') return value;
  if (hasSqlState(value) || /Failed query/.test(String((value as Error).message))) return describeDbError(value);
  if (!(value instanceof Error)) return '[object]';
  const out: Record<string, unknown> = { type: value.name, message: scrubMessage(value.message) };
  const code = (value as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') out.code = code;
  // Frames only: the first stack line repeats the (unscrubbed) message.
  if (value.stack)
    out.stack = value.stack
      .split('\n')
      .filter((l) => /^\s+at /.test(l))
      .slice(0, 12)
      .join('\n');
  return out;
}
