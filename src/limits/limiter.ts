/** One limit's state after a check. */
export interface LimitResult {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** ms until the window has room again (for Retry-After and x-ratelimit-reset-*). */
  resetMs: number;
}

/**
 * Per-key limits over a sliding 60 s window: requests per minute (each request counts one, only
 * when allowed) and tokens per minute (actual usage, added after each response).
 */
export interface Limiter {
  kind: 'redis' | 'memory';
  hitRequest(keyId: string, rpm: number): Promise<LimitResult>;
  checkTokens(keyId: string, tpm: number): Promise<LimitResult>;
  addTokens(keyId: string, tokens: number): Promise<void>;
  close(): Promise<void>;
}

export const WINDOW_MS = 60_000;

/** OpenAI's reset format: "1s", "6m0s", "250ms". */
export function formatReset(ms: number): string {
  if (ms < 1_000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const s = Math.ceil(ms / 1_000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${s % 60}s`;
}
