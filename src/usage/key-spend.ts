import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { formatDecimal, parseDecimal } from './decimal.js';
import { periodStart, type BudgetPeriod, type SpendTracker } from './spend-tracker.js';

export interface KeySpendFields {
  /** The key's budget period, or `month` for a key without a budget. */
  spend_period: BudgetPeriod;
  /** First UTC day of that period (YYYY-MM-DD). */
  spend_period_start: string;
  /** Spend since then (decimal string); null when the database could not be read. */
  spend_usd: string | null;
  /** Keys with a budget only: the same period start (older name) and what is left of the budget. */
  budget_period_start?: string;
  budget_remaining_usd?: string | null;
}

interface KeyBudget {
  id: string;
  budgetUsd: string | null;
  budgetPeriod: string | null;
}

function rowsOf(result: unknown): Record<string, any>[] {
  return (Array.isArray(result) ? result : (result as { rows: Record<string, any>[] }).rows) as Record<string, any>[];
}

/** This month's and today's spend of every key with usage this month, from the rollups, in one query. */
async function spendByKey(db: Db, now: number): Promise<Map<string, { day: bigint; month: bigint }>> {
  const month = periodStart('month', now);
  const day = periodStart('day', now);
  const rows = rowsOf(
    await db.execute(sql`
      select key_id, sum(cost_usd)::text as month, coalesce(sum(cost_usd) filter (where day >= ${day}::date), 0)::text as day
      from usage_daily
      where day >= ${month}::date
      group by key_id
    `),
  );
  return new Map(rows.map((r) => [String(r.key_id), { month: parseDecimal(String(r.month)), day: parseDecimal(String(r.day)) }]));
}

/**
 * Spend in the current period for each key (its budget period, else the month), and for keys with a
 * budget what is left of it. With a spend tracker (the gateway), budgeted keys read it: it also counts
 * what this instance has queued but not written yet, as budget enforcement does.
 */
export async function keySpend(db: Db, keys: KeyBudget[], now: number, tracker?: SpendTracker): Promise<Map<string, KeySpendFields>> {
  let totals: Map<string, { day: bigint; month: bigint }> | null;
  try {
    totals = keys.length ? await spendByKey(db, now) : new Map();
  } catch {
    totals = null;
  }
  const out = new Map<string, KeySpendFields>();
  await Promise.all(
    keys.map(async (k) => {
      const period = (k.budgetPeriod ?? 'month') as BudgetPeriod;
      const start = periodStart(period, now);
      let spent: bigint | null = totals ? (totals.get(k.id)?.[period] ?? 0n) : null;
      if (k.budgetUsd && tracker) spent = await tracker.spent(k.id, period).catch(() => spent);
      const fields: KeySpendFields = {
        spend_period: period,
        spend_period_start: start,
        spend_usd: spent === null ? null : formatDecimal(spent),
      };
      if (k.budgetUsd) {
        const left = spent === null ? null : parseDecimal(k.budgetUsd) - spent;
        fields.budget_period_start = start;
        fields.budget_remaining_usd = left === null ? null : formatDecimal(left > 0n ? left : 0n);
      }
      out.set(k.id, fields);
    }),
  );
  return out;
}
