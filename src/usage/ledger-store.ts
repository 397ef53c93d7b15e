import type { Db } from '../db/client.js';
import { runRaw } from '../db/raw.js';
import { storableText } from '../db/storable.js';
import type { UsageRecord } from './usage-record.js';

type Value = string | number | boolean | null;

/** The ledger's columns in insert order: name, Postgres type, and the value in a record. */
const COLUMNS: readonly [string, string, (r: UsageRecord) => Value][] = [
  ['request_id', 'text', (r) => r.requestId],
  ['client_request_id', 'text', (r) => r.clientRequestId ?? null],
  ['created_at', 'timestamptz', (r) => r.createdAt],
  ['workspace_id', 'text', (r) => r.workspaceId],
  ['key_id', 'text', (r) => r.keyId],
  ['route', 'text', (r) => r.route],
  ['model_requested', 'text', (r) => r.modelRequested],
  ['model_served', 'text', (r) => r.modelServed],
  ['model', 'text', (r) => r.model],
  ['thread_id', 'text', (r) => r.threadId],
  ['stream', 'boolean', (r) => r.stream],
  ['status', 'text', (r) => r.status],
  ['http_status', 'int', (r) => r.httpStatus],
  ['error_code', 'text', (r) => r.errorCode],
  ['prompt_tokens', 'int', (r) => r.promptTokens],
  ['completion_tokens', 'int', (r) => r.completionTokens],
  ['cached_tokens', 'int', (r) => r.cachedTokens],
  ['reasoning_tokens', 'int', (r) => r.reasoningTokens],
  ['cost_usd', 'numeric', (r) => r.costUsd],
  ['cost_source', 'text', (r) => r.costSource],
  ['estimated', 'boolean', (r) => r.estimated],
  ['latency_ms', 'real', (r) => r.latencyMs],
  ['ttfb_ms', 'real', (r) => r.ttfbMs],
  ['generation_id', 'text', (r) => r.generationId],
  ['provider', 'text', (r) => r.provider],
];

/** The ledger's column names, in insert order (also the raw-records CSV header). */
export const USAGE_COLUMNS: readonly string[] = COLUMNS.map(([name]) => name);

const ROLLUP = `
    rolled as (
      insert into usage_daily as d (day, workspace_id, key_id, model, requests, errors, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_usd,
                                    unpriced_requests, unpriced_prompt_tokens, unpriced_completion_tokens)
      select (created_at at time zone 'UTC')::date, workspace_id, key_id, model, count(*), count(*) filter (where status <> 'ok'),
             sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(reasoning_tokens), sum(cost_usd),
             count(*) filter (where unpriced), coalesce(sum(prompt_tokens) filter (where unpriced), 0), coalesce(sum(completion_tokens) filter (where unpriced), 0)
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
        cost_usd = d.cost_usd + excluded.cost_usd,
        unpriced_requests = d.unpriced_requests + excluded.unpriced_requests,
        unpriced_prompt_tokens = d.unpriced_prompt_tokens + excluded.unpriced_prompt_tokens,
        unpriced_completion_tokens = d.unpriced_completion_tokens + excluded.unpriced_completion_tokens
      returning 1
    )
    select (select count(*) from inserted)::int as inserted`;

/**
 * One statement for any batch size: each column travels as one parameter, an array literal in
 * text that Postgres parses into a typed array, and `unnest` turns the arrays back into rows. The
 * text never changes, so it is prepared once per connection (a VALUES list per batch size made a
 * new statement, and a new server-side plan, for most batches). Array literals in text work the
 * same on postgres.js and PGlite, with no driver-specific array typing.
 */
const INSERT_BATCH = `
    with inserted as (
      insert into usage_records (${USAGE_COLUMNS.join(', ')})
      select * from unnest(${COLUMNS.map(([, type], c) => `$${c + 1}::text::${type}[]`).join(', ')})
      on conflict (request_id) do nothing
      returning created_at, workspace_id, key_id, model, status, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_usd,
        cost_source = 'none' and prompt_tokens + completion_tokens > 0 as unpriced
    ),${ROLLUP}`;

/** The batch as one Postgres array literal per column, in column order. */
function columnArrays(records: UsageRecord[]): string[] {
  return COLUMNS.map(([, , value]) => {
    let literal = '{';
    for (let i = 0; i < records.length; i++) literal += (i ? ',' : '') + arrayElement(value(records[i]));
    return literal + '}';
  });
}

const NEEDS_ESCAPE = /[\\"]/;

/**
 * One element of an array literal: NULL, a number or boolean as is, text double-quoted with `\\`
 * and `"` escaped and made storable (no NUL, no unpaired surrogate: see db/storable.ts). Every
 * ledger value, spilled and replayed ones included, passes through here.
 */
export function arrayElement(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const text = storableText(String(value));
  return NEEDS_ESCAPE.test(text) ? `"${text.replace(/[\\"]/g, '\\$&')}"` : `"${text}"`;
}

const MAX_ROWS = 1_000;

/**
 * Inserts a batch of records and adds them to the daily rollups in one statement. Only rows that
 * were really inserted reach the rollups (the CTE returns them), so replaying a batch that already
 * landed changes nothing: the write is idempotent on request_id, totals included.
 */
export async function insertUsageBatch(db: Db, records: UsageRecord[]): Promise<number> {
  if (records.length === 0) return 0;
  // Bounded batches keep each statement's arrays (and the server's work per statement) moderate.
  if (records.length > MAX_ROWS) {
    let inserted = 0;
    for (let i = 0; i < records.length; i += MAX_ROWS) inserted += await insertUsageBatch(db, records.slice(i, i + MAX_ROWS));
    return inserted;
  }
  // Duplicates inside one batch would make ON CONFLICT affect a row twice.
  const unique = [...new Map(records.map((r) => [r.requestId, r])).values()];
  const rows = (await runRaw(db, INSERT_BATCH, columnArrays(unique))) as { inserted: number }[];
  return Number(rows[0]?.inserted ?? 0);
}
