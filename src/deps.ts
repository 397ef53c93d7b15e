import type { Config } from './config.js';
import { createCatalog } from './catalog/catalog.js';
import { openDatabase, type Database } from './db/client.js';
import { createKeyStore } from './keys/key-store.js';
import { createKeyVerifier } from './keys/verify-key.js';
import type { OutcomeSink } from './proxy/outcome.js';
import { createStreamRegistry } from './proxy/stream-registry.js';
import { createUpstreamClient } from './proxy/upstream-client.js';
import type { AppDeps } from './routes/context.js';
import type { Logger } from './telemetry/logger.js';
import { createMetrics } from './telemetry/metrics.js';
import { createRequestLog, timeUpstream } from './telemetry/request-log.js';
import { createUsageLedger } from './usage/ledger.js';
import { createKeyEvents } from './keys/key-events.js';
import { createFallbackLimiter } from './limits/fallback-limiter.js';
import { createMemoryLimiter } from './limits/memory-limiter.js';
import { createRedisLimiter } from './limits/redis-limiter.js';
import { connectRedis, type RedisConnection } from './redis/connect.js';
import type { CatalogSnapshot, SharedCatalogStore } from './catalog/catalog.js';
import { unpricedModels } from './usage/reports.js';
import { createMemoryService } from './memory/memory-service.js';
import { createThreadStore } from './memory/thread-store.js';
import { createSummarizer } from './memory/summarizer.js';
import { createSummaryClient } from './memory/summary-client.js';
import { createResponseStore } from './responses/response-store.js';
import { createEmbedder } from './memory/embedder.js';

export interface OpenDepsOptions {
  logger: Logger;
  database?: Database;
  onOutcome?: OutcomeSink;
  now?: () => number;
  localAdminToken?: string;
  backoffMs?: (attempt: number) => number;
}

