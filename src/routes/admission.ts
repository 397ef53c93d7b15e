import { GatewayError } from '../errors.js';
import { HELD_RETRY_MS, formatReset, type LimitResult } from '../limits/limiter.js';
import { estimateRequest, type RequestEstimate } from '../usage/budget-estimate.js';
import { formatDecimal, parseDecimal } from '../usage/decimal.js';
import { msUntilNextPeriod, periodStart, type BudgetPeriod } from '../usage/spend-tracker.js';
import type { AppContext, AppDeps } from './context.js';
import type { OutcomePart } from './outcome-emitter.js';
import { setResponseHeader } from './response-headers.js';

/** Shared state of a budget period outlives the period by this much (late settles still land). */
const SCOPE_GRACE_MS = 3_600_000;

/**
 * Admission before the upstream is called: rate limits, then the key's spend budget. Tokens per
 * minute and the budget are reserved, not just checked: the request's estimate (prompt tokens
 * counted, plus the output it asked for or a default, at catalog price) is held while it runs and
 * settled to the actual figures when it ends (outcome-emitter.ts for tokens, the ledger for cost).
 * A refused request is still recorded (status `rejected`, zero tokens) and answered 429.
 * `body` is what goes upstream (chat: the forwarded body with any thread context; embeddings: the
 * request), read only when the key has a tpm or a budget.
 */
export async function admitRequest(
  c: AppContext,
  deps: AppDeps,
  emit: (part: OutcomePart) => void,
  body: Record<string, unknown>,
): Promise<void> {
  const caller = c.get('caller');
  const budgeted = !!caller.budgetUsd && deps.usage.enabled;
  if (!caller.rpm && !caller.tpm && !budgeted) return;
  let estimate: RequestEstimate | undefined;
  if (caller.tpm || budgeted) {
    // Prices come from the catalog: wait for its first load rather than reserve nothing.
    if (budgeted && !deps.catalog.isLoaded()) await deps.catalog.get().catch(() => undefined);
    // With only OpenRouter's fallback list `models`, price the first of them (its primary).
    const model = body.model ?? (Array.isArray(body.models) ? body.models[0] : undefined);
    estimate = estimateRequest(body, typeof model === 'string' ? deps.catalog.peek(model) : undefined);
  }
  await checkRateLimits(c, deps, emit, estimate);
  if (budgeted) await reserveBudget(c, deps, emit, estimate!);
}

/** A reservation is dropped unsettled after this long (a lost outcome cannot hold a key forever). */
function holdTtlMs(deps: AppDeps): number {
  return deps.config.upstreamTimeoutMs + 60_000;
}

/**
 * Requests and tokens per minute per key (shared across instances through Redis). Every answer
 * carries the x-ratelimit-* headers of the limits that apply; over a limit is 429 with Retry-After.
 */
async function checkRateLimits(
  c: AppContext,
  deps: AppDeps,
  emit: (part: OutcomePart) => void,
  estimate: RequestEstimate | undefined,
): Promise<void> {
  const caller = c.get('caller');
  if (!caller.rpm && !caller.tpm) return;
  const [requests, tokens] = await Promise.all([
    caller.rpm ? deps.limiter.hitRequest(caller.keyId, caller.rpm) : undefined,
    caller.tpm
      ? deps.limiter.reserveTokens({
          keyId: caller.keyId,
          id: c.get('requestId'),
          tpm: caller.tpm,
          estimate: estimate!.totalTokens,
          ttlMs: holdTtlMs(deps),
        })
      : undefined,
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
  // Redis did not answer: this instance's own count decided (see fallback-limiter.ts).
  if ((deps.limiter as { usingFallback?: () => boolean }).usingFallback?.()) headers['x-ratelimit-fallback'] = 'local';
  for (const [k, v] of Object.entries(headers)) setResponseHeader(c, k, v);
  const refused: LimitResult | undefined = requests && !requests.allowed ? requests : tokens && !tokens.allowed ? tokens : undefined;
  if (!refused) return;
  const which = refused === requests ? 'requests' : 'tokens';
  const retryAfter = String(Math.max(1, Math.ceil(refused.resetMs / 1000)));
  const detail = which === 'tokens' ? ` (this request may use up to ${estimate!.totalTokens})` : '';
  // The emitted outcome also settles the token reservation, if one was made (rpm refused, tpm held).
  emit({ status: 'rejected', httpStatus: 429, errorCode: 'rate_limit_exceeded' });
  throw new GatewayError(
    'rate_limit_exceeded',
    `Rate limit reached for ${which} per minute (limit ${refused.limit})${detail}; retry after ${retryAfter}s.`,
    {
      headers: { ...headers, 'retry-after': retryAfter },
    },
  );
}

/**
 * Reserves the request's estimated cost against the key's budget for this period. Refused: 429
 * insufficient_quota; when the budget is used up the answer says so until the next period (and
 * tells SDKs not to retry); when requests in flight hold what is left, retry in a second. When
 * spend cannot be read at all (database away, nothing cached), the reservation still bounds a burst.
 */
async function reserveBudget(c: AppContext, deps: AppDeps, emit: (part: OutcomePart) => void, estimate: RequestEstimate): Promise<void> {
  const caller = c.get('caller');
  const period = (caller.budgetPeriod ?? 'month') as BudgetPeriod;
  const spend = deps.usage.spend;
  try {
    await spend.spent(caller.keyId, period);
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message, key_id: caller.keyId }, 'budget: spend unavailable, reserving against holds only');
  }
  const now = deps.now();
  const scope = `${period}:${periodStart(period, now)}`;
  const scopeTtlMs = msUntilNextPeriod(period, now) + SCOPE_GRACE_MS;
  const requestId = c.get('requestId');
  const budget = parseDecimal(caller.budgetUsd!);
  const ttlMs = holdTtlMs(deps);
  // `known` is read in the same synchronous step as the in-process reservation: no settle can
  // land between them.
  const answer = await deps.limiter.reserveSpend({
    keyId: caller.keyId,
    id: requestId,
    scope,
    budget,
    estimate: estimate.costUnits,
    spentFloor: spend.known(caller.keyId, period) ?? 0n,
    ttlMs,
    scopeTtlMs,
  });
  if (answer.allowed) {
    const { keyId } = caller;
    spend.hold(requestId, (cost) => deps.limiter.settleSpend(keyId, scope, requestId, cost, scopeTtlMs), ttlMs);
    return;
  }
  const which = period === 'day' ? 'daily' : 'monthly';
  const exhausted = answer.spent >= budget;
  const error = exhausted
    ? new GatewayError(
        'insufficient_quota',
        `This key has used its ${which} budget of $${formatDecimal(budget)} (spent $${formatDecimal(answer.spent)}).`,
        {
          headers: { 'retry-after': String(Math.ceil(msUntilNextPeriod(period, now) / 1000)), 'x-should-retry': 'false' },
        },
      )
    : new GatewayError(
        'insufficient_quota',
        `What is left of this key's ${which} budget of $${formatDecimal(budget)} is held by ${answer.inFlight} requests in flight ` +
          `(spent $${formatDecimal(answer.spent)}, held $${formatDecimal(answer.reserved)}; this request may cost up to $${formatDecimal(estimate.costUnits)}).`,
        { headers: { 'retry-after': String(HELD_RETRY_MS / 1000) } },
      );
  emit({ status: 'rejected', httpStatus: 429, errorCode: 'insufficient_quota' });
  throw error;
}
