import { and, eq, gte, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { usageDaily } from '../db/schema/index.js';
import { formatDecimal, parseDecimal } from './decimal.js';

export type BudgetPeriod = 'day' | 'month';

/** First UTC day of the period containing `now`, as YYYY-MM-DD. */
export function periodStart(period: BudgetPeriod, now: number): string {
  const d = new Date(now);
  const day = period === 'month' ? 1 : d.getUTCDate();
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), day)).toISOString().slice(0, 10);
}

interface Entry {
  period: string;
  /** Spend already in the rollups when last read, plus what this instance wrote since. */
  persisted: bigint;
  /** Spend this instance queued that the writer has not written yet. */
  pending: bigint;
  readAt: number;
}

/**
 * Spend per key for the current budget period: the rollups (re-read every few seconds, so other
 * instances' spend shows up) plus what this instance has queued but not yet written.
 */
export function createSpendTracker(opts: { db: Db; now: () => number; refreshMs?: number }) {
  const refreshMs = opts.refreshMs ?? 5_000;
  const entries = new Map<string, Entry>();

  async function readPersisted(keyId: string, since: string): Promise<bigint> {
    const [row] = await opts.db
      .select({ total: sql<string>`coalesce(sum(${usageDaily.costUsd}), 0)::text` })
      .from(usageDaily)
      .where(and(eq(usageDaily.keyId, keyId), gte(usageDaily.day, since)));
    return parseDecimal(row?.total ?? '0');
  }

  function entryFor(keyId: string, period: string): Entry | undefined {
    const e = entries.get(keyId);
    return e && e.period === period ? e : undefined;
  }

  return {
    /** Spend so far this period, in scaled units (see decimal.ts). Falls back to the last known figure. */
    async spent(keyId: string, period: BudgetPeriod): Promise<bigint> {
      const start = periodStart(period, opts.now());
      let entry = entryFor(keyId, start);
      if (!entry || opts.now() - entry.readAt > refreshMs) {
        try {
          const persisted = await readPersisted(keyId, start);
          entry = { period: start, persisted, pending: entry?.pending ?? 0n, readAt: opts.now() };
          entries.set(keyId, entry);
        } catch (err) {
          if (!entry) throw err;
        }
      }
      return entry.persisted + entry.pending;
    },

    /** A record was queued for writing. */
    queued(keyId: string, day: string, cost: string): void {
      const e = entries.get(keyId);
      if (e && day >= e.period) e.pending += parseDecimal(cost);
    },

    /** A queued record was written (moves its cost from pending to persisted). */
    written(keyId: string, day: string, cost: string): void {
      const e = entries.get(keyId);
      if (!e || day < e.period) return;
      const units = parseDecimal(cost);
      e.pending -= units;
      e.persisted += units;
    },

    format: formatDecimal,
  };
}

export type SpendTracker = ReturnType<typeof createSpendTracker>;
