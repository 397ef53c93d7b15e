import type { Context } from 'hono';
import type { Config } from '../config.js';
import type { Database } from '../db/client.js';
import type { Catalog } from '../catalog/catalog.js';
import type { KeyStore } from '../keys/key-store.js';
import type { Caller, KeyVerifier } from '../keys/verify-key.js';
import type { OutcomeSink } from '../proxy/outcome.js';
import type { StreamRegistry } from '../proxy/stream-registry.js';
import type { Limiter } from '../limits/limiter.js';
import type { KeyEvents } from '../keys/key-events.js';
import type { RedisConnection } from '../redis/connect.js';
import type { UpstreamClient } from '../proxy/upstream-client.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { RequestLog } from '../telemetry/request-log.js';
import type { UsageLedger } from '../usage/ledger.js';
import type { MemoryService } from '../memory/memory-service.js';
import type { ThreadStore } from '../memory/thread-store.js';
import type { ResponseStore } from '../responses/response-store.js';
import type { Summarizer } from '../memory/summarizer.js';
import type { Embedder } from '../memory/embedder.js';

/** Everything the app needs, handed in by main.ts or a test (no module-level singletons). */
export interface AppDeps {
  config: Config;
  database: Database;
  keys: KeyStore;
  verifier: KeyVerifier;
  upstream: UpstreamClient;
  catalog: Catalog;
  logger: Logger;
  /** Wall clock in ms (tests may freeze it). */
  now: () => number;
  /** Every proxied request's outcome goes here exactly once (ledger, memory, tests). */
  onOutcome: OutcomeSink;
  usage: UsageLedger;
  memory: MemoryService;
  threads: ThreadStore;
  /** Stored Responses API calls (their items are thread items). */
  responses: ResponseStore;
  /** Present when MEMORY_SUMMARY_MODEL is set. */
  summarizer?: Summarizer;
  /** Present when MEMORY_EMBEDDING_MODEL is set. */
  embedder?: Embedder;
  streams: StreamRegistry;
  limiter: Limiter;
  keyEvents: KeyEvents;
  /** Present when REDIS_URL is set. */
  redis?: RedisConnection;
  /** Prometheus metrics (`GET /metrics`). */
  metrics: Metrics;
  /** One access-log line and metrics sample per request (joins the HTTP side and the outcome). */
  requestLog: RequestLog;
  /** A per-process secret the local CLI may use as an admin token (see keys/cli-lock). */
  localAdminToken?: string;
}

export interface AppEnv {
  Variables: {
    /** The gateway's own id for this request (record key, item ids, logs). */
    requestId: string;
    /** The client's `x-request-id`, when sane: correlation only. */
    clientRequestId: string | undefined;
    caller: Caller;
    startedAt: number;
    logFields: Record<string, unknown>;
    /** Headers the gateway adds to the response (see routes/response-headers.ts). */
    resHeaders: Record<string, string>;
    /** Set once the request's outcome went to the ledger (see middleware/record-rejections.ts). */
    outcomeEmitted?: boolean;
    /** Set when the response is an SSE stream (possibly written to Node directly). */
    streamed?: boolean;
  };
}

export type AppContext = Context<AppEnv>;
