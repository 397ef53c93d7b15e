import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectRedis } from '../redis/connect.js';
import { createFallbackLimiter } from './fallback-limiter.js';
import { admits, type Limiter, type SpendHold } from './limiter.js';
import { createMemoryLimiter } from './memory-limiter.js';
import { createRedisLimiter } from './redis-limiter.js';

const silent = pino({ level: 'silent' });

describe('admission rule', () => {
  it('admits what fits beside use and holds, or a request alone while anything is left', () => {
    expect(admits(0n, 0n, 10n, 10n, 0)).toBe(true);
    expect(admits(0n, 10n, 1n, 10n, 1)).toBe(false); // held by another request
    expect(admits(5n, 0n, 100n, 10n, 0)).toBe(true); // alone: may use the rest
    expect(admits(5n, 1n, 100n, 10n, 1)).toBe(false);
    expect(admits(10n, 0n, 0n, 10n, 0)).toBe(true); // a free request fits even at the limit
    expect(admits(10n, 0n, 1n, 10n, 0)).toBe(false); // used up
  });
});

type Make = () => Promise<{ limiter: Limiter; close(): Promise<void> }>;
const kinds: [string, Make][] = [['in-process', async () => ({ limiter: createMemoryLimiter(), close: async () => {} })]];
if (inject('redisUrl')) {
  kinds.push([
    'Redis',
    async () => {
      const redis = await connectRedis({
        url: inject('redisUrl'),
        prefix: `u${randomBytes(4).toString('hex')}:`,
        logger: silent,
        commandTimeoutMs: 1_000,
      });
      return { limiter: createRedisLimiter(redis), close: () => redis.close() };
    },
  ]);
}

describe.each(kinds)('reservations (%s)', (_name, make) => {
  let limiter: Limiter;
  let close: () => Promise<void>;
  beforeAll(async () => ({ limiter, close } = await make()));
  afterAll(() => close());
  const key = () => `k${randomBytes(4).toString('hex')}`;
  const spendHold = (keyId: string, id: string, over: Partial<SpendHold> = {}): SpendHold => ({
    keyId,
    id,
    scope: 'day:2026-05-01',
    budget: 100n,
    estimate: 30n,
    spentFloor: 0n,
    ttlMs: 60_000,
    scopeTtlMs: 120_000,
    ...over,
  });

  it('50 concurrent token reservations admit only what fits, and settling frees the rest', async () => {
    const k = key();
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => limiter.reserveTokens({ keyId: k, id: `r${i}`, tpm: 100, estimate: 30, ttlMs: 60_000 })),
    );
    const admitted = answers.map((a, i) => (a.allowed ? i : -1)).filter((i) => i >= 0);
    expect(admitted).toHaveLength(3);
    const refused = answers.find((a) => !a.allowed)!;
    expect(refused).toMatchObject({ remaining: 10, resetMs: 1_000 }); // held by requests in flight: retry soon
    // Each used 5: the holds give way to 15 tokens, and 85 are left.
    await Promise.all(admitted.map((i) => limiter.settleTokens(k, `r${i}`, 5)));
    expect(await limiter.reserveTokens({ keyId: k, id: 'after', tpm: 100, estimate: 85, ttlMs: 60_000 })).toMatchObject({
      allowed: true,
      remaining: 0,
    });
    await limiter.settleTokens(k, 'after', 0);
    const last = await limiter.reserveTokens({ keyId: k, id: 'over', tpm: 100, estimate: 86, ttlMs: 60_000 });
    expect(last.allowed).toBe(true); // alone, with 85 left: runs (one-at-a-time use is never refused while room is left)
    await limiter.settleTokens(k, 'over', 90);
    const used = await limiter.reserveTokens({ keyId: k, id: 'used-up', tpm: 100, estimate: 1, ttlMs: 60_000 });
    expect(used.allowed).toBe(false);
    expect(used.resetMs).toBeGreaterThan(1_000); // used up: wait for the window
  });

  it('a settle without a hold still counts the tokens; a second settle of the same hold releases nothing', async () => {
    const k = key();
    await limiter.settleTokens(k, 'never-held', 40);
    expect(await limiter.reserveTokens({ keyId: k, id: 'a', tpm: 100, estimate: 60, ttlMs: 60_000 })).toMatchObject({
      allowed: true,
      remaining: 0,
    });
    await limiter.settleTokens(k, 'a', 0);
    await limiter.settleTokens(k, 'a', 0);
    expect(await limiter.reserveTokens({ keyId: k, id: 'b', tpm: 100, estimate: 60, ttlMs: 60_000 })).toMatchObject({
      allowed: true,
      remaining: 0,
    });
  });

  it('50 concurrent spend reservations admit what fits; the spend settles to the actual cost', async () => {
    const k = key();
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => limiter.reserveSpend(spendHold(k, `s${i}`))));
    const admitted = answers.map((a, i) => (a.allowed ? i : -1)).filter((i) => i >= 0);
    expect(admitted).toHaveLength(3);
    expect(answers.find((a) => !a.allowed)).toMatchObject({ spent: 0n, reserved: 90n, inFlight: 3 });
    // In-process the caller's floor carries the spend; Redis keeps the sum itself.
    const floor = limiter.kind === 'memory' ? 60n : 0n;
    await Promise.all(admitted.map((i) => limiter.settleSpend(k, 'day:2026-05-01', `s${i}`, 20n, 120_000)));
    const next = await limiter.reserveSpend(spendHold(k, 'n1', { spentFloor: floor, estimate: 40n }));
    expect(next).toMatchObject({ allowed: true, spent: 60n, reserved: 40n, inFlight: 1 });
    expect((await limiter.reserveSpend(spendHold(k, 'n2', { spentFloor: floor, estimate: 1n }))).allowed).toBe(false);
    // Another period is another scope.
    expect((await limiter.reserveSpend(spendHold(k, 'n3', { scope: 'day:2026-05-02' }))).allowed).toBe(true);
  });

  it('raises the shared spend to the floor an instance knows, never lowers it', async () => {
    const k = key();
    expect(await limiter.reserveSpend(spendHold(k, 'a', { spentFloor: 95n, estimate: 10n }))).toMatchObject({ allowed: true, spent: 95n });
    await limiter.settleSpend(k, 'day:2026-05-01', 'a', 10n, 120_000);
    const after = await limiter.reserveSpend(spendHold(k, 'b', { spentFloor: limiter.kind === 'memory' ? 105n : 50n }));
    expect(after).toMatchObject({ allowed: false, spent: 105n, inFlight: 0 });
  });

  it('drops a hold that is never settled once its TTL has passed', async () => {
    const k = key();
    expect((await limiter.reserveSpend(spendHold(k, 'lost', { estimate: 100n, ttlMs: 30 }))).allowed).toBe(true);
    expect((await limiter.reserveSpend(spendHold(k, 'x', { estimate: 1n }))).allowed).toBe(false);
    await new Promise((r) => setTimeout(r, 60));
    expect(await limiter.reserveSpend(spendHold(k, 'y', { estimate: 100n }))).toMatchObject({ allowed: true, reserved: 100n, inFlight: 1 });
  });
});

