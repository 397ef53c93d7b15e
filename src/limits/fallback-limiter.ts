import type { Logger } from '../telemetry/logger.js';
import type { LimitResult, Limiter } from './limiter.js';

/**
 * Redis first; when a Redis call fails (timeout, disconnected) the in-process limiter answers
 * instead, for a short while before Redis is tried again. Requests never hang or fail on a Redis
 * outage. Each fallback is counted and logged: while it lasts, every instance enforces limits on
 * its own traffic only, so a key's effective limit is multiplied by the number of instances.
 */
export function createFallbackLimiter(opts: {
  primary: Limiter;
  fallback: Limiter;
  logger: Logger;
  onFallback: (reason: string) => void;
  retryAfterMs?: number;
  now?: () => number;
}): Limiter & { usingFallback(): boolean } {
  const retryAfter = opts.retryAfterMs ?? 1_000;
  const now = opts.now ?? Date.now;
  let downUntil = 0;

  async function attempt<T>(op: (l: Limiter) => Promise<T>): Promise<T> {
    if (now() < downUntil) {
      opts.onFallback('redis_down');
      return op(opts.fallback);
    }
    try {
      return await op(opts.primary);
    } catch (err) {
      if (downUntil === 0 || now() - downUntil > 10_000) {
        opts.logger.warn({ err: (err as Error).message }, 'rate limiter: Redis unavailable, using the in-process limiter');
      }
      downUntil = now() + retryAfter;
      opts.onFallback('redis_error');
      return op(opts.fallback);
    }
  }

  return {
    kind: 'redis',
    hitRequest: (keyId, rpm): Promise<LimitResult> => attempt((l) => l.hitRequest(keyId, rpm)),
    checkTokens: (keyId, tpm): Promise<LimitResult> => attempt((l) => l.checkTokens(keyId, tpm)),
    addTokens: (keyId, tokens) => attempt((l) => l.addTokens(keyId, tokens)),
    usingFallback: () => now() < downUntil,
    async close() {
      await Promise.all([opts.primary.close(), opts.fallback.close()]);
    },
  };
}
