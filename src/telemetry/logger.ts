import { pino } from 'pino';
import { safeError } from './safe-error.js';

export type Logger = pino.Logger;

/**
 * JSON logs. Authorization headers, keys and message bodies are never passed to the logger; the
 * redact paths are a second line of defence should someone log a request object by mistake.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  // Lines are written in 4 KiB batches (one syscall per batch, not per line), and at least every
  // half second; main.ts flushes on exit.
  const stream = destination ?? pino.destination({ sync: false, minLength: 4096 });
  if (!destination) setInterval(() => (stream as ReturnType<typeof pino.destination>).flush(), 500).unref();
  return pino(
    {
      level,
      base: undefined,
      // Errors never bring SQL parameters (message text) or key material into a line.
      serializers: { err: safeError, cause: safeError },
      redact: {
        paths: ['authorization', 'headers.authorization', 'req.headers.authorization', '*.apiKey', 'key', 'messages', 'body'],
        censor: '[redacted]',
      },
    },
    stream,
  );
}
