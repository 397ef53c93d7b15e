import { pino } from 'pino';

export type Logger = pino.Logger;

/**
 * JSON logs. Authorization headers, keys and message bodies are never passed to the logger; the
 * redact paths are a second line of defence should someone log a request object by mistake.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      redact: {
        paths: ['authorization', 'headers.authorization', 'req.headers.authorization', '*.apiKey', 'key', 'messages', 'body'],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ sync: false }),
  );
}
