import { createHash } from 'node:crypto';
import type { RedisConnection } from '../redis/connect.js';
import { WINDOW_MS, type LimitResult, type Limiter } from './limiter.js';

// Exact sliding log in a sorted set, atomically; the clock is Redis's own, so every instance
// counts in the same window. Returns {allowed, remaining, reset_ms}.
const HIT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  count = count + 1
  allowed = 1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local reset = 0
if oldest[2] then reset = tonumber(oldest[2]) + window - now end
return {allowed, limit - count, reset}
`;

// Tokens in one-second buckets of a hash: sum of the buckets inside the window.
const TOKENS = `
local t = redis.call('TIME')
local sec = tonumber(t[1])
local now = sec * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local add = tonumber(ARGV[2])
local oldestSec = math.floor((now - window) / 1000)
if add > 0 then
  redis.call('HINCRBY', KEYS[1], tostring(sec), add)
  redis.call('PEXPIRE', KEYS[1], window + 1000)
end
local all = redis.call('HGETALL', KEYS[1])
local used = 0
local first = nil
for i = 1, #all, 2 do
  local s = tonumber(all[i])
  if s <= oldestSec then
    redis.call('HDEL', KEYS[1], all[i])
  else
    used = used + tonumber(all[i + 1])
    if first == nil or s < first then first = s end
  end
end
local reset = 0
if first then reset = (first + 1) * 1000 + window - now end
return {used, reset}
`;

const sha = (s: string) => createHash('sha1').update(s).digest('hex');
const HIT_SHA = sha(HIT);
const TOKENS_SHA = sha(TOKENS);

/** The Redis limiter: shared by every instance on the same Redis (keys under the configured prefix). */
export function createRedisLimiter(redis: RedisConnection): Limiter {
  let seq = 0;
  const member = () => `${process.pid}:${Date.now()}:${seq++}`;

  async function run(script: string, scriptSha: string, key: string, args: string[]): Promise<number[]> {
    try {
      return (await redis.command(['EVALSHA', scriptSha, '1', key, ...args])) as number[];
    } catch (err) {
      if (!String((err as Error).message).includes('NOSCRIPT')) throw err;
      return (await redis.command(['EVAL', script, '1', key, ...args])) as number[];
    }
  }

  return {
    kind: 'redis',
    async hitRequest(keyId, rpm): Promise<LimitResult> {
      const [allowed, remaining, reset] = await run(HIT, HIT_SHA, redis.key(`rl:req:${keyId}`), [String(WINDOW_MS), String(rpm), member()]);
      return { allowed: allowed === 1, limit: rpm, remaining: Math.max(0, remaining), resetMs: Math.max(0, reset) };
    },
    async checkTokens(keyId, tpm): Promise<LimitResult> {
      const [used, reset] = await run(TOKENS, TOKENS_SHA, redis.key(`rl:tok:${keyId}`), [String(WINDOW_MS), '0']);
      return { allowed: used < tpm, limit: tpm, remaining: Math.max(0, tpm - used), resetMs: Math.max(0, reset) };
    },
    async addTokens(keyId, tokens) {
      if (tokens <= 0) return;
      await run(TOKENS, TOKENS_SHA, redis.key(`rl:tok:${keyId}`), [String(WINDOW_MS), String(Math.round(tokens))]);
    },
    async close() {},
  };
}
