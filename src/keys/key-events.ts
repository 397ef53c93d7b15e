import type { RedisConnection } from '../redis/connect.js';
import type { Logger } from '../telemetry/logger.js';
import type { KeyVerifier } from './verify-key.js';

export const KEY_CHANGES_CHANNEL = 'keys:changed';
const CHANNEL = KEY_CHANGES_CHANNEL;

/**
 * Key changes (revoke, update) reach every instance's key cache: at once on this instance, and
 * through Redis pub/sub on the others (typically within milliseconds; without Redis, other
 * instances see the change when their cached entry expires, KEY_CACHE_TTL_MS). The publish has
 * the Redis command deadline (REDIS_COMMAND_TIMEOUT_MS): a hung Redis delays a revoke by that at
 * most, and the revoke still holds here (and elsewhere after the TTL).
 */
export async function createKeyEvents(opts: { verifier: KeyVerifier; redis?: RedisConnection; logger: Logger }) {
  if (opts.redis) {
    await opts.redis
      .subscribe(CHANNEL, (keyId) => opts.verifier.invalidate(keyId))
      .catch((err) => opts.logger.warn({ err: (err as Error).message }, 'key-change subscription failed; relying on the cache TTL'));
  }
  return {
    async changed(keyId: string): Promise<void> {
      opts.verifier.invalidate(keyId);
      await opts.redis
        ?.publish(CHANNEL, keyId)
        .catch((err) => opts.logger.warn({ err: (err as Error).message }, 'key-change publish failed'));
    },
  };
}

export type KeyEvents = Awaited<ReturnType<typeof createKeyEvents>>;