/** Opens what the app needs, chosen in this one place (Postgres or PGlite, etc.). */
export async function openDeps(config: Config, opts: OpenDepsOptions): Promise<AppDeps & { close(): Promise<void> }> {
  const now = opts.now ?? Date.now;
  const database =
    opts.database ??
    (await openDatabase(config.databaseUrl ? { url: config.databaseUrl } : { dataDir: config.dataDir }, {
      statementTimeoutMs: config.databaseStatementTimeoutMs,
      connectTimeoutMs: config.databaseConnectTimeoutMs,
    }));
  const keys = createKeyStore(database.db);
  // Metrics: model labels are only catalog models (once the catalog is loaded), capped in number.
  const metrics = createMetrics({ knownModel: (id) => !catalog.isLoaded() || catalog.peek(id) !== undefined });
  const requestLog = createRequestLog({ logger: opts.logger, metrics });
  const upstream = timeUpstream(
    createUpstreamClient({
      baseUrl: config.openrouterBaseUrl,
      apiKey: config.openrouterApiKey,
      headersTimeoutMs: config.upstreamTimeoutMs,
      idleTimeoutMs: config.upstreamIdleTimeoutMs,
      maxRetries: config.upstreamMaxRetries,
      connectTimeoutMs: config.upstreamConnectTimeoutMs,
      maxConnections: config.upstreamMaxConnections,
      queueTimeoutMs: config.upstreamQueueTimeoutMs,
      retryBudgetRatio: config.upstreamRetryBudgetPercent / 100,
      backoffMs: opts.backoffMs,
      logger: opts.logger,
    }),
    (requestId, headersAt) => requestLog.upstreamAnswered(requestId, headersAt),
  );
  const redis = config.redisUrl
    ? await connectRedis({
        url: config.redisUrl,
        prefix: config.redisKeyPrefix,
        logger: opts.logger,
        commandTimeoutMs: config.redisCommandTimeoutMs,
      })
    : undefined;
  const catalog = createCatalog({
    upstream,
    now,
    shared: redis ? sharedCatalogStore(redis) : undefined,
    onLoaded: (snapshot) => warnUnpricedModels(database, snapshot, now, opts.logger),
  });
  const verifier = createKeyVerifier({ store: keys, now, ttlMs: config.keyCacheTtlMs });
  const keyEvents = await createKeyEvents({ verifier, redis, logger: opts.logger });
  const limiter = redis
    ? createFallbackLimiter({
        primary: createRedisLimiter(redis),
        fallback: createMemoryLimiter(now),
        logger: opts.logger,
        onFallback: (reason) => metrics.limiterFallback(reason),
      })
    : createMemoryLimiter(now);
  const usage = createUsageLedger({
    db: database.db,
    catalog,
    logger: opts.logger,
    dataDir: config.dataDir,
    enabled: config.usageEnabled,
    now,
    onUnpriced: (model, tokens) => metrics.recordUnpriced(model, tokens),
  });
  const threads = createThreadStore(database.db, {
    embed: !!config.memoryEmbeddingModel,
    vectors: database.vectors,
    indexCacheBytes: config.memoryIndexCacheMb * 1024 * 1024,
  });
  // Vector retrieval (MEMORY_EMBEDDING_MODEL): items are embedded off the request path, once across instances.
  const embedder = config.memoryEmbeddingModel
    ? createEmbedder({
        db: database.db,
        vectors: database.vectors,
        upstream,
        model: config.memoryEmbeddingModel,
        dimensions: config.memoryEmbeddingDimensions,
        record: (o) => usage.record(o),
        logger: opts.logger,
        now,
      })
    : undefined;
  const summarizer = config.memorySummaryModel
    ? createSummarizer({
        store: threads,
        logger: opts.logger,
        budgetTokens: config.memoryDefaultMaxTokens,
        complete: createSummaryClient({
          upstream,
          model: config.memorySummaryModel,
          record: (o) => usage.record(o),
          now,
          timeoutMs: 120_000,
        }),
      })
    : undefined;
  const memory = createMemoryService({
    onStored: summarizer ? (ws, thread, budget) => summarizer.consider(ws, thread, budget) : undefined,
    store: threads,
    catalog,
    logger: opts.logger,
    dataDir: config.dataDir,
    defaultMaxTokens: config.memoryDefaultMaxTokens,
    redactEmails: config.memoryRedactEmails,
    maxReplyBytes: config.memoryMaxReplyBytes,
    maxInlineBytes: config.memoryMaxInlineBytes,
    retrievalShare: config.memoryRetrievalShare,
    embedder,
  });
  embedder?.start();
  const streams = createStreamRegistry();
  metrics.observeGauges({
    openStreams: () => streams.size,
    usageBacklog: () => usage.stats().pending,
    memoryBacklog: () => memory.stats().pending,
    writers: () => ({ usage: usage.stats(), memory: memory.stats() }),
    upstream: () => upstream.stats(),
  });
  const extraSink = opts.onOutcome;
  return {
    config,
    database,
    keys,
    verifier,
    upstream,
    catalog,
    logger: opts.logger,
    now,
    usage,
    limiter,
    keyEvents,
    redis,
    streams,
    metrics,
    requestLog,
    memory,
    threads,
    responses: createResponseStore(database.db, threads, {
      redact: { emails: config.memoryRedactEmails },
      maxInlineBytes: config.memoryMaxInlineBytes,
    }),
    summarizer,
    onOutcome: (outcome) => {
      usage.record(outcome);
      requestLog.outcome(outcome);
      if (outcome.usage)
        metrics.recordUsage({
          model: outcome.requestedModel,
          promptTokens: outcome.usage.promptTokens,
          completionTokens: outcome.usage.completionTokens,
          costUsd: outcome.usage.cost,
        });
      if (outcome.memory) memory.record(outcome, outcome.memory);
      extraSink?.(outcome);
    },
    localAdminToken: opts.localAdminToken,
    embedder,
    async close() {
      await embedder?.stop();
      await Promise.all([usage.close(5_000), memory.close(5_000)]);
      await upstream.close().catch(() => {});
      await redis?.close();
      if (!opts.database) await database.close();
      await metrics.shutdown().catch(() => {});
    },
  };
}

/**
 * At start and at each catalog refresh: names the models that had usage without a price in the
 * last 30 days and still have no catalog price, so finance is not surprised by $0 rows.
 */
function warnUnpricedModels(database: Database, snapshot: CatalogSnapshot, now: () => number, logger: Logger) {
  const since = new Date(now() - 30 * 86_400_000).toISOString().slice(0, 10);
  unpricedModels(database.db, since)
    .then((rows) => {
      const missing = rows.filter((r) => {
        const info = snapshot.byId.get(r.model);
        return !info || info.promptPrice === null || info.completionPrice === null;
      });
      if (missing.length) {
        logger.warn(
          { models: missing.map((r) => r.model.slice(0, 200)), unpriced_requests: missing.reduce((n, r) => n + r.requests, 0), since },
          'models in use without a price: their usage is recorded at $0 (see unpriced_* in /admin/usage)',
        );
      }
    })
    .catch(() => {
      // the database may be away at start; the next refresh tries again
    });
}

/** The model catalog shared through Redis, so several instances fetch it once. */
function sharedCatalogStore(redis: RedisConnection): SharedCatalogStore {
  return {
    get: async () => (await redis.command(['GET', redis.key('catalog')])) as string | null,
    set: async (json, ttlMs) => {
      await redis.command(['SET', redis.key('catalog'), json, 'PX', String(ttlMs)]);
    },
    claim: async () => (await redis.command(['SET', redis.key('catalog:lock'), String(process.pid), 'NX', 'PX', '15000'])) === 'OK',
  };
}
