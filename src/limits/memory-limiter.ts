import { WINDOW_MS, type LimitResult, type Limiter } from './limiter.js';

/**
 * The in-process limiter (no REDIS_URL, or while Redis is away): an exact sliding log for
 * requests and one-second buckets for tokens, per key. Only this instance's traffic counts.
 */
export function createMemoryLimiter(now: () => number = Date.now): Limiter {
  const requests = new Map<string, number[]>();
  const tokens = new Map<string, Map<number, number>>();

  function sweepTokens(keyId: string, t: number): Map<number, number> {
    let buckets = tokens.get(keyId);
    if (!buckets) tokens.set(keyId, (buckets = new Map()));
    const oldest = Math.floor((t - WINDOW_MS) / 1_000);
    for (const sec of buckets.keys()) if (sec <= oldest) buckets.delete(sec);
    return buckets;
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
    async checkTokens(keyId, tpm): Promise<LimitResult> {
      const t = now();
      const buckets = sweepTokens(keyId, t);
      let used = 0;
      let oldest = Infinity;
      for (const [sec, n] of buckets) {
        used += n;
        oldest = Math.min(oldest, sec);
      }
      const resetMs = Number.isFinite(oldest) ? (oldest + 1) * 1_000 + WINDOW_MS - t : 0;
      return { allowed: used < tpm, limit: tpm, remaining: Math.max(0, tpm - used), resetMs: Math.max(0, resetMs) };
    },
    async addTokens(keyId, n) {
      if (n <= 0) return;
      const t = now();
      const buckets = sweepTokens(keyId, t);
      const sec = Math.floor(t / 1_000);
      buckets.set(sec, (buckets.get(sec) ?? 0) + n);
    },
    async close() {},
  };
}
