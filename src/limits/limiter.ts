/** One limit's state after a check. */
export interface LimitResult {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** ms until the window has room again (for Retry-After and x-ratelimit-reset-*). */
  resetMs: number;
}

/** A request's claim on its key's tokens per minute, held from admission until it ends. */
export interface TokenHold {
  keyId: string;
  /** The gateway's request id (unique per request): the hold's name until it is settled. */
  id: string;
  tpm: number;
  /** Prompt tokens counted plus the output the request may produce. */
  estimate: number;
  /** A hold never settled (a lost outcome) is dropped after this long. */
  ttlMs: number;
}

/** A request's claim on its key's spend budget for one period, held until its cost is known. */
export interface SpendHold {
  keyId: string;
  id: string;
  /** The budget period, e.g. `day:2026-05-01` (a new period is a new, empty scope). */
  scope: string;
  /** Money in scaled units (see usage/decimal.ts). */
  budget: bigint;
  estimate: bigint;
  /** Spend this instance knows of (rollups plus its own queued records): the shared figure never falls below it. */
  spentFloor: bigint;
  ttlMs: number;
  /** How long the scope's shared state is kept (until the period is over). */
  scopeTtlMs: number;
}

export interface SpendAnswer {
  allowed: boolean;
  spent: bigint;
  /** Held by requests in flight (this one included when allowed). */
  reserved: bigint;
  inFlight: number;
}

/**
 * Per-key limits. Requests per minute over a sliding 60 s window (each request counts one, only
 * when allowed). Tokens per minute and spend budgets are reserved at admission and settled when the
 * request ends: the estimate is held while the request runs, then replaced by the actual figure.
 * With Redis the reservation is atomic across instances; in-process it covers this instance only.
 */
export interface Limiter {
  kind: 'redis' | 'memory';
  hitRequest(keyId: string, rpm: number): Promise<LimitResult>;
  /** Admits when the window's tokens plus holds plus this estimate fit (see `admits`); admitted → held. */
  reserveTokens(hold: TokenHold): Promise<LimitResult>;
  /** Releases the hold `id` (if any) and counts the tokens the request actually used. */
  settleTokens(keyId: string, id: string, actualTokens: number): Promise<void>;
  /** Admits when spent plus holds plus this estimate fit the budget (see `admits`); admitted → held. */
  reserveSpend(hold: SpendHold): Promise<SpendAnswer>;
  /** Releases the hold `id` (if any) and adds the request's actual cost to the shared spend. */
  settleSpend(keyId: string, scope: string, id: string, actualUnits: bigint, scopeTtlMs: number): Promise<void>;
  close(): Promise<void>;
}

export const WINDOW_MS = 60_000;

/** How soon a request refused only because of other requests' holds may try again. */
export const HELD_RETRY_MS = 1_000;

/**
 * The admission rule shared by tokens and spend (the Lua scripts say the same): the estimate must
 * fit beside what is used and held, except that a request may always run alone while anything is
 * left. That keeps one-at-a-time use exactly as before (a last request whose estimate is larger
 * than what is left still runs), and bounds a burst to what fits plus one.
 */
export function admits(used: bigint, reserved: bigint, estimate: bigint, limit: bigint, inFlight: number): boolean {
  return used + reserved + estimate <= limit || (inFlight === 0 && used < limit);
}

/** OpenAI's reset format: "1s", "6m0s", "250ms". */
export function formatReset(ms: number): string {
  if (ms < 1_000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const s = Math.ceil(ms / 1_000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${s % 60}s`;
}
