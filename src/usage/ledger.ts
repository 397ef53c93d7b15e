import type { Catalog } from '../catalog/catalog.js';
import type { Db } from '../db/client.js';
import type { RequestOutcome } from '../proxy/outcome.js';
import type { Logger } from '../telemetry/logger.js';
import { insertUsageBatch } from './ledger-store.js';
import { createBatchWriter, type WriterStats } from './ledger-writer.js';
import { createSpendTracker, type SpendTracker } from './spend-tracker.js';
import { toUsageRecord, type UsageRecord } from './usage-record.js';

export interface UsageLedger {
  enabled: boolean;
  /** Takes a request's outcome; never blocks, never throws. */
  record(outcome: RequestOutcome): void;
  spend: SpendTracker;
  flush(timeoutMs?: number): Promise<void>;
  close(timeoutMs?: number): Promise<void>;
  stats(): WriterStats;
}

/** The usage ledger: outcome → record → durable batched writer, plus spend for budgets. */
export function createUsageLedger(opts: {
  db: Db;
  catalog: Catalog;
  logger: Logger;
  dataDir: string;
  enabled: boolean;
  now: () => number;
  batchSize?: number;
  maxBuffered?: number;
  spillAfterMs?: number;
  onUnpriced?: (model: string, tokens: number) => void;
}): UsageLedger {
  const spend = createSpendTracker({ db: opts.db, now: opts.now });
  const writer = createBatchWriter<UsageRecord>({
    spillDir: opts.dataDir,
    spillName: 'usage-spill',
    logger: opts.logger,
    batchSize: opts.batchSize,
    maxBuffered: opts.maxBuffered,
    spillAfterMs: opts.spillAfterMs,
    describe: (r) => ({ request_id: r.requestId, workspace_id: r.workspaceId, key_id: r.keyId }),
    async persist(batch) {
      await insertUsageBatch(opts.db, batch);
      for (const r of batch) spend.written(r.keyId, r.createdAt.slice(0, 10), r.costUsd);
    },
  });
  let pendingPrices = 0;
  const warnedUnpriced = new Set<string>();
  /** Unpriced usage is recorded at $0: counted, and each such model named once in the log. */
  function noticeUnpriced(record: UsageRecord) {
    opts.onUnpriced?.(record.model, record.promptTokens + record.completionTokens);
    if (warnedUnpriced.has(record.model) || warnedUnpriced.size >= 1_000) return;
    warnedUnpriced.add(record.model);
    opts.logger.warn(
      { model: record.model.slice(0, 200), request_id: record.requestId },
      'usage without a price: neither the upstream nor the catalog gave a cost for this model; recorded at $0 (see unpriced_* in reports)',
    );
  }
  function enqueue(outcome: RequestOutcome) {
    let record: UsageRecord;
    try {
      record = toUsageRecord(outcome, (id) => opts.catalog.peek(id));
    } catch (err) {
      opts.logger.error({ err, request_id: outcome.requestId }, 'usage record could not be built');
      return;
    }
    spend.queued(record.keyId, record.createdAt.slice(0, 10), record.costUsd, record.requestId);
    writer.enqueue(record);
    if (record.costSource === 'none' && record.promptTokens + record.completionTokens > 0) noticeUnpriced(record);
  }
  async function waitForPrices(timeoutMs: number) {
    const until = Date.now() + timeoutMs;
    while (pendingPrices > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  }

  return {
    enabled: opts.enabled,
    record(outcome) {
      if (!opts.enabled) return;
      const needsPrices = !outcome.usage?.cost && !opts.catalog.isLoaded();
      if (!needsPrices) return enqueue(outcome);
      // Pricing needs the catalog: load it first (off the response path), then record regardless.
      pendingPrices++;
      opts.catalog
        .get()
        .catch(() => undefined)
        .finally(() => {
          pendingPrices--;
          enqueue(outcome);
        });
    },
    spend,
    async flush(t = 10_000) {
      await waitForPrices(t);
      await writer.flush(t);
    },
    async close(t = 5_000) {
      await waitForPrices(t);
      await writer.close(t);
    },
    stats: () => writer.stats(),
  };
}
