import { describe, expect, it } from 'vitest';
import type { Db } from '../db/client.js';
import { parseDecimal } from './decimal.js';
import { createSpendTracker, msUntilNextPeriod, periodStart } from './spend-tracker.js';

/** A database that answers the rollup sum with `total`, counting reads (each waits a tick). */
function fakeDb(total: () => string) {
  const db = {
    reads: 0,
    select: () => ({
      from: () => ({
        where: async () => {
          db.reads++;
          await new Promise((r) => setTimeout(r, 5));
          return [{ total: total() }];
        },
      }),
    }),
  };
  return db;
}

const NOW = Date.UTC(2026, 4, 17, 12, 0, 0);

describe('spend tracker', () => {
  it('periods: day and month starts, and the time left in them', () => {
    expect(periodStart('day', NOW)).toBe('2026-05-17');
    expect(periodStart('month', NOW)).toBe('2026-05-01');
    expect(msUntilNextPeriod('day', NOW)).toBe(12 * 3_600_000);
    expect(msUntilNextPeriod('month', NOW)).toBe(Date.UTC(2026, 5, 1) - NOW);
  });

  it('a burst shares one rollup read; queued records count at once', async () => {
    const db = fakeDb(() => '0.5');
    const spend = createSpendTracker({ db: db as unknown as Db, now: () => NOW });
    const figures = await Promise.all(Array.from({ length: 20 }, () => spend.spent('k', 'day')));
    expect(db.reads).toBe(1);
    expect(new Set(figures)).toEqual(new Set([parseDecimal('0.5')]));
    spend.queued('k', '2026-05-17', '0.25');
    expect(spend.known('k', 'day')).toBe(parseDecimal('0.75'));
    expect(spend.known('other', 'day')).toBeUndefined();
  });

  it("settles a request's reservation with its record's cost, once", async () => {
    let t = NOW;
    const spend = createSpendTracker({ db: fakeDb(() => '0') as unknown as Db, now: () => t });
    await spend.spent('k', 'day');
    const settled: [string, bigint, bigint | undefined][] = [];
    spend.hold('req-1', async (cost) => void settled.push(['req-1', cost, spend.known('k', 'day')]), 60_000);
    spend.hold('req-2', async (cost) => void settled.push(['req-2', cost, undefined]), 60_000);
    expect(spend.holding()).toBe(2);
    spend.queued('k', '2026-05-17', '0.001', 'req-1');
    spend.queued('k', '2026-05-17', '0.001', 'req-1'); // a duplicate record settles nothing twice
    await spend.settled();
    // The cost was counted before the reservation was released.
    expect(settled).toEqual([['req-1', parseDecimal('0.001'), parseDecimal('0.001')]]);
    // A hold whose record never comes is dropped after its TTL.
    t += 61_000;
    spend.hold('req-3', async () => {}, 60_000);
    expect(spend.holding()).toBe(1);
  });

  it('costs nothing for keys without a budget (no entry, no hold): the record is ignored', () => {
    const spend = createSpendTracker({ db: fakeDb(() => '0') as unknown as Db, now: () => NOW });
    expect(() => spend.queued('plain', '2026-05-17', 'not a number')).not.toThrow();
  });
});
