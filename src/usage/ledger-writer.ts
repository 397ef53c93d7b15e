import type { Logger } from '../telemetry/logger.js';
import { createSpillFiles } from './spill-file.js';

export interface BatchWriterOptions<T> {
  /** Writes a batch; must be idempotent (a batch may be retried after an unseen success). */
  persist(batch: T[]): Promise<unknown>;
  spillDir: string;
  spillName: string;
  logger: Logger;
  batchSize?: number;
  /** Records held in memory while the database is away; beyond this they go to the spill file. */
  maxBuffered?: number;
  /** How long a partial batch may wait for company, so a stream of requests shares inserts. */
  lingerMs?: number;
  backoff?: (failures: number) => number;
}

export interface WriterStats {
  pending: number;
  written: number;
  spilled: number;
  failures: number;
}

const defaultBackoff = (n: number) => Math.min(5_000, 50 * 2 ** Math.min(n, 10));

/**
 * A durable, batched background writer. `enqueue` never blocks or throws; batches are written
 * after the response. While the database is away it retries with backoff, holds up to
 * `maxBuffered` records in memory and appends the rest to a spill file, which is replayed once the
 * database answers again (and at the next start). `close` flushes, or spills what it cannot write.
 */
export function createBatchWriter<T>(opts: BatchWriterOptions<T>) {
  const batchSize = opts.batchSize ?? 500;
  const maxBuffered = opts.maxBuffered ?? 20_000;
  const linger = opts.lingerMs ?? 50;
  const backoff = opts.backoff ?? defaultBackoff;
  const spill = createSpillFiles<T>(opts.spillDir, opts.spillName);
  let queue: T[] = [];
  let running = false;
  let timer: NodeJS.Timeout | null = null;
  let failures = 0;
  let closed = false;
  let replayNeeded = spill.hasPending();
  const stats = { written: 0, spilled: 0, failures: 0 };
  let idleWaiters: (() => void)[] = [];

  function schedule(delay: number) {
    if (timer || running) return;
    timer = setTimeout(() => {
      timer = null;
      void drain();
    }, delay);
  }

  async function drain() {
    if (running) return;
    running = true;
    try {
      while (queue.length > 0 || replayNeeded) {
        if (queue.length > 0) {
          const batch = queue.slice(0, batchSize);
          await opts.persist(batch);
          queue = queue.slice(batch.length);
          stats.written += batch.length;
          // Let a partial batch fill for a moment (unless someone waits for a flush): one insert
          // per few requests costs far more CPU than one per batch.
          if (queue.length > 0 && queue.length < batchSize && idleWaiters.length === 0 && !closed) {
            failures = 0;
            running = false;
            schedule(linger);
            return;
          }
        } else {
          await replaySpilled();
        }
        failures = 0;
      }
    } catch (err) {
      failures++;
      stats.failures++;
      if (failures === 1 || failures % 20 === 0) {
        opts.logger.warn({ err: (err as Error).message, pending: queue.length, failures }, `${opts.spillName}: database write failed; retrying`);
      }
      running = false;
      if (!closed) schedule(backoff(failures));
      return;
    }
    running = false;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  }

  async function replaySpilled() {
    for (const path of spill.claim()) {
      const records = spill.read(path);
      for (let i = 0; i < records.length; i += batchSize) await opts.persist(records.slice(i, i + batchSize));
      spill.remove(path);
      stats.written += records.length;
      opts.logger.info({ records: records.length }, `${opts.spillName}: replayed spilled records`);
    }
    replayNeeded = false;
  }

  // Records spilled by an earlier run are replayed as soon as the database answers.
  if (replayNeeded) schedule(0);

  return {
    enqueue(record: T): void {
      if (closed) {
        spill.append([record]);
        stats.spilled++;
        return;
      }
      queue.push(record);
      if (queue.length > maxBuffered) {
        // Keep the oldest in memory (they go first); move the overflow to disk, never drop it.
        const overflow = queue.splice(maxBuffered);
        spill.append(overflow);
        stats.spilled += overflow.length;
        replayNeeded = true;
      }
      if (!running) schedule(queue.length >= batchSize ? 0 : linger);
    },

    /** Resolves once everything queued (and spilled) so far is written; rejects after timeoutMs. */
    flush(timeoutMs = 10_000): Promise<void> {
      if (queue.length === 0 && !replayNeeded && !running) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('flush timed out')), timeoutMs);
        idleWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
        if (timer) {
          clearTimeout(timer);
          timer = null;
        }
        if (!running) void drain();
      });
    },

    /** Flushes within the deadline, then spills whatever could not be written. */
    async close(timeoutMs = 5_000): Promise<void> {
      try {
        await this.flush(timeoutMs);
      } catch {
        // the database is away: the spill file keeps the rest for the next start
      }
      closed = true;
      if (timer) clearTimeout(timer);
      if (queue.length > 0) {
        spill.append(queue);
        stats.spilled += queue.length;
        opts.logger.warn({ records: queue.length }, `${opts.spillName}: database unavailable at shutdown; spilled to disk`);
        queue = [];
      }
    },

    stats(): WriterStats {
      return { pending: queue.length, ...stats };
    },
  };
}

export type BatchWriter<T> = ReturnType<typeof createBatchWriter<T>>;
