import { describe, expect, it } from 'vitest';
import type { Logger } from '../telemetry/logger.js';
import { createFallbackLimiter } from './fallback-limiter.js';
import { createHoldTable } from './hold-table.js';
import { formatReset, HELD_RETRY_MS, type Limiter } from './limiter.js';
import { createMemoryLimiter, tokenResetMs } from './memory-limiter.js';

describe('hold table', () => {
  it('adds holds once per id, sums them, and releases each once', () => {
    const h = createHoldTable(() => 0);
    h.add('k', 'a', 5n, 1_000);
    h.add('k', 'a', 7n, 1_000); // the same id again is the same hold
    h.add('k', 'b', 3n, 1_000);
    expect(h.state('k')).toEqual({ reserved: 8n, inFlight: 2 });
    expect(h.has('k', 'a')).toBe(true);
    expect(h.has('k', 'zz')).toBe(false);
    expect(h.has('other', 'a')).toBe(false);
    expect(h.release('k', 'a')).toBe(true);
    expect(h.release('k', 'a')).toBe(false);
    expect(h.release('nope', 'a')).toBe(false);
    expect(h.state('k')).toEqual({ reserved: 3n, inFlight: 1 });
    expect(h.release('k', 'b')).toBe(true);
    expect(h.size()).toBe(0); // an empty scope is gone
    expect(h.state('k')).toEqual({ reserved: 0n, inFlight: 0 });
  });

  it('drops a hold at its expiry instant, and the scope with its last hold', () => {
    let now = 0;
    const h = createHoldTable(() => now);
    h.add('k', 'a', 5n, 100);
    now = 50;
    h.add('k', 'b', 3n, 100);
    now = 99;
    expect(h.state('k')).toEqual({ reserved: 8n, inFlight: 2 });
    now = 100;
    expect(h.state('k')).toEqual({ reserved: 3n, inFlight: 1 });
    expect(h.has('k', 'a')).toBe(false);
    now = 150;
    expect(h.state('k')).toEqual({ reserved: 0n, inFlight: 0 });
    expect(h.size()).toBe(0);
  });
});

describe('reset times', () => {
  it('formats as OpenAI does', () => {
    expect(formatReset(999)).toBe('999ms');
    expect(formatReset(1_000)).toBe('1s');
    expect(formatReset(59_000)).toBe('59s');
    expect(formatReset(60_000)).toBe('1m0s');
    expect(formatReset(61_500)).toBe('1m2s');
    expect(formatReset(-5)).toBe('0ms');
  });

  it('a token refusal caused only by holds retries soon; one caused by usage waits for the window', () => {
    expect(tokenResetMs(true, 50, 10, 100, 30_000)).toBe(30_000);
    expect(tokenResetMs(false, 0, 500, 100, 30_000)).toBe(HELD_RETRY_MS);
    expect(tokenResetMs(false, 40, 60, 100, 30_000)).toBe(HELD_RETRY_MS); // fits exactly once holds end
    expect(tokenResetMs(false, 41, 60, 100, 30_000)).toBe(30_000);
  });
});

describe('in-process limiter: windows', () => {
  it('a request leaves the window exactly 60 s after it was counted', async () => {
    let t = 1_000_000;
    const l = createMemoryLimiter(() => t);
    expect(await l.hitRequest('k', 1)).toEqual({ allowed: true, limit: 1, remaining: 0, resetMs: 60_000 });
    t += 59_999;
    expect(await l.hitRequest('k', 1)).toMatchObject({ allowed: false, resetMs: 1 });
    t += 1;
    expect(await l.hitRequest('k', 1)).toMatchObject({ allowed: true, remaining: 0, resetMs: 60_000 });
  });

  it('the reset of an allowed request is when the oldest counted one leaves', async () => {
    let t = 1_000_000;
    const l = createMemoryLimiter(() => t);
    await l.hitRequest('k', 3);
    t += 10_000;
    expect(await l.hitRequest('k', 3)).toMatchObject({ allowed: true, remaining: 1, resetMs: 50_000 });
  });

  it('tokens leave the window with their second; a zero or negative actual counts nothing', async () => {
    let t = 5_000_000;
    const l = createMemoryLimiter(() => t);
    const reserve = (id: string, estimate: number) => l.reserveTokens({ keyId: 'k', id, tpm: 100, estimate, ttlMs: 600_000 });
    await reserve('a', 10);
    await l.settleTokens('k', 'a', 0);
    await l.settleTokens('k', 'x', -5);
    expect(await reserve('b', 100)).toMatchObject({ allowed: true, remaining: 0 });
    await l.settleTokens('k', 'b', 100);
    const refused = await reserve('c', 20);
    expect(refused).toMatchObject({ allowed: false, remaining: 0 });
    expect(refused.resetMs).toBeGreaterThanOrEqual(60_000);
    expect(refused.resetMs).toBeLessThanOrEqual(61_000);
    t += 59_999;
    expect((await reserve('d', 20)).allowed).toBe(false);
    t += 1;
    expect(await reserve('e', 20)).toMatchObject({ allowed: true, remaining: 80 });
  });

  it('knows which holds are its own', async () => {
    const l = createMemoryLimiter(() => 0);
    await l.reserveTokens({ keyId: 'k', id: 'r1', tpm: 100, estimate: 10, ttlMs: 1_000 });
    await l.reserveSpend({
      keyId: 'k',
      id: 'r1',
      scope: 'day:x',
      budget: 100n,
      estimate: 5n,
      spentFloor: 0n,
      ttlMs: 1_000,
      scopeTtlMs: 1_000,
    });
    expect(l.holdsTokens('k', 'r1')).toBe(true);
    expect(l.holdsTokens('k', 'r2')).toBe(false);
    expect(l.holdsSpend('k', 'day:x', 'r1')).toBe(true);
    expect(l.holdsSpend('k', 'day:y', 'r1')).toBe(false);
    await l.settleSpend('k', 'day:x', 'r1', 5n, 1_000);
    expect(l.holdsSpend('k', 'day:x', 'r1')).toBe(false);
  });
});

