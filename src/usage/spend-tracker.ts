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

/** ms from `now` to the start of the next period. */
export function msUntilNextPeriod(period: BudgetPeriod, now: number): number {
  const d = new Date(now);
  const next =
    period === 'day'
      ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1)
      : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  return Math.max(1, next - now);
}

interface Entry {
  period: string;
  /** Spend already in the rollups when last read, plus what this instance wrote since. */
  persisted: bigint;
  /** Spend this instance queued that the writer has not written yet. */
  pending: bigint;
  readAt: number;
}

/** A budget reservation waiting for its request's actual cost. */
interface Hold {
  settle: (costUnits: bigint) => Promise<void>;
  expiresAt: number;
}

/**
 * Spend per key for the current budget period: the rollups (re-read every few seconds, so other
 * instances' spend shows up) plus what this instance has queued but not yet written. It also keeps
 * the budget reservations of requests in flight, by request id, until the ledger queues their
 * record: then the actual cost settles the reservation.
 */
export function createSpendTracker(opts: { db: Db; now: () => number; refreshMs?: number }) {
  const refreshMs = opts.refreshMs ?? 5_000;
  const entries = new Map<string, Entry>();
  const reads = new Map<string, Promise<void>>();
  // Insertion order is expiry order (one TTL per process), so sweeps stop at the first live hold.
  const holds = new Map<string, Hold>();
  const settling = new Set<Promise<void>>();

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

  /** Re-reads the rollups into the key's entry; one read per key at a time (a burst shares it). */
  function refresh(keyId: string, start: string): Promise<void> {
    const readKey = `${keyId}\n${start}`;
    let read = reads.get(readKey);
    if (!read) {
      read = readPersisted(keyId, start)
        .then((persisted) => {
          const prev = entryFor(keyId, start);
          entries.set(keyId, { period: start, persisted, pending: prev?.pending ?? 0n, readAt: opts.now() });
        })
        .finally(() => reads.delete(readKey));
      reads.set(readKey, read);
    }
    return read;
  }

  function sweepHolds(): void {
    const t = opts.now();
    for (const [id, hold] of holds) {
      if (hold.expiresAt > t) break;
      holds.delete(id);
    }
  }

  function track(p: Promise<void>): void {
    const done = p.catch(() => {}).finally(() => settling.delete(done));
    settling.add(done);
  }

  return {
    /** Spend so far this period, in scaled units (see decimal.ts). Falls back to the last known figure. */
    async spent(keyId: string, period: BudgetPeriod): Promise<bigint> {
      const start = periodStart(period, opts.now());
      const entry = entryFor(keyId, start);
      if (!entry || opts.now() - entry.readAt > refreshMs) {
        try {
          await refresh(keyId, start);
        } catch (err) {
          if (!entryFor(keyId, start)) throw err;
        }
      }
      const latest = entryFor(keyId, start)!;
      return latest.persisted + latest.pending;
    },

    /** The figure `spent` last returned, without waiting (undefined when not read this period). */
    known(keyId: string, period: BudgetPeriod): bigint | undefined {
      const entry = entryFor(keyId, periodStart(period, opts.now()));
      return entry ? entry.persisted + entry.pending : undefined;
    },

    /** Keeps a request's budget reservation until its record is queued (or `ttlMs` passes). */
    hold(requestId: string, settle: Hold['settle'], ttlMs: number): void {
      sweepHolds();
      holds.set(requestId, { settle, expiresAt: opts.now() + ttlMs });
    },

    /** A record was queued for writing: its cost counts now, and settles its request's reservation. */
    queued(keyId: string, day: string, cost: string, requestId?: string): void {
      const e = entries.get(keyId);
      const hold = requestId === undefined ? undefined : holds.get(requestId);
      if (!hold && !(e && day >= e.period)) return; // keys without a budget pay nothing here
      const units = parseDecimal(cost);
      // The cost counts before the reservation is released, so no moment counts neither.
      if (e && day >= e.period) e.pending += units;
      if (hold) {
        holds.delete(requestId!);
        track(hold.settle(units));
      }
    },

    /** A queued record was written (moves its cost from pending to persisted). */
    written(keyId: string, day: string, cost: string): void {
      const e = entries.get(keyId);
      if (!e || day < e.period) return;
      const units = parseDecimal(cost);
      e.pending -= units;
      e.persisted += units;
    },

    /** Resolves when every settle started so far has finished (tests, shutdown). */
    async settled(): Promise<void> {
      while (settling.size > 0) await Promise.all([...settling]);
    },

    /** Reservations still waiting for their cost. */
    holding: () => holds.size,

    format: formatDecimal,
  };
}

export type SpendTracker = ReturnType<typeof createSpendTracker>;
