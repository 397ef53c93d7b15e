import { createHoldTable } from './hold-table.js';
import { HELD_RETRY_MS, WINDOW_MS, admits, type LimitResult, type Limiter } from './limiter.js';

export type MemoryLimiter = Limiter & {
  /** True while this limiter holds the request's tokens (the fallback routes the settle here). */
  holdsTokens(keyId: string, id: string): boolean;
  holdsSpend(keyId: string, scope: string, id: string): boolean;
};

/**
 * The in-process limiter (no REDIS_URL, or while Redis is away): an exact sliding log for
 * requests, one-second buckets for tokens, and holds for reservations, per key. Only this
 * instance's traffic counts: with N instances and no Redis, a key's limits and budget hold per
 * instance, so together they can let through up to N times as much.
 *
 * Each check-and-reserve runs synchronously (no await in between), so concurrent requests on this
 * instance see each other's holds.
 */
export function createMemoryLimiter(now: () => number = Date.now): MemoryLimiter {
  const requests = new Map<string, number[]>();
  const tokens = new Map<string, Map<number, number>>();
  const tokenHolds = createHoldTable(now);
  const spendHolds = createHoldTable(now);
  const spendScope = (keyId: string, scope: string) => `${keyId}\n${scope}`;

  function sweepTokens(keyId: string, t: number): Map<number, number> {
    let buckets = tokens.get(keyId);
    if (!buckets) tokens.set(keyId, (buckets = new Map()));
    const oldest = Math.floor((t - WINDOW_MS) / 1_000);
    for (const sec of buckets.keys()) if (sec <= oldest) buckets.delete(sec);
    return buckets;
  }

  /** Tokens counted in the window, and ms until its oldest bucket leaves it. */
  function windowOf(keyId: string, t: number): { used: number; resetMs: number } {
    const buckets = sweepTokens(keyId, t);
    let used = 0;
    let oldest = Infinity;
    for (const [sec, n] of buckets) {
      used += n;
      oldest = Math.min(oldest, sec);
    }
    if (buckets.size === 0) tokens.delete(keyId);
    const resetMs = Number.isFinite(oldest) ? (oldest + 1) * 1_000 + WINDOW_MS - t : 0;
    return { used, resetMs: Math.max(0, resetMs) };
  }

  return {
    kind: 'memory',
    async hitRequest(keyId, rpm): Promise<LimitResult> {
      const t = now();
      let log = requests.get(keyId);
      if (!log) requests.set(keyId, (log = []));
      let drop = 0;
      while (drop < log.length && log[drop] <= t - WINDOW_MS) drop++;
      if (drop) log.splice(0, drop);
      if (log.length < rpm) {
        log.push(t);
        return { allowed: true, limit: rpm, remaining: rpm - log.length, resetMs: log[0] + WINDOW_MS - t };
      }
      return { allowed: false, limit: rpm, remaining: 0, resetMs: log[0] + WINDOW_MS - t };
    },
    async reserveTokens({ keyId, id, tpm, estimate, ttlMs }): Promise<LimitResult> {
      const t = now();
      const { used, resetMs } = windowOf(keyId, t);
      const held = tokenHolds.state(keyId);
      const allowed = admits(BigInt(used), held.reserved, BigInt(estimate), BigInt(tpm), held.inFlight);
      if (allowed) tokenHolds.add(keyId, id, BigInt(estimate), ttlMs);
      const reserved = Number(held.reserved) + (allowed ? estimate : 0);
      return {
        allowed,
        limit: tpm,
        remaining: Math.max(0, tpm - used - reserved),
        resetMs: tokenResetMs(allowed, used, estimate, tpm, resetMs),
      };
    },
    async settleTokens(keyId, id, actual) {
      tokenHolds.release(keyId, id);
      if (actual <= 0) return;
      const t = now();
      const buckets = sweepTokens(keyId, t);
      const sec = Math.floor(t / 1_000);
      buckets.set(sec, (buckets.get(sec) ?? 0) + Math.round(actual));
    },
    // Spend itself is the caller's figure (rollups plus queued records): only holds live here.
    async reserveSpend({ keyId, id, scope, budget, estimate, spentFloor, ttlMs }) {
      const name = spendScope(keyId, scope);
      const held = spendHolds.state(name);
      const allowed = admits(spentFloor, held.reserved, estimate, budget, held.inFlight);
      if (allowed) spendHolds.add(name, id, estimate, ttlMs);
      return {
        allowed,
        spent: spentFloor,
        reserved: held.reserved + (allowed ? estimate : 0n),
        inFlight: held.inFlight + (allowed ? 1 : 0),
      };
    },
    async settleSpend(keyId, scope, id) {
      spendHolds.release(spendScope(keyId, scope), id);
    },
    holdsTokens: (keyId, id) => tokenHolds.has(keyId, id),
    holdsSpend: (keyId, scope, id) => spendHolds.has(spendScope(keyId, scope), id),
    async close() {},
  };
}

/**
 * When to try again after a token check: a request refused only because other requests hold
 * tokens may retry as soon as they end (about a second); otherwise when the oldest bucket leaves
 * the window.
 */
export function tokenResetMs(allowed: boolean, used: number, estimate: number, tpm: number, windowResetMs: number): number {
  if (allowed) return windowResetMs;
  return used === 0 || used + estimate <= tpm ? HELD_RETRY_MS : windowResetMs;
}
