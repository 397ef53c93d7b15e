import { sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import type { ReportFilter } from './reports.js';

/** At most this many rows per answer: one per model, or per kind of error. */
const MAX_ROWS = 200;

export interface LatencyRow {
  model: string;
  /** Every request in the range, and those answered `ok` (the percentiles are over those). */
  requests: number;
  ok_requests: number;
  p50_ms: number | null;
  p95_ms: number | null;
  ttfb_p50_ms: number | null;
  ttfb_p95_ms: number | null;
}

export interface ErrorRow {
  status: string;
  http_status: number;
  error_code: string | null;
  requests: number;
  /** Distinct models these errors came from. */
  models: number;
  last_at: string;
}

function rowsOf(result: unknown): Record<string, any>[] {
  return (Array.isArray(result) ? result : (result as { rows: Record<string, any>[] }).rows) as Record<string, any>[];
}

function inList(column: SQL, ids: string[]): SQL {
  return ids.length
    ? sql`${column} in (${sql.join(
        ids.map((id) => sql`${id}`),
        sql`, `,
      )})`
    : sql`false`;
}

/** The records in the filter's range (UTC days, `to` exclusive), workspace, keys and model. */
function recordsWhere(f: ReportFilter, extra: SQL[] = []): SQL {
  const parts: SQL[] = [sql`created_at >= ${`${f.from}T00:00:00Z`}::timestamptz`, sql`created_at < ${`${f.to}T00:00:00Z`}::timestamptz`];
  if (f.workspaceIds) parts.push(inList(sql`workspace_id`, f.workspaceIds));
  if (f.keyIds) parts.push(inList(sql`key_id`, f.keyIds));
  if (f.model) parts.push(sql`model = ${f.model}`);
  return sql.join([...parts, ...extra], sql` and `);
}

const ms = (v: unknown) => (v === null || v === undefined ? null : Math.round(Number(v) * 10) / 10);

/**
 * Latency per model over the range, from the raw records (the rollups keep no timings): total
 * latency and time to first byte at the 50th and 95th percentile of the requests answered `ok`
 * (a refusal in 2 ms or a timeout at 600 s would say nothing about how fast a model answers).
 */
export async function latencyByModel(db: Db, filter: ReportFilter): Promise<LatencyRow[]> {
  const rows = rowsOf(
    await db.execute(sql`
      select model, count(*)::bigint as requests, count(*) filter (where status = 'ok')::bigint as ok_requests,
        percentile_cont(0.5) within group (order by latency_ms) filter (where status = 'ok') as p50,
        percentile_cont(0.95) within group (order by latency_ms) filter (where status = 'ok') as p95,
        percentile_cont(0.5) within group (order by ttfb_ms) filter (where status = 'ok' and ttfb_ms is not null) as ttfb_p50,
        percentile_cont(0.95) within group (order by ttfb_ms) filter (where status = 'ok' and ttfb_ms is not null) as ttfb_p95
      from usage_records
      where ${recordsWhere(filter)}
      group by model
      order by count(*) desc, model
      limit ${MAX_ROWS}
    `),
  );
  return rows.map((r) => ({
    model: String(r.model),
    requests: Number(r.requests),
    ok_requests: Number(r.ok_requests),
    p50_ms: ms(r.p50),
    p95_ms: ms(r.p95),
    ttfb_p50_ms: ms(r.ttfb_p50),
    ttfb_p95_ms: ms(r.ttfb_p95),
  }));
}

/** Requests that did not end `ok`, by status, HTTP status and error code, most frequent first. */
export async function errorsByStatus(db: Db, filter: ReportFilter): Promise<ErrorRow[]> {
  const rows = rowsOf(
    await db.execute(sql`
      select status, http_status, error_code, count(*)::bigint as requests, count(distinct model)::bigint as models,
        to_char(max(created_at) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as last_at
      from usage_records
      where ${recordsWhere(filter, [sql`status <> 'ok'`])}
      group by status, http_status, error_code
      order by count(*) desc, status, http_status, error_code
      limit ${MAX_ROWS}
    `),
  );
  return rows.map((r) => ({
    status: String(r.status),
    http_status: Number(r.http_status),
    error_code: r.error_code === null ? null : String(r.error_code),
    requests: Number(r.requests),
    models: Number(r.models),
    last_at: String(r.last_at),
  }));
}