describe('fallback limiter settles each hold where it was made', () => {
  it('a hold made in-process while Redis was away is settled in-process', async () => {
    let t = 0;
    let broken = true;
    const settledOnPrimary: [string, number][] = [];
    const fallback = createMemoryLimiter(() => t);
    const primary: Limiter = {
      kind: 'redis',
      hitRequest: async () => {
        throw new Error('unused');
      },
      async reserveTokens(h) {
        if (broken) throw new Error('timeout');
        return { allowed: true, limit: h.tpm, remaining: 0, resetMs: 0 };
      },
      async settleTokens(_k, id, actual) {
        settledOnPrimary.push([id, actual]);
      },
      reserveSpend: async () => {
        throw new Error('unused');
      },
      settleSpend: async () => {},
      close: async () => {},
    };
    const l = createFallbackLimiter({ primary, fallback, logger: silent, onFallback: () => {}, now: () => t });
    expect((await l.reserveTokens({ keyId: 'k', id: 'during', tpm: 10, estimate: 10, ttlMs: 60_000 })).allowed).toBe(true);
    broken = false;
    t += 2_000;
    expect((await l.reserveTokens({ keyId: 'k', id: 'after', tpm: 10, estimate: 10, ttlMs: 60_000 })).allowed).toBe(true);
    await l.settleTokens('k', 'during', 3);
    await l.settleTokens('k', 'after', 3);
    // The in-process hold is settled in-process; Redis only hears "release it if you have it".
    expect(settledOnPrimary).toEqual([
      ['during', 0],
      ['after', 3],
    ]);
    expect(fallback.holdsTokens('k', 'during')).toBe(false);
    expect(await fallback.reserveTokens({ keyId: 'k', id: 'x', tpm: 10, estimate: 1, ttlMs: 60_000 })).toMatchObject({
      allowed: true,
      remaining: 6,
    }); // its 3 tokens counted in-process
  });
});
