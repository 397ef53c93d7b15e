import type { Logger } from '../telemetry/logger.js';
import { describeDbError, isPoisonError } from '../db/db-errors.js';
import { createSpillFiles } from './spill-file.js';

export interface BatchWriterOptions<T> {
  /** Writes a batch; must be idempotent (a batch may be retried, or replayed after an unseen success). */
  persist(batch: T[]): Promise<unknown>;
  spillDir: string;
  spillName: string;
  logger: Logger;
  batchSize?: number;
  /** Records held in memory while the database is away; beyond this they go to the spill file. */
  maxBuffered?: number;
  /** How long a partial batch may wait for company, so a stream of requests shares inserts. */
  lingerMs?: number;
  /**
   * A record still not written this long after it was queued is moved to the spill file (with
   * everything queued behind it), so a crash while the database is slow or down loses at most
   * this window (plus one check interval, a quarter of it).
   */
  spillAfterMs?: number;
  backoff?: (failures: number) => number;
  /** What identifies a record in a log line (ids only, never content). */
  describe?: (record: T) => Record<string, unknown>;
  now?: () => number;
}

export interface WriterStats {
  pending: number;
  written: number;
  spilled: number;
  failures: number;
  /** Records the database refused as data (poison), kept in the dead-letter file instead. */
  quarantined: number;
  /** Records that could be kept neither in the database nor on disk. */
  lost: number;
  /** The spill directory cannot be written: records wait in memory only. */
  diskFailing: boolean;
}

const defaultBackoff = (n: number) => Math.min(5_000, 50 * 2 ** Math.min(n, 10));

/**
 * A durable, batched background writer. `enqueue` never blocks or throws; batches are written
 * after the response.
 *
 * - While the database is slow or away it retries with backoff; any record not written within
 *   `spillAfterMs` is appended to a spill file (synchronously, so it is on disk before we go on),
 *   and spill files are replayed once the database answers again (and at the next start). Replays
 *   may repeat a write that did land: persist is idempotent.
 * - A record the database refuses as data (a poison value: SQLSTATE class 22/23, or a record the
 *   code cannot even encode) never blocks the queue: the failing batch is split until the bad
 *   record is alone, that record goes to `<name>.deadletter.jsonl` and is counted; the rest flow.
 * - An unwritable or full spill directory never throws: records stay in memory (up to
 *   `maxBuffered`), one clear error is logged, `diskFailing` is reported, and every record that
 *   ends up kept nowhere is counted in `lost`.
 */
