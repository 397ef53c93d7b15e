import { describe, expect, it } from 'vitest';
import type { Db } from '../db/client.js';
import { parseDecimal } from './decimal.js';
import { createSpendTracker, msUntilNextPeriod, periodStart } from './spend-tracker.js';

/** A database whose rollup sum is whatever the test says (or an error), counting reads. */
function rollups(initial: string | null) {
  const db = {
    total: initial,
    fail: false,
    reads: 0,
    select: () => ({
      from: () => ({
        where: async () => {
          db.reads++;
          if (db.fail) throw new Error('connection refused');
          return db.total === null ? [] : [{ total: db.total }];
        },
      }),
    }),
  };
  return db;
}

const T0 = Date.parse('2026-11-26T12:00:00Z');
const usd = (s: string) => parseDecimal(s);

describe('budget periods', () => {
  it('start on the UTC day or the first of the UTC month', () => {
    expect(periodStart('day', T0)).toBe('2026-11-26');
    expect(periodStart('month', T0)).toBe('2026-11-01');
    expect(periodStart('day', Date.parse('2026-11-26T23:59:59.999Z'))).toBe('2026-11-26');
  });

  it('end at the next UTC midnight or first of the month, never in 0 ms', () => {
    expect(msUntilNextPeriod('day', T0)).toBe(12 * 3_600_000);
    expect(msUntilNextPeriod('month', Date.parse('2026-12-31T00:00:00Z'))).toBe(86_400_000);
    expect(msUntilNextPeriod('day', Date.parse('2026-11-26T23:59:59.999Z'))).toBe(1);
  });
});

describe('spend tracker', () => {
  it('reads the rollups, then trusts them for refreshMs, then reads again', async () => {
    const db = rollups('1.25');
    let now = T0;
    const t = createSpendTracker({ db: db as unknown as Db, now: () => now, refreshMs: 1_000 });
    expect(t.known('key_1', 'day')).toBeUndefined();
    expect(await t.spent('key_1', 'day')).toBe(usd('1.25'));
    expect(t.known('key_1', 'day')).toBe(usd('1.25'));
    db.total = '2';
    now += 1_000;
    expect(await t.spent('key_1', 'day')).toBe(usd('1.25'));
    expect(db.reads).toBe(1);
    now += 1;
    expect(await t.spent('key_1', 'day')).toBe(usd('2'));
    expect(db.reads).toBe(2);
  });

  it('refreshes every 5 s unless told otherwise; no rollup row is zero', async () => {
    const db = rollups(null);
    let now = T0;
    const t = createSpendTracker({ db: db as unknown as Db, now: () => now });
    expect(await t.spent('key_1', 'day')).toBe(0n);
    now += 5_000;
    await t.spent('key_1', 'day');
    expect(db.reads).toBe(1);
    now += 1;
    await t.spent('key_1', 'day');
    expect(db.reads).toBe(2);
  });

  it('a burst of first reads shares one query', async () => {
    const db = rollups('1');
    const t = createSpendTracker({ db: db as unknown as Db, now: () => T0 });
    const all = await Promise.all(Array.from({ length: 5 }, () => t.spent('key_1', 'day')));
    expect(all).toEqual(Array(5).fill(usd('1')));
    expect(db.reads).toBe(1);
  });

  it('keeps the last known figure through a database failure, and fails only with none', async () => {
    const db = rollups('3');
    let now = T0;
    const t = createSpendTracker({ db: db as unknown as Db, now: () => now, refreshMs: 10 });
    db.fail = true;
    await expect(t.spent('key_1', 'day')).rejects.toThrow('connection refused');
    db.fail = false;
    await t.spent('key_1', 'day');
    db.fail = true;
    now += 100;
    expect(await t.spent('key_1', 'day')).toBe(usd('3'));
  });

  it('counts queued cost at once, and keeps the sum when the writer moves it to the rollups', async () => {
    const db = rollups('1');
    let now = T0;
    const t = createSpendTracker({ db: db as unknown as Db, now: () => now, refreshMs: 1_000 });
    t.queued('key_1', '2026-11-26', '0.5'); // no budget read yet for this key: not tracked
    expect(await t.spent('key_1', 'day')).toBe(usd('1'));
    t.queued('key_1', '2026-11-26', '0.25');
    t.queued('key_1', '2026-11-25', '9'); // an earlier period does not count
    t.queued('key_2', '2026-11-26', '9'); // another key neither
    expect(await t.spent('key_1', 'day')).toBe(usd('1.25'));
    t.written('key_1', '2026-11-26', '0.25');
    t.written('key_1', '2026-11-25', '9');
    t.written('key_2', '2026-11-26', '9');
    expect(await t.spent('key_1', 'day')).toBe(usd('1.25'));
    // The next read of the rollups (which now include it) keeps what is still pending only.
    t.queued('key_1', '2026-11-26', '0.1');
    db.total = '1.25';
    now += 1_001;
    expect(await t.spent('key_1', 'day')).toBe(usd('1.35'));
  });

  it("a new period starts from that period's rollups", async () => {
    const db = rollups('4');
    let now = T0;
    const t = createSpendTracker({ db: db as unknown as Db, now: () => now, refreshMs: 60_000 });
    await t.spent('key_1', 'day');
    t.queued('key_1', '2026-11-26', '1');
    expect(t.known('key_1', 'day')).toBe(usd('5'));
    now = Date.parse('2026-11-27T00:00:01Z');
    expect(t.known('key_1', 'day')).toBeUndefined();
    db.total = '0';
    expect(await t.spent('key_1', 'day')).toBe(0n);
    expect(db.reads).toBe(2);
  });

  it('settles a held reservation with the cost of its record, once', async () => {
    const db = rollups('0');
    const settled: bigint[] = [];
    const t = createSpendTracker({ db: db as unknown as Db, now: () => T0 });
    t.hold('req_1', async (units) => void settled.push(units), 60_000);
    t.hold('req_2', async (units) => void settled.push(units), 60_000);
    expect(t.holding()).toBe(2);
    t.queued('key_1', '2026-11-26', '0.75', 'req_1'); // settles even for a key not otherwise tracked
    t.queued('key_1', '2026-11-26', '0.75', 'req_1');
    t.queued('key_1', '2026-11-26', '0.5'); // no request id: nothing settled
    await t.settled();
    expect(settled).toEqual([usd('0.75')]);
    expect(t.holding()).toBe(1);
  });

  it('drops expired reservations when new ones are made; settled() waits for slow settles, errors included', async () => {
    let now = T0;
    const t = createSpendTracker({ db: rollups('0') as unknown as Db, now: () => now });
    t.hold('old', async () => {}, 100);
    now += 100;
    t.hold('new', async () => {}, 100);
    expect(t.holding()).toBe(1);
    let done = false;
    t.hold('slow', () => new Promise<void>((r) => setTimeout(() => ((done = true), r()), 20)), 1_000);
    t.hold(
      'bad',
      async () => {
        throw new Error('settle failed');
      },
      1_000,
    );
    t.queued('key_1', '2026-11-26', '1', 'slow');
    t.queued('key_1', '2026-11-26', '1', 'bad');
    await t.settled();
    expect(done).toBe(true);
    expect(t.format(usd('1.5'))).toBe('1.5');
  });
});
