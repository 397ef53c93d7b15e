import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createFallbackLimiter } from './fallback-limiter.js';
import { formatReset, type Limiter } from './limiter.js';
import { createMemoryLimiter } from './memory-limiter.js';

describe('in-process limiter', () => {
  it('allows rpm requests in any 60 s window, then refuses until the oldest leaves it', async () => {
    let t = 1_000_000;
    const l = createMemoryLimiter(() => t);
    for (let i = 0; i < 3; i++) {
      const r = await l.hitRequest('k', 3);
      expect(r).toMatchObject({ allowed: true, remaining: 2 - i });
      t += 10_000;
    }
    const refused = await l.hitRequest('k', 3);
    expect(refused.allowed).toBe(false);
    expect(refused.resetMs).toBe(30_000); // the first request leaves the window at +60 s
    t += 30_000;
    expect((await l.hitRequest('k', 3)).allowed).toBe(true);
    expect((await l.hitRequest('other', 3)).remaining).toBe(2);
  });

  it('counts actual tokens over the window once requests settle', async () => {
    let t = 5_000_000;
    const l = createMemoryLimiter(() => t);
    const hold = (id: string, estimate: number) => l.reserveTokens({ keyId: 'k', id, tpm: 100, estimate, ttlMs: 600_000 });
    expect((await hold('a', 10)).allowed).toBe(true);
    await l.settleTokens('k', 'a', 60);
    t += 20_000;
    expect((await hold('b', 10)).allowed).toBe(true);
    await l.settleTokens('k', 'b', 50);
    const over = await hold('c', 10);
    expect(over).toMatchObject({ allowed: false, remaining: 0 });
    expect(over.resetMs).toBe(41_000); // the first 60 leave the window then
    t += 41_000;
    expect(await hold('d', 10)).toMatchObject({ allowed: true, remaining: 40 });
  });

  it('formats resets like OpenAI', () => {
    expect(formatReset(250)).toBe('250ms');
    expect(formatReset(1_200)).toBe('2s');
    expect(formatReset(360_000)).toBe('6m0s');
  });
});

describe('fallback limiter', () => {
  it('answers from the in-process limiter when Redis fails, counts it, and returns to Redis', async () => {
    let t = 0;
    let broken = true;
    const primaryCalls: string[] = [];
    const primary: Limiter = {
      kind: 'redis',
      async hitRequest(k, rpm) {
        primaryCalls.push(k);
        if (broken) throw new Error('timeout');
        return { allowed: true, limit: rpm, remaining: 99, resetMs: 0 };
      },
      reserveTokens: async () => {
        throw new Error('timeout');
      },
      settleTokens: async () => {},
      reserveSpend: async () => {
        throw new Error('timeout');
      },
      settleSpend: async () => {},
      close: async () => {},
    };
    const fallbacks: string[] = [];
    const l = createFallbackLimiter({
      primary,
      fallback: createMemoryLimiter(() => t),
      logger: pino({ level: 'silent' }),
      onFallback: (r) => fallbacks.push(r),
      now: () => t,
    });
    expect((await l.hitRequest('k', 5)).remaining).toBe(4); // from the in-process limiter
    expect(l.usingFallback()).toBe(true);
    await l.hitRequest('k', 5);
    expect(primaryCalls).toHaveLength(1); // not retried during the back-off
    expect(fallbacks).toEqual(['redis_error', 'redis_down']);
    broken = false;
    t += 1_500;
    expect((await l.hitRequest('k', 5)).remaining).toBe(99);
    expect(l.usingFallback()).toBe(false);
  });
});
