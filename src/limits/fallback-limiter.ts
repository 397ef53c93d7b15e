import type { Logger } from '../telemetry/logger.js';
import type { LimitResult, Limiter } from './limiter.js';
import type { MemoryLimiter } from './memory-limiter.js';

/**
 * Redis first; when a Redis call fails (timeout, disconnected) the in-process limiter answers
 * instead, for a short while before Redis is tried again. Requests never hang or fail on a Redis
 * outage. Each fallback is counted and logged: while it lasts, every instance enforces limits on
 * its own traffic only, so a key's effective limit is multiplied by the number of instances.
 * `usingFallback()` says so to admission, which answers with `x-ratelimit-fallback: local`. Each
 * Redis call is bounded by the connection's command deadline (redis/connect.ts), so the switch
 * happens within REDIS_COMMAND_TIMEOUT_MS even when Redis hangs rather than refuses.
 *
 * A hold is settled where it was made: the in-process limiter settles the holds it made (while
 * Redis was away); every other settle goes to Redis (and, if Redis fails then, its hold there
 * expires by itself while the actual tokens are counted in-process). A reservation that timed out
 * on its way to Redis may still have been made there: settling its in-process twin also releases
 * that id in Redis (best effort, nothing counted twice).
 */
export function createFallbackLimiter(opts: {
  primary: Limiter;
  fallback: MemoryLimiter;
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
    reserveTokens: (hold): Promise<LimitResult> => attempt((l) => l.reserveTokens(hold)),
    async settleTokens(keyId, id, actual) {
      if (!opts.fallback.holdsTokens(keyId, id)) return attempt((l) => l.settleTokens(keyId, id, actual));
      await opts.fallback.settleTokens(keyId, id, actual);
      opts.primary.settleTokens(keyId, id, 0).catch(() => {});
    },
    reserveSpend: (hold) => attempt((l) => l.reserveSpend(hold)),
    async settleSpend(keyId, scope, id, actual, ttl) {
      if (!opts.fallback.holdsSpend(keyId, scope, id)) return attempt((l) => l.settleSpend(keyId, scope, id, actual, ttl));
      await opts.fallback.settleSpend(keyId, scope, id, actual, ttl);
      opts.primary.settleSpend(keyId, scope, id, 0n, ttl).catch(() => {});
    },
    usingFallback: () => now() < downUntil,
    async close() {
      await Promise.all([opts.primary.close(), opts.fallback.close()]);
    },
  };
}