/** A primary limiter that fails while `down`, recording what it was asked. */
function primary() {
  const p = {
    down: false,
    calls: [] as string[],
    closed: false,
    limiter: undefined as unknown as Limiter,
  };
  const go = async <T>(name: string, value: T): Promise<T> => {
    p.calls.push(name);
    if (p.down) throw new Error('redis timeout');
    return value;
  };
  p.limiter = {
    kind: 'redis',
    hitRequest: () => go('hit', { allowed: true, limit: 1, remaining: 7, resetMs: 1 }),
    reserveTokens: () => go('reserveTokens', { allowed: true, limit: 1, remaining: 7, resetMs: 1 }),
    settleTokens: () => go('settleTokens', undefined),
    reserveSpend: () => go('reserveSpend', { allowed: true, spent: 0n, reserved: 1n, inFlight: 1 }),
    settleSpend: () => go('settleSpend', undefined),
    close: async () => void (p.closed = true),
  };
  return p;
}

describe('fallback limiter', () => {
  function setup() {
    let now = 1_000_000;
    const p = primary();
    const warnings: string[] = [];
    const reasons: string[] = [];
    const fallback = createMemoryLimiter(() => now);
    const logger = { warn: (_o: unknown, msg: string) => void warnings.push(msg) } as unknown as Logger;
    const l = createFallbackLimiter({ primary: p.limiter, fallback, logger, onFallback: (r) => reasons.push(r), now: () => now });
    return { p, l, fallback, warnings, reasons, advance: (ms: number) => (now += ms) };
  }

  it('answers from Redis while it works', async () => {
    const { p, l, reasons } = setup();
    expect((await l.hitRequest('k', 10)).remaining).toBe(7);
    expect(l.kind).toBe('redis');
    expect(l.usingFallback()).toBe(false);
    expect(reasons).toEqual([]);
    expect(p.calls).toEqual(['hit']);
  });

  it('on a Redis error answers in process for 1 s, then tries Redis again', async () => {
    const { p, l, reasons, warnings, advance } = setup();
    p.down = true;
    expect((await l.hitRequest('k', 10)).remaining).toBe(9); // the in-process answer
    expect(reasons).toEqual(['redis_error']);
    expect(l.usingFallback()).toBe(true);
    advance(999);
    await l.hitRequest('k', 10);
    expect(reasons).toEqual(['redis_error', 'redis_down']);
    expect(p.calls).toEqual(['hit']); // not asked while marked down
    advance(1);
    expect(l.usingFallback()).toBe(false);
    p.down = false;
    expect((await l.hitRequest('k', 10)).remaining).toBe(7);
    expect(warnings).toEqual(['rate limiter: Redis unavailable, using the in-process limiter']);
  });

  it('warns again only after more than 10 s of quiet', async () => {
    const { p, l, warnings, advance } = setup();
    p.down = true;
    await l.hitRequest('k', 10);
    advance(1_000);
    await l.hitRequest('k', 10); // fails again 1 s later: no new warning
    expect(warnings).toHaveLength(1);
    advance(11_000); // 10 s after the last retry window ended
    await l.hitRequest('k', 10);
    expect(warnings).toHaveLength(1);
    advance(11_001);
    await l.hitRequest('k', 10);
    expect(warnings).toHaveLength(2);
  });

  it('a hold made in process is settled in process, and released in Redis too', async () => {
    const { p, l, fallback } = setup();
    p.down = true;
    const hold = { keyId: 'k', id: 'r1', tpm: 100, estimate: 10, ttlMs: 60_000 };
    await l.reserveTokens(hold);
    await l.reserveSpend({
      keyId: 'k',
      id: 'r1',
      scope: 'day:x',
      budget: 100n,
      estimate: 5n,
      spentFloor: 0n,
      ttlMs: 60_000,
      scopeTtlMs: 60_000,
    });
    expect(fallback.holdsTokens('k', 'r1')).toBe(true);
    p.down = false;
    p.calls.length = 0;
    await l.settleTokens('k', 'r1', 7);
    await l.settleSpend('k', 'day:x', 'r1', 3n, 60_000);
    expect(fallback.holdsTokens('k', 'r1')).toBe(false);
    expect(fallback.holdsSpend('k', 'day:x', 'r1')).toBe(false);
    expect(p.calls).toEqual(['settleTokens', 'settleSpend']); // the best-effort release of a twin
  });

  it('a hold made in Redis is settled in Redis', async () => {
    const { p, l } = setup();
    await l.reserveTokens({ keyId: 'k', id: 'r2', tpm: 100, estimate: 10, ttlMs: 60_000 });
    await l.reserveSpend({
      keyId: 'k',
      id: 'r2',
      scope: 'day:x',
      budget: 100n,
      estimate: 5n,
      spentFloor: 0n,
      ttlMs: 60_000,
      scopeTtlMs: 60_000,
    });
    await l.settleTokens('k', 'r2', 7);
    await l.settleSpend('k', 'day:x', 'r2', 3n, 60_000);
    expect(p.calls).toEqual(['reserveTokens', 'reserveSpend', 'settleTokens', 'settleSpend']);
  });

  it('closes both', async () => {
    const { p, l } = setup();
    await l.close();
    expect(p.closed).toBe(true);
  });
});
