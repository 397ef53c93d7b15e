import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createBatchWriter } from './ledger-writer.js';

const logger = pino({ level: 'silent' });

/** A persist target that can be taken down, and that remembers what it stored (idempotently). */
function fakeStore() {
  const stored = new Map<number, number>();
  let calls = 0;
  const store = {
    down: false,
    batchSizes: [] as number[],
    async persist(batch: { id: number }[]) {
      calls++;
      if (store.down) throw new Error('connection refused');
      store.batchSizes.push(batch.length);
      for (const r of batch) stored.set(r.id, (stored.get(r.id) ?? 0) + 1);
    },
    stored,
    calls: () => calls,
  };
  return store;
}

describe('batch writer', () => {
  it('batches a burst into multi-row writes', async () => {
    const store = fakeStore();
    const w = createBatchWriter({ persist: store.persist, spillDir: mkdtempSync(join(tmpdir(), 'w-')), spillName: 's', logger, batchSize: 100 });
    for (let i = 0; i < 1000; i++) w.enqueue({ id: i });
    await w.flush();
    expect(store.stored.size).toBe(1000);
    expect(store.batchSizes.every((n) => n <= 100)).toBe(true);
    expect(store.batchSizes.length).toBeLessThanOrEqual(12);
    expect(w.stats()).toMatchObject({ pending: 0, written: 1000 });
  });

  it('keeps retrying through an outage, spills past the memory bound, and replays: nothing lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'w-'));
    const store = fakeStore();
    store.down = true;
    const w = createBatchWriter({ persist: store.persist, spillDir: dir, spillName: 'usage', logger, batchSize: 50, maxBuffered: 100, backoff: () => 5, lingerMs: 1 });
    for (let i = 0; i < 300; i++) w.enqueue({ id: i });
    await new Promise((r) => setTimeout(r, 50));
    expect(store.calls()).toBeGreaterThan(1); // retried
    expect(w.stats().pending).toBe(100);
    expect(w.stats().spilled).toBe(200);
    expect(readdirSync(dir)).toEqual(['usage.jsonl']);
    store.down = false;
    await w.flush();
    expect(store.stored.size).toBe(300);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('spills at close when the database is away, and a new writer replays the file at start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'w-'));
    const first = fakeStore();
    first.down = true;
    const w1 = createBatchWriter({ persist: first.persist, spillDir: dir, spillName: 'usage', logger, backoff: () => 5 });
    for (let i = 0; i < 40; i++) w1.enqueue({ id: i });
    await w1.close(100);
    expect(first.stored.size).toBe(0);
    expect(readdirSync(dir)).toEqual(['usage.jsonl']);

    const second = fakeStore();
    const w2 = createBatchWriter({ persist: second.persist, spillDir: dir, spillName: 'usage', logger });
    w2.enqueue({ id: 1000 });
    await w2.flush();
    expect([...second.stored.keys()].sort((a, b) => a - b)).toEqual([...Array.from({ length: 40 }, (_, i) => i), 1000]);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('flushes everything on close when the database is up', async () => {
    const store = fakeStore();
    const w = createBatchWriter({ persist: store.persist, spillDir: mkdtempSync(join(tmpdir(), 'w-')), spillName: 's', logger, lingerMs: 10_000 });
    for (let i = 0; i < 10; i++) w.enqueue({ id: i });
    await w.close();
    expect(store.stored.size).toBe(10);
  });
});
