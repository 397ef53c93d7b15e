import { bigint, boolean, date, index, integer, numeric, pgTable, primaryKey, real, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * One row per request that reached a proxied route, written once (idempotent on request_id).
 * Money is numeric, never a float: sums must reconcile to the cent and beyond.
 */
export const usageRecords = pgTable(
  'usage_records',
  {
    /** The gateway's own id for the request (never the client's: see client_request_id). */
    requestId: text('request_id').primaryKey(),
    /** The client's `x-request-id`, when it sent a sane one: kept for correlation only, never a key. */
    clientRequestId: text('client_request_id'),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
    workspaceId: text('workspace_id').notNull(),
    keyId: text('key_id').notNull(),
    route: text('route').notNull(),
    modelRequested: text('model_requested'),
    modelServed: text('model_served'),
    /** The model rollups and reports group by: served when known, else requested. */
    model: text('model').notNull(),
    threadId: text('thread_id'),
    stream: boolean('stream').notNull(),
    status: text('status').notNull(),
    httpStatus: integer('http_status').notNull(),
    errorCode: text('error_code'),
    promptTokens: integer('prompt_tokens').notNull(),
    completionTokens: integer('completion_tokens').notNull(),
    cachedTokens: integer('cached_tokens').notNull(),
    reasoningTokens: integer('reasoning_tokens').notNull(),
    costUsd: numeric('cost_usd', { precision: 20, scale: 10 }).notNull(),
    /** upstream (usage.cost), catalog (price × tokens), or none. */
    costSource: text('cost_source').notNull(),
    /** Tokens counted by the gateway's tokenizer (no upstream usage, e.g. a client abort). */
    estimated: boolean('estimated').notNull(),
    latencyMs: real('latency_ms').notNull(),
    ttfbMs: real('ttfb_ms'),
    generationId: text('generation_id'),
    provider: text('provider'),
  },
  (t) => [
    index('usage_records_created_idx').on(t.createdAt.desc(), t.requestId.desc()),
    index('usage_records_ws_created_idx').on(t.workspaceId, t.createdAt.desc()),
    index('usage_records_key_created_idx').on(t.keyId, t.createdAt.desc()),
  ],
);

/** Daily totals per workspace, key and model, kept in step with usage_records by the writer. */
export const usageDaily = pgTable(
  'usage_daily',
  {
    day: date('day', { mode: 'string' }).notNull(),
    workspaceId: text('workspace_id').notNull(),
    keyId: text('key_id').notNull(),
    model: text('model').notNull(),
    requests: bigint('requests', { mode: 'number' }).notNull(),
    errors: bigint('errors', { mode: 'number' }).notNull(),
    promptTokens: bigint('prompt_tokens', { mode: 'number' }).notNull(),
    completionTokens: bigint('completion_tokens', { mode: 'number' }).notNull(),
    cachedTokens: bigint('cached_tokens', { mode: 'number' }).notNull(),
    reasoningTokens: bigint('reasoning_tokens', { mode: 'number' }).notNull(),
    costUsd: numeric('cost_usd', { precision: 24, scale: 10 }).notNull(),
    /** Requests with tokens but no price (no upstream cost, no catalog price): recorded at $0. */
    unpricedRequests: bigint('unpriced_requests', { mode: 'number' }).notNull().default(0),
    unpricedPromptTokens: bigint('unpriced_prompt_tokens', { mode: 'number' }).notNull().default(0),
    unpricedCompletionTokens: bigint('unpriced_completion_tokens', { mode: 'number' }).notNull().default(0),
  },
  (t) => [
    primaryKey({ columns: [t.day, t.workspaceId, t.keyId, t.model] }),
    index('usage_daily_ws_day_idx').on(t.workspaceId, t.day),
    index('usage_daily_key_day_idx').on(t.keyId, t.day),
  ],
);
