import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createBatchWriter } from './ledger-writer.js';

// The writer's timing (linger, backoff, spill deadline) on a fake clock: setTimeout, setInterval
// and Date.now all advance only when the test says so.
beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const dir = () => mkdtempSync(join(tmpdir(), 'wt-'));
function capture() {
  const lines: Record<string, any>[] = [];
  return { lines, logger: pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) }) };
}
function target() {
  const t = {
    batches: [] as number[][],
    down: false,
    hang: false,
    async persist(batch: { id: number }[]) {
      if (t.hang) await new Promise(() => {});
      if (t.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      t.batches.push(batch.map((r) => r.id));
    },
  };
  return t;
}
const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

describe('batch writer timing', () => {
  it('a partial batch waits 50 ms for company, then goes as one insert', async () => {
    const t = target();
    const w = createBatchWriter({ persist: t.persist, spillDir: dir(), spillName: 's', logger: capture().logger, spillAfterMs: 10_000 });
    for (let i = 0; i < 3; i++) w.enqueue({ id: i });
    await vi.advanceTimersByTimeAsync(49);
    expect(t.batches).toEqual([]);
    expect(w.stats().pending).toBe(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.batches).toEqual([[0, 1, 2]]);
    expect(w.stats()).toMatchObject({ pending: 0, written: 3, spilled: 0, failures: 0 });
  });

  it('writes a burst in batches of batchSize; the partial rest lingers again unless a flush waits', async () => {
    const t = target();
    const w = createBatchWriter({
      persist: t.persist,
      spillDir: dir(),
      spillName: 's',
      logger: capture().logger,
      batchSize: 10,
      lingerMs: 1_000,
      spillAfterMs: 60_000,
    });
    for (let i = 0; i < 15; i++) w.enqueue({ id: i });
    await vi.advanceTimersByTimeAsync(999);
    expect(t.batches).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.batches).toEqual([ids(0, 10)]);
    await vi.advanceTimersByTimeAsync(999);
    expect(t.batches).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.batches).toEqual([ids(0, 10), ids(10, 5)]);

    for (let i = 15; i < 40; i++) w.enqueue({ id: i });
    const flushed = w.flush();
    await vi.advanceTimersByTimeAsync(0);
    await flushed;
    expect(t.batches.slice(2)).toEqual([ids(15, 10), ids(25, 10), ids(35, 5)]);
  });

  it('a batch filled before any timer is armed goes at once', async () => {
    const t = target();
    const w = createBatchWriter({
      persist: t.persist,
      spillDir: dir(),
      spillName: 's',
      logger: capture().logger,
      batchSize: 1,
      lingerMs: 1_000,
      spillAfterMs: 60_000,
    });
    w.enqueue({ id: 1 });
    await vi.advanceTimersByTimeAsync(0);
    expect(t.batches).toEqual([[1]]);
  });

  it('flush resolves at once when nothing is queued, and rejects after its timeout while the database is away', async () => {
    const t = target();
    const w = createBatchWriter({
      persist: t.persist,
      spillDir: dir(),
      spillName: 's',
      logger: capture().logger,
      backoff: () => 100,
      spillAfterMs: 60_000,
    });
    await expect(w.flush()).resolves.toBeUndefined();
    t.down = true;
    w.enqueue({ id: 1 });
    const flushed = w.flush(1_000);
    const outcome = flushed.then(
      () => 'resolved',
      (e: Error) => e.message,
    );
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await outcome).toBe('flush timed out');
    expect(w.stats().pending).toBe(1);
  });

  it('retries with the given backoff, and logs the first failure and every 20th, not each one', async () => {
    const t = target();
    const { lines, logger } = capture();
    const backoffs: number[] = [];
    const w = createBatchWriter({
      persist: t.persist,
      spillDir: dir(),
      spillName: 'usage',
      logger,
      lingerMs: 1,
      spillAfterMs: 600_000,
      backoff: (n) => (backoffs.push(n), 10),
    });
    t.down = true;
    w.enqueue({ id: 1 });
    for (let i = 0; i < 45 && w.stats().failures < 40; i++) await vi.advanceTimersByTimeAsync(10);
    expect(w.stats().failures).toBe(40);
    expect(backoffs.slice(0, 3)).toEqual([1, 2, 3]);
    const warnings = lines.filter((l) => l.msg === 'usage: database write failed; retrying');
    expect(warnings.map((l) => l.failures)).toEqual([1, 20, 40]);
    expect(warnings[0]).toMatchObject({ code: 'ECONNREFUSED', pending: 1 });
    t.down = false;
    await vi.advanceTimersByTimeAsync(10);
    expect(t.batches).toEqual([[1]]);
    // A success resets the count: the next outage's first failure is logged again.
    t.down = true;
    w.enqueue({ id: 2 });
    await vi.advanceTimersByTimeAsync(1);
    expect(lines.filter((l) => l.msg === 'usage: database write failed; retrying').at(-1)).toMatchObject({ failures: 1 });
  });

  it('default backoff: 100 ms after the first failure, doubling', async () => {
    const t = target();
    const w = createBatchWriter({
      persist: t.persist,
      spillDir: dir(),
      spillName: 's',
      logger: capture().logger,
      lingerMs: 1,
      spillAfterMs: 600_000,
    });
    t.down = true;
    w.enqueue({ id: 1 });
    await vi.advanceTimersByTimeAsync(1);
    expect(w.stats().failures).toBe(1);
    await vi.advanceTimersByTimeAsync(99);
    expect(w.stats().failures).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(w.stats().failures).toBe(2);
    await vi.advanceTimersByTimeAsync(199);
    expect(w.stats().failures).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(w.stats().failures).toBe(3);
  });

  it('spills a record exactly when it has waited spillAfterMs, not before', async () => {
    const d = dir();
    const t = target();
    t.hang = true;
    const w = createBatchWriter({
      persist: t.persist,
      spillDir: d,
      spillName: 'usage',
      logger: capture().logger,
      lingerMs: 1,
      spillAfterMs: 400,
    });
    for (let i = 0; i < 5; i++) w.enqueue({ id: i });
    await vi.advanceTimersByTimeAsync(350); // the watchdog looks every 100 ms
    expect(readdirSync(d)).toEqual([]);
    expect(w.stats().pending).toBe(5);
    await vi.advanceTimersByTimeAsync(50);
    expect(
      readFileSync(join(d, 'usage.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).id),
    ).toEqual(ids(0, 5));
    expect(w.stats()).toMatchObject({ pending: 0, spilled: 5 });
    // Records queued later wait their own time.
    w.enqueue({ id: 5 });
    await vi.advanceTimersByTimeAsync(300);
    expect(w.stats().pending).toBe(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(w.stats()).toMatchObject({ pending: 0, spilled: 6 });
  });

  it('a disk that recovers is used again, and says so once', async () => {
    const base = dir();
    writeFileSync(join(base, 'blocker'), '');
    const spillDir = join(base, 'blocker', 'sub'); // through a regular file: ENOTDIR
    const t = target();
    t.down = true;
    const { lines, logger } = capture();
    const w = createBatchWriter({
      persist: t.persist,
      spillDir,
      spillName: 'usage',
      logger,
      lingerMs: 1,
      spillAfterMs: 40,
      backoff: () => 1_000,
    });
    w.enqueue({ id: 1 });
    await vi.advanceTimersByTimeAsync(100);
    expect(w.stats()).toMatchObject({ diskFailing: true, pending: 1, spilled: 0 });
    const refusal = lines.find((l) => /cannot write the spill file/.test(l.msg));
    expect(refusal).toMatchObject({ code: 'ENOTDIR', dir: spillDir, records: 1 });
    rmSync(join(base, 'blocker'));
    await vi.advanceTimersByTimeAsync(20);
    expect(w.stats()).toMatchObject({ diskFailing: false, pending: 0, spilled: 1 });
    expect(lines.filter((l) => l.msg === 'usage: spill file writable again')).toHaveLength(1);
    expect(readdirSync(spillDir)).toEqual(['usage.jsonl']);
  });

  it('past maxBuffered the newest go to disk, the oldest stay in memory and are written first', async () => {
    const d = dir();
    const t = target();
    t.down = true;
    const w = createBatchWriter({
      persist: t.persist,
      spillDir: d,
      spillName: 'usage',
      logger: capture().logger,
      lingerMs: 1,
      maxBuffered: 3,
      backoff: () => 10,
      spillAfterMs: 600_000,
    });
    for (let i = 0; i < 5; i++) w.enqueue({ id: i });
    expect(w.stats()).toMatchObject({ pending: 3, spilled: 2, lost: 0 });
    expect(
      readFileSync(join(d, 'usage.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).id),
    ).toEqual([3, 4]);
    t.down = false;
    const flushed = w.flush();
    await vi.advanceTimersByTimeAsync(20);
    await flushed;
    expect(t.batches).toEqual([
      [0, 1, 2],
      [3, 4],
    ]);
  });

  it('after close, a late record goes straight to disk', async () => {
    const d = dir();
    const t = target();
    const w = createBatchWriter({ persist: t.persist, spillDir: d, spillName: 'usage', logger: capture().logger });
    await w.close();
    w.enqueue({ id: 9 });
    expect(readFileSync(join(d, 'usage.jsonl'), 'utf8')).toBe('{"id":9}\n');
    expect(w.stats()).toMatchObject({ pending: 0, spilled: 1 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(t.batches).toEqual([]);
  });
});
