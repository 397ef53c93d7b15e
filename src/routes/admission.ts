import { GatewayError } from '../errors.js';
import { formatDecimal, parseDecimal } from '../usage/decimal.js';
import type { BudgetPeriod } from '../usage/spend-tracker.js';
import type { AppContext, AppDeps } from './context.js';
import type { OutcomePart } from './outcome-emitter.js';

/**
 * Admission before the upstream is called: the key's spend budget for the period. A refused
 * request is still recorded (status `rejected`, zero tokens) and answered 429 insufficient_quota.
 * When spend cannot be read at all (database away, nothing cached), the request is let through.
 */
export async function admitRequest(c: AppContext, deps: AppDeps, emit: (part: OutcomePart) => void): Promise<void> {
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
