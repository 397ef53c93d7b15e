import type { RedisConnection } from '../redis/connect.js';
import { WINDOW_MS, type LimitResult, type Limiter, type SpendAnswer } from './limiter.js';
import { tokenResetMs } from './memory-limiter.js';
import { HIT, RESERVE_SPEND, RESERVE_TOKENS, SETTLE_SPEND, SETTLE_TOKENS, type Script } from './redis-scripts.js';

/**
 * The Redis limiter: shared by every instance on the same Redis (keys under the configured
 * prefix). Each check-and-reserve is one atomic script, so two instances never both take the last
 * room. Every call is bounded by the connection's command timeout; the fallback limiter answers
 * when one fails.
 */
export function createRedisLimiter(redis: RedisConnection): Limiter {
  let seq = 0;
  const member = () => `${process.pid}:${Date.now()}:${seq++}`;
  const tokenKeys = (keyId: string) => [redis.key(`rl:tok:${keyId}`), redis.key(`rl:tokh:${keyId}`), redis.key(`rl:tokz:${keyId}`)];
  const spendKeys = (keyId: string, scope: string) => [redis.key(`bud:${keyId}:${scope}`), redis.key(`bud:${keyId}:${scope}:z`)];

  async function run(s: Script, keys: string[], args: string[]): Promise<unknown[]> {
    const n = String(keys.length);
    try {
      return (await redis.command(['EVALSHA', s.sha, n, ...keys, ...args])) as unknown[];
    } catch (err) {
      if (!String((err as Error).message).includes('NOSCRIPT')) throw err;
      return (await redis.command(['EVAL', s.text, n, ...keys, ...args])) as unknown[];
    }
  }

  return {
    kind: 'redis',
    async hitRequest(keyId, rpm): Promise<LimitResult> {
      const [allowed, remaining, reset] = (await run(
        HIT,
        [redis.key(`rl:req:${keyId}`)],
        [String(WINDOW_MS), String(rpm), member()],
      )) as number[];
      return { allowed: allowed === 1, limit: rpm, remaining: Math.max(0, remaining), resetMs: Math.max(0, reset) };
    },
    async reserveTokens({ keyId, id, tpm, estimate, ttlMs }): Promise<LimitResult> {
      const est = Math.max(0, Math.round(estimate));
      const [allowed, used, reserved, , reset] = (await run(RESERVE_TOKENS, tokenKeys(keyId), [
        String(WINDOW_MS),
        String(tpm),
        String(est),
        id,
        String(ttlMs),
      ])) as number[];
      const ok = allowed === 1;
      return {
        allowed: ok,
        limit: tpm,
        remaining: Math.max(0, tpm - used - reserved),
        resetMs: tokenResetMs(ok, used, est, tpm, Math.max(0, reset)),
      };
    },
    async settleTokens(keyId, id, actual) {
      await run(SETTLE_TOKENS, tokenKeys(keyId), [String(WINDOW_MS), id, String(Math.max(0, Math.round(actual)))]);
    },
    async reserveSpend({ keyId, id, scope, budget, estimate, spentFloor, ttlMs, scopeTtlMs }): Promise<SpendAnswer> {
      const args = [String(budget), String(estimate), String(spentFloor), id, String(ttlMs), String(scopeTtlMs)];
      const [allowed, spent, reserved, inFlight] = (await run(RESERVE_SPEND, spendKeys(keyId, scope), args)) as [
        number,
        string,
        string,
        number,
      ];
      return { allowed: allowed === 1, spent: BigInt(spent), reserved: BigInt(reserved), inFlight };
    },
    async settleSpend(keyId, scope, id, actualUnits, scopeTtlMs) {
      await run(SETTLE_SPEND, spendKeys(keyId, scope), [id, String(actualUnits > 0n ? actualUnits : 0n), String(scopeTtlMs)]);
    },
    async close() {},
  };
}
