import { createHash } from 'node:crypto';

// Lua for the Redis limiter. Every script reads Redis's own clock (TIME), so all instances count
// in the same window and expire holds alike. Amounts travel as decimal integer strings and are
// added with HINCRBY (exact 64-bit); comparisons use Lua numbers (doubles), exact below 2^53 units
// (money at 10 fractional digits: $900,000), which is as far as a budget comparison needs to be.

export interface Script {
  text: string;
  sha: string;
}

const script = (text: string): Script => ({ text, sha: createHash('sha1').update(text).digest('hex') });

const NOW = `
local t = redis.call('TIME')
local sec = tonumber(t[1])
local now = sec * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

// Holds: a hash (field 'reserved' = their sum, 'r:<id>' = each amount) and a sorted set of the
// ids by expiry. Expired holds are dropped first (at most 100 per call; the rest on the next).
const HOLDS = `
local function liveHolds(h, z)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 100)
  for i = 1, #gone do
    local a = redis.call('HGET', h, 'r:' .. gone[i])
    if a then
      if a ~= '0' then redis.call('HINCRBY', h, 'reserved', '-' .. a) end
      redis.call('HDEL', h, 'r:' .. gone[i])
    end
    redis.call('ZREM', z, gone[i])
  end
  return tonumber(redis.call('HGET', h, 'reserved') or '0'), redis.call('ZCARD', z)
end
local function hold(h, z, id, amount, ttl)
  if redis.call('HEXISTS', h, 'r:' .. id) == 1 then return end
  if amount ~= '0' then redis.call('HINCRBY', h, 'reserved', amount) end
  redis.call('HSET', h, 'r:' .. id, amount)
  redis.call('ZADD', z, now + ttl, id)
end
local function release(h, z, id)
  local a = redis.call('HGET', h, 'r:' .. id)
  if not a then return 0 end
  if a ~= '0' then redis.call('HINCRBY', h, 'reserved', '-' .. a) end
  redis.call('HDEL', h, 'r:' .. id)
  redis.call('ZREM', z, id)
  return 1
end
-- The admission rule (limiter.ts admits): the estimate fits, or the request runs alone.
local function admits(used, reserved, estimate, limit, inflight)
  return used + reserved + estimate <= limit or (inflight == 0 and used < limit)
end
`;

// Tokens in one-second buckets of a hash: the sum of the buckets inside the window.
const WINDOW = `
local function windowUsed(k, window)
  local oldestSec = math.floor((now - window) / 1000)
  local all = redis.call('HGETALL', k)
  local used = 0
  local first = nil
  for i = 1, #all, 2 do
    local s = tonumber(all[i])
    if s <= oldestSec then
      redis.call('HDEL', k, all[i])
    else
      used = used + tonumber(all[i + 1])
      if first == nil or s < first then first = s end
    end
  end
  local reset = 0
  if first then reset = (first + 1) * 1000 + window - now end
  return used, reset
end
`;

/** Exact sliding log in a sorted set. ARGV window, limit, member → {allowed, remaining, reset_ms}. */
export const HIT = script(`${NOW}
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
`);

/**
 * KEYS buckets, holds, hold expiries; ARGV window, tpm, estimate, id, ttl_ms
 * → {allowed, used, reserved, in_flight, reset_ms}.
 */
export const RESERVE_TOKENS = script(`${NOW}${HOLDS}${WINDOW}
local window = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local estimate = tonumber(ARGV[3])
local ttl = tonumber(ARGV[5])
local used, reset = windowUsed(KEYS[1], window)
local reserved, inflight = liveHolds(KEYS[2], KEYS[3])
local allowed = 0
if admits(used, reserved, estimate, tpm, inflight) then
  hold(KEYS[2], KEYS[3], ARGV[4], ARGV[3], ttl)
  reserved = reserved + estimate
  inflight = inflight + 1
  allowed = 1
  redis.call('PEXPIRE', KEYS[2], ttl + window)
  redis.call('PEXPIRE', KEYS[3], ttl + window)
end
return {allowed, used, reserved, inflight, reset}
`);

/** KEYS buckets, holds, hold expiries; ARGV window, id, actual tokens → released (0/1). */
export const SETTLE_TOKENS = script(`${NOW}${HOLDS}
local window = tonumber(ARGV[1])
local released = release(KEYS[2], KEYS[3], ARGV[2])
local actual = tonumber(ARGV[3])
if actual > 0 then
  redis.call('HINCRBY', KEYS[1], tostring(sec), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window + 1000)
end
return released
`);

/**
 * KEYS state (fields 'spent', 'reserved', holds), hold expiries; ARGV budget, estimate, spent floor,
 * id, ttl_ms, scope ttl_ms → {allowed, spent, reserved, in_flight} (money as decimal strings).
 * The shared spend is raised to the caller's floor (Postgres rollups are the truth; the Redis figure
 * adds what every instance settled since and is never lower than what any instance knows).
 */
export const RESERVE_SPEND = script(`${NOW}${HOLDS}
local budget = tonumber(ARGV[1])
local estimate = tonumber(ARGV[2])
local reserved, inflight = liveHolds(KEYS[1], KEYS[2])
local spentText = redis.call('HGET', KEYS[1], 'spent') or '0'
if tonumber(ARGV[3]) > tonumber(spentText) then
  spentText = ARGV[3]
  redis.call('HSET', KEYS[1], 'spent', spentText)
end
local allowed = 0
if admits(tonumber(spentText), reserved, estimate, budget, inflight) then
  hold(KEYS[1], KEYS[2], ARGV[4], ARGV[2], tonumber(ARGV[5]))
  inflight = inflight + 1
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return {allowed, spentText, redis.call('HGET', KEYS[1], 'reserved') or '0', inflight}
`);

/** KEYS state, hold expiries; ARGV id, actual cost (units), scope ttl_ms → released (0/1). */
export const SETTLE_SPEND = script(`${NOW}${HOLDS}
local released = release(KEYS[1], KEYS[2], ARGV[1])
if ARGV[2] ~= '0' then redis.call('HINCRBY', KEYS[1], 'spent', ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return released
`);
