import { GatewayError } from '../errors.js';
import { formatReset } from '../limits/limiter.js';
import { formatDecimal, parseDecimal } from '../usage/decimal.js';
import type { BudgetPeriod } from '../usage/spend-tracker.js';
import type { AppContext, AppDeps } from './context.js';
import type { OutcomePart } from './outcome-emitter.js';
import { setResponseHeader } from './response-headers.js';

/**
 * Admission before the upstream is called: rate limits, then the key's spend budget. A refused
 * request is still recorded (status `rejected`, zero tokens) and answered 429 insufficient_quota.
 * When spend cannot be read at all (database away, nothing cached), the request is let through.
 */
export async function admitRequest(c: AppContext, deps: AppDeps, emit: (part: OutcomePart) => void): Promise<void> {
  await checkRateLimits(c, deps, emit);
  await checkBudget(c, deps, emit);
}

/**
 * Requests and tokens per minute per key (shared across instances through Redis). Every answer
 * carries the x-ratelimit-* headers of the limits that apply; over a limit is 429 with Retry-After.
 */
async function checkRateLimits(c: AppContext, deps: AppDeps, emit: (part: OutcomePart) => void): Promise<void> {
  const caller = c.get('caller');
  if (!caller.rpm && !caller.tpm) return;
  const [requests, tokens] = await Promise.all([
    caller.rpm ? deps.limiter.hitRequest(caller.keyId, caller.rpm) : undefined,
    caller.tpm ? deps.limiter.checkTokens(caller.keyId, caller.tpm) : undefined,
  ]);
  const headers: Record<string, string> = {};
  if (requests) {
    headers['x-ratelimit-limit-requests'] = String(requests.limit);
    headers['x-ratelimit-remaining-requests'] = String(requests.remaining);
    headers['x-ratelimit-reset-requests'] = formatReset(requests.resetMs);
  }
  if (tokens) {
    headers['x-ratelimit-limit-tokens'] = String(tokens.limit);
    headers['x-ratelimit-remaining-tokens'] = String(tokens.remaining);
    headers['x-ratelimit-reset-tokens'] = formatReset(tokens.resetMs);
  }
  for (const [k, v] of Object.entries(headers)) setResponseHeader(c, k, v);
  const refused = requests && !requests.allowed ? requests : tokens && !tokens.allowed ? tokens : undefined;
  if (!refused) return;
  const which = refused === requests ? 'requests' : 'tokens';
  const retryAfter = String(Math.max(1, Math.ceil(refused.resetMs / 1000)));
  emit({ status: 'rejected', httpStatus: 429, errorCode: 'rate_limit_exceeded' });
  throw new GatewayError('rate_limit_exceeded', `Rate limit reached for ${which} per minute (limit ${refused.limit}); retry after ${retryAfter}s.`, {
    headers: { ...headers, 'retry-after': retryAfter },
  });
}

async function checkBudget(c: AppContext, deps: AppDeps, emit: (part: OutcomePart) => void): Promise<void> {
  const caller = c.get('caller');
  if (!caller.budgetUsd || !deps.usage.enabled) return;
  const period = (caller.budgetPeriod ?? 'month') as BudgetPeriod;
  let spent: bigint;
  try {
    spent = await deps.usage.spend.spent(caller.keyId, period);
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message, key_id: caller.keyId }, 'budget check skipped: spend unavailable');
    return;
  }
  const budget = parseDecimal(caller.budgetUsd);
  if (spent < budget) return;
  const error = new GatewayError(
    'insufficient_quota',
    `This key has used its ${period === 'day' ? 'daily' : 'monthly'} budget of $${formatDecimal(budget)} (spent $${formatDecimal(spent)}).`,
    { headers: { 'retry-after': String(secondsUntilNextPeriod(period, deps.now())) } },
  );
  emit({ status: 'rejected', httpStatus: 429, errorCode: 'insufficient_quota' });
  throw error;
}

function secondsUntilNextPeriod(period: BudgetPeriod, now: number): number {
  const d = new Date(now);
  const next = period === 'day' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1) : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  return Math.max(1, Math.ceil((next - now) / 1000));
}
