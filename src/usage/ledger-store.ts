import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import type { UsageRecord } from './usage-record.js';

/** The ledger's columns, in insert order (also the raw-records CSV header). */
export const USAGE_COLUMNS = [
  'request_id',
  'created_at',
  'workspace_id',
  'key_id',
  'route',
  'model_requested',
  'model_served',
  'model',
  'thread_id',
  'stream',
  'status',
  'http_status',
  'error_code',
  'prompt_tokens',
  'completion_tokens',
  'cached_tokens',
  'reasoning_tokens',
  'cost_usd',
  'cost_source',
  'estimated',
  'latency_ms',
  'ttfb_ms',
  'generation_id',
  'provider',
] as const;

const COLUMNS = sql.raw(USAGE_COLUMNS.join(', '));

function row(r: UsageRecord) {
  return sql`(${r.requestId}, ${r.createdAt}::timestamptz, ${r.workspaceId}, ${r.keyId}, ${r.route}, ${r.modelRequested}, ${r.modelServed}, ${r.model}, ${r.threadId}, ${r.stream}, ${r.status}, ${r.httpStatus}, ${r.errorCode}, ${r.promptTokens}, ${r.completionTokens}, ${r.cachedTokens}, ${r.reasoningTokens}, ${r.costUsd}::numeric, ${r.costSource}, ${r.estimated}, ${r.latencyMs}, ${r.ttfbMs}, ${r.generationId}, ${r.provider})`;
}

const MAX_ROWS = 1_000;

/**
 * Inserts a batch of records and adds them to the daily rollups in one statement. Only rows that
 * were really inserted reach the rollups (the CTE returns them), so replaying a batch that already
 * landed changes nothing: the write is idempotent on request_id, totals included.
 */
export async function insertUsageBatch(db: Db, records: UsageRecord[]): Promise<number> {
  if (records.length === 0) return 0;
  // 24 parameters a row: keep each statement far below Postgres's 65,535-parameter limit.
  if (records.length > MAX_ROWS) {
    let inserted = 0;
    for (let i = 0; i < records.length; i += MAX_ROWS) inserted += await insertUsageBatch(db, records.slice(i, i + MAX_ROWS));
    return inserted;
  }
  // Duplicates inside one batch would make ON CONFLICT affect a row twice.
  const unique = [...new Map(records.map((r) => [r.requestId, r])).values()];
  const result = await db.execute(sql`
    with inserted as (
      insert into usage_records (${COLUMNS})
      values ${sql.join(unique.map(row), sql`, `)}
      on conflict (request_id) do nothing
      returning created_at, workspace_id, key_id, model, status, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_usd
    ),
    rolled as (
      insert into usage_daily as d (day, workspace_id, key_id, model, requests, errors, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_usd)
      select (created_at at time zone 'UTC')::date, workspace_id, key_id, model, count(*), count(*) filter (where status <> 'ok'),
             sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(reasoning_tokens), sum(cost_usd)
      from inserted
      group by 1, 2, 3, 4
      order by 1, 2, 3, 4
      on conflict (day, workspace_id, key_id, model) do update set
        requests = d.requests + excluded.requests,
        errors = d.errors + excluded.errors,
        prompt_tokens = d.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = d.completion_tokens + excluded.completion_tokens,
        cached_tokens = d.cached_tokens + excluded.cached_tokens,
        reasoning_tokens = d.reasoning_tokens + excluded.reasoning_tokens,
        cost_usd = d.cost_usd + excluded.cost_usd
      returning 1
    )
    select (select count(*) from inserted)::int as inserted
  `);
  const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as { inserted: number }[];
  return Number(rows[0]?.inserted ?? 0);
}