export function createBatchWriter<T>(opts: BatchWriterOptions<T>) {
  const batchSize = opts.batchSize ?? 500;
  const maxBuffered = opts.maxBuffered ?? 20_000;
  const linger = opts.lingerMs ?? 50;
  const spillAfter = opts.spillAfterMs ?? 500;
  const backoff = opts.backoff ?? defaultBackoff;
  const now = opts.now ?? Date.now;
  const describe = opts.describe ?? (() => ({}));
  const spill = createSpillFiles<T>(opts.spillDir, opts.spillName);
  const name = opts.spillName;

  // Records in memory only (not on disk), oldest first, with the time each was queued.
  let queue: T[] = [];
  let queuedAt: number[] = [];
  // The batch being written: taken off the queue while its insert runs.
  let inflight: T[] | null = null;
  let inflightAt = 0;
  let inflightOnDisk = false;
  let running = false;
  let timer: NodeJS.Timeout | null = null;
  let watchdog: NodeJS.Timeout | null = null;
  let failures = 0;
  let closed = false;
  let replayNeeded = safe(() => spill.hasPending(), false);
  const stats = { written: 0, spilled: 0, failures: 0, quarantined: 0, lost: 0 };
  let diskFailing = false;
  let idleWaiters: (() => void)[] = [];

  function safe<R>(fn: () => R, fallback: R): R {
    try {
      return fn();
    } catch {
      return fallback;
    }
  }

  /** Appends records to the spill file; false (and one logged error per episode) when the disk refuses. */
  function toDisk(records: T[]): boolean {
    if (records.length === 0) return true;
    try {
      spill.append(records);
    } catch (err) {
      if (!diskFailing) {
        opts.logger.error(
          { code: (err as NodeJS.ErrnoException).code ?? 'unknown', dir: opts.spillDir, records: records.length },
          `${name}: cannot write the spill file; records wait in memory only and are lost if the process dies`,
        );
      }
      diskFailing = true;
      return false;
    }
    if (diskFailing) opts.logger.warn({ dir: opts.spillDir }, `${name}: spill file writable again`);
    diskFailing = false;
    stats.spilled += records.length;
    replayNeeded = true;
    return true;
  }

  function lose(n: number, why: string) {
    if (n <= 0) return;
    stats.lost += n;
    opts.logger.error({ records: n, lost_total: stats.lost }, `${name}: records lost (${why})`);
  }

  function schedule(delay: number) {
    if (timer || running) return;
    timer = setTimeout(() => {
      timer = null;
      void drain();
    }, delay);
  }

  /** Moves every record not yet written (and not on disk) to the spill file, if they are too old. */
  function spillStale() {
    const oldest = inflight && !inflightOnDisk ? Math.min(inflightAt, queuedAt[0] ?? Infinity) : queuedAt[0];
    if (oldest === undefined || now() - oldest < spillAfter) return;
    const pendingInflight = inflight && !inflightOnDisk ? inflight : [];
    if (!toDisk(pendingInflight.length ? pendingInflight.concat(queue) : queue)) return;
    if (pendingInflight.length) inflightOnDisk = true;
    queue = [];
    queuedAt = [];
  }

  function armWatchdog() {
    if (watchdog || closed) return;
    watchdog = setInterval(
      () => {
        spillStale();
        if (queue.length === 0 && (!inflight || inflightOnDisk)) {
          clearInterval(watchdog!);
          watchdog = null;
        }
      },
      Math.max(10, Math.floor(spillAfter / 4)),
    );
    watchdog.unref();
  }

  async function quarantine(record: T, err: unknown) {
    stats.quarantined++;
    const info = describeDbError(err);
    opts.logger.error(
      { ...describe(record), ...info, quarantined_total: stats.quarantined },
      `${name}: record refused by the database; quarantined`,
    );
    try {
      spill.deadLetter({ at: new Date(now()).toISOString(), error: info, record });
    } catch {
      lose(1, 'dead-letter file not writable');
    }
  }

  /**
   * Persists a batch; a poison error splits it until the bad records are alone and quarantined.
   * Any other error (the database away, a timeout) is thrown for the caller to retry.
   */
  async function persistSorting(batch: T[]): Promise<void> {
    try {
      await opts.persist(batch);
      stats.written += batch.length;
    } catch (err) {
      if (!isPoisonError(err)) throw err;
      if (batch.length === 1) return quarantine(batch[0], err);
      const half = Math.ceil(batch.length / 2);
      await persistSorting(batch.slice(0, half));
      await persistSorting(batch.slice(half));
    }
  }

  async function drain() {
    if (running) return;
    running = true;
    try {
      while (queue.length > 0 || replayNeeded) {
        if (queue.length > 0) {
          const n = Math.min(batchSize, queue.length);
          inflight = queue.slice(0, n);
          inflightAt = queuedAt[0];
          inflightOnDisk = false;
          queue = queue.slice(n);
          queuedAt = queuedAt.slice(n);
          try {
            await persistSorting(inflight);
          } catch (err) {
            // Back to the front of the queue, unless the watchdog already put it on disk.
            if (!inflightOnDisk) {
              queue = inflight.concat(queue);
              queuedAt = new Array<number>(inflight.length).fill(inflightAt).concat(queuedAt);
            }
            throw err;
          } finally {
            inflight = null;
          }
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
        opts.logger.warn({ ...describeDbError(err), pending: queue.length, failures }, `${name}: database write failed; retrying`);
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
      for (let i = 0; i < records.length; i += batchSize) await persistSorting(records.slice(i, i + batchSize));
      spill.remove(path);
      opts.logger.info({ records: records.length }, `${name}: replayed spilled records`);
    }
    replayNeeded = false;
  }

  // Records spilled by an earlier run are replayed as soon as the database answers.
  if (replayNeeded) schedule(0);

  return {
    enqueue(record: T): void {
      if (closed) {
        if (!toDisk([record])) lose(1, 'arrived after shutdown with the spill file not writable');
        return;
      }
      queue.push(record);
      queuedAt.push(now());
      if (queue.length > maxBuffered) {
        // Keep the oldest in memory (they go first); move the overflow to disk, never drop it
        // while the disk takes it.
        const overflow = queue.splice(maxBuffered);
        queuedAt.splice(maxBuffered);
        if (!toDisk(overflow)) lose(overflow.length, 'memory bound reached with the spill file not writable');
      }
      armWatchdog();
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

    /** Flushes within the deadline, then spills whatever could not be written. Never throws. */
    async close(timeoutMs = 5_000): Promise<void> {
      try {
        await this.flush(timeoutMs);
      } catch {
        // the database is away: the spill file keeps the rest for the next start
      }
      closed = true;
      if (timer) clearTimeout(timer);
      if (watchdog) clearInterval(watchdog);
      timer = watchdog = null;
      const left = inflight && !inflightOnDisk ? inflight.concat(queue) : queue;
      if (left.length > 0) {
        if (toDisk(left)) opts.logger.warn({ records: left.length }, `${name}: database unavailable at shutdown; spilled to disk`);
        else lose(left.length, 'shutdown with the database away and the spill file not writable');
        queue = [];
        queuedAt = [];
        if (inflight) inflightOnDisk = true;
      }
    },

    stats(): WriterStats {
      return { pending: queue.length + (inflight && !inflightOnDisk ? inflight.length : 0), ...stats, diskFailing };
    },
  };
}

export type BatchWriter<T> = ReturnType<typeof createBatchWriter<T>>;
