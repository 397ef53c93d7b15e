import { mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
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
    const w = createBatchWriter({
      persist: store.persist,
      spillDir: mkdtempSync(join(tmpdir(), 'w-')),
      spillName: 's',
      logger,
      batchSize: 100,
    });
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
    const w = createBatchWriter({
      persist: store.persist,
      spillDir: dir,
      spillName: 'usage',
      logger,
      batchSize: 50,
      maxBuffered: 100,
      backoff: () => 5,
      lingerMs: 1,
    });
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
    const w = createBatchWriter({
      persist: store.persist,
      spillDir: mkdtempSync(join(tmpdir(), 'w-')),
      spillName: 's',
      logger,
      lingerMs: 10_000,
    });
    for (let i = 0; i < 10; i++) w.enqueue({ id: i });
    await w.close();
    expect(store.stored.size).toBe(10);
  });

  it('quarantines the one record the database refuses as data, and writes the rest of its batch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'w-'));
    const stored: number[] = [];
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => lines.push(l) });
    const persist = async (batch: { id: number; text: string }[]) => {
      // A refusal as Postgres gives it: SQLSTATE 22P05 (untranslatable character) for the whole statement.
      if (batch.some((r) => r.text.includes('\u0000')))
        throw Object.assign(new Error(`bad value in ${JSON.stringify(batch)}`), { code: '22P05' });
      stored.push(...batch.map((r) => r.id));
    };
    const w = createBatchWriter({
      persist,
      spillDir: dir,
      spillName: 'usage',
      logger: log,
      batchSize: 50,
      lingerMs: 1,
      describe: (r) => ({ id: r.id }),
    });
    for (let i = 0; i < 40; i++) w.enqueue({ id: i, text: i === 17 ? 'secret\u0000text' : `secret text ${i}` });
    await w.flush(2_000);
    for (let i = 40; i < 60; i++) w.enqueue({ id: i, text: `later ${i}` });
    await w.flush(2_000);
    expect(stored.sort((a, b) => a - b)).toEqual(Array.from({ length: 60 }, (_, i) => i).filter((i) => i !== 17));
    expect(w.stats()).toMatchObject({ quarantined: 1, lost: 0, pending: 0 });
    const dead = readFileSync(join(dir, 'usage.deadletter.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ error: { code: '22P05' }, record: { id: 17 } });
    // The log names the record and the code, never its content or the error's message.
    expect(lines.join('')).toContain('"code":"22P05"');
    expect(lines.join('')).not.toContain('secret');
  });

  it('retries, never quarantines, while the database is away (a connection error is not poison)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'w-'));
    let down = true;
    const stored: number[] = [];
    const persist = async (batch: { id: number }[]) => {
      if (down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      stored.push(...batch.map((r) => r.id));
    };
    const w = createBatchWriter({ persist, spillDir: dir, spillName: 'usage', logger, backoff: () => 5, lingerMs: 1 });
    for (let i = 0; i < 10; i++) w.enqueue({ id: i });
    await new Promise((r) => setTimeout(r, 60));
    expect(w.stats().failures).toBeGreaterThan(1);
    down = false;
    await w.flush(2_000);
    expect(stored.sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(w.stats().quarantined).toBe(0);
  });

  it('puts records on disk within spillAfterMs while the database hangs, and replays them once it answers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'w-'));
    let release!: () => void;
    let hung = true;
    const stored = new Set<number>();
    const persist = async (batch: { id: number }[]) => {
      if (hung) await new Promise<void>((r) => (release = r)); // accepts, never answers
      for (const r of batch) stored.add(r.id);
    };
    const w = createBatchWriter({ persist, spillDir: dir, spillName: 'usage', logger, lingerMs: 1, spillAfterMs: 200 });
    for (let i = 0; i < 30; i++) w.enqueue({ id: i });
    await new Promise((r) => setTimeout(r, 400));
    // Everything, the batch stuck in its insert included, is on disk: a SIGKILL now loses nothing.
    const onDisk = readFileSync(join(dir, 'usage.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).id);
    expect(onDisk.sort((a: number, b: number) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(w.stats().pending).toBe(0);
    hung = false;
    release();
    await w.flush(2_000);
    expect(stored.size).toBe(30);
    expect(readdirSync(dir)).toEqual([]);
  });

  // Root ignores permission bits, so "unwritable" is a directory path through a regular file
  // (ENOTDIR) and "full" is a spill file that is a link to /dev/full (ENOSPC).
  it.each([
    [
      'unwritable',
      (dir: string) => {
        writeFileSync(join(dir, 'file'), '');
        return join(dir, 'file', 'sub');
      },
    ],
    [
      'full',
      (dir: string) => {
        symlinkSync('/dev/full', join(dir, 'usage.jsonl'));
        return dir;
      },
    ],
  ] as const)(
    'with the database away and a %s spill directory: keeps serving, never throws, counts what it lost',
    async (_kind, prepare) => {
      const spillDir = prepare(mkdtempSync(join(tmpdir(), 'w-')));
      const lines: string[] = [];
      const log = pino({ level: 'info' }, { write: (l: string) => lines.push(l) });
      const persist = async () => {
        throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      };
      const w = createBatchWriter({ persist, spillDir, spillName: 'usage', logger: log, backoff: () => 5, lingerMs: 1, spillAfterMs: 50 });
      for (let i = 0; i < 25; i++) w.enqueue({ id: i });
      await new Promise((r) => setTimeout(r, 200));
      expect(w.stats()).toMatchObject({ diskFailing: true, pending: 25, lost: 0 });
      await expect(w.close(100)).resolves.toBeUndefined();
      expect(w.stats().lost).toBe(25);
      expect(() => w.enqueue({ id: 99 })).not.toThrow();
      expect(w.stats().lost).toBe(26);
      // One clear error for the disk, however many times it was tried.
      expect(lines.filter((l) => l.includes('cannot write the spill file'))).toHaveLength(1);
    },
  );
});
