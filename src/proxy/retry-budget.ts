/**
 * A retry budget (as in Finagle and Envoy): every request earns `ratio` of a retry, every retry
 * spends one, and a small floor per second keeps retries possible at low traffic. When the upstream
 * is failing for everyone, retries stay a fixed share of the load instead of tripling it.
 */
export interface RetryBudget {
  /** A request was sent: it earns its share of a retry. */
  deposit(): void;
  /** True (and one retry spent) when the budget allows a retry now. */
  withdraw(): boolean;
  stats(): { retries: number; denied: number; balance: number };
}

export function createRetryBudget(opts: { ratio: number; floorPerSecond?: number; max?: number; now?: () => number }): RetryBudget {
  const floorPerSecond = opts.floorPerSecond ?? 5;
  const max = opts.max ?? 100;
  const now = opts.now ?? (() => performance.now());
  let balance = floorPerSecond;
  let refilledAt = now();
  let retries = 0;
  let denied = 0;
  const refill = () => {
    const t = now();
    balance = Math.min(max, balance + ((t - refilledAt) / 1000) * floorPerSecond);
    refilledAt = t;
  };
  return {
    deposit() {
      balance = Math.min(max, balance + opts.ratio);
    },
    withdraw() {
      refill();
      if (balance >= 1) {
        balance -= 1;
        retries++;
        return true;
      }
      denied++;
      return false;
    },
    stats: () => ({ retries, denied, balance }),
  };
}
