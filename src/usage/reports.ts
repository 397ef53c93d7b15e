import { sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { formatDecimal, normalizeDecimal, parseDecimal } from './decimal.js';

export const GROUPS = ['day', 'week', 'month', 'workspace', 'key', 'model'] as const;
export type Group = (typeof GROUPS)[number];

export interface ReportFilter {
  /** YYYY-MM-DD, inclusive. */
  from: string;
  /** YYYY-MM-DD, exclusive. */
  to: string;
  workspaceIds?: string[];
  keyIds?: string[];
  model?: string;
}

export interface Totals {
  requests: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: string;
  /** Requests with tokens but no price (recorded at $0), and their tokens. */
  unpriced_requests: number;
  unpriced_tokens: number;
}

export type ReportRow = Record<string, string | number | null> & Totals;

/**
 * Each grouping: what the inner aggregate groups by (ids and dates only, so the database sorts few,
 * small keys), and what the outer query shows (names joined after aggregation).
 */
const GROUP_SQL: Record<Group, { inner: SQL; outer: SQL; columns: string[] }> = {
  day: { inner: sql`d.day as g_day`, outer: sql`to_char(g.g_day, 'YYYY-MM-DD') as day`, columns: ['day'] },
  week: { inner: sql`date_trunc('week', d.day)::date as g_week`, outer: sql`to_char(g.g_week, 'YYYY-MM-DD') as week`, columns: ['week'] },
  month: {
    inner: sql`date_trunc('month', d.day)::date as g_month`,
    outer: sql`to_char(g.g_month, 'YYYY-MM-DD') as month`,
    columns: ['month'],
  },
  workspace: {
    inner: sql`d.workspace_id as g_workspace`,
    outer: sql`w.name as workspace, g.g_workspace as workspace_id`,
    columns: ['workspace', 'workspace_id'],
  },
  key: { inner: sql`d.key_id as g_key`, outer: sql`g.g_key as key, k.name as key_name`, columns: ['key', 'key_name'] },
  model: { inner: sql`d.model as g_model`, outer: sql`g.g_model as model`, columns: ['model'] },
};

/**
 * Grouped by key but not by workspace, rows also name the key's workspace (a key belongs to one, so
 * the grouping is the same): key names repeat across workspaces. Null for the gateway's own calls.
 */
const KEY_WORKSPACE = { outer: sql`kw.name as workspace, k.workspace_id as workspace_id`, columns: ['workspace', 'workspace_id'] };
const keyWorkspace = (groups: Group[]) => groups.includes('key') && !groups.includes('workspace');

function shownColumns(groups: Group[]): string[] {
  return groups.flatMap((g) => [...GROUP_SQL[g].columns, ...(g === 'key' && keyWorkspace(groups) ? KEY_WORKSPACE.columns : [])]);
}

/** The columns a report with these groups has, in order (also the CSV header). */
export function reportColumns(groups: Group[]): string[] {
  return [
    ...shownColumns(groups),
    'requests',
    'errors',
    'prompt_tokens',
    'completion_tokens',
    'cost_usd',
    'unpriced_requests',
    'unpriced_tokens',
  ];
}

function whereClause(f: ReportFilter): SQL {
  const parts: SQL[] = [sql`d.day >= ${f.from}::date`, sql`d.day < ${f.to}::date`];
  if (f.workspaceIds) parts.push(inList(sql`d.workspace_id`, f.workspaceIds));
  if (f.keyIds) parts.push(inList(sql`d.key_id`, f.keyIds));
  if (f.model) parts.push(sql`d.model = ${f.model}`);
  return sql.join(parts, sql` and `);
}

/** `column in (…ids)`; an empty list matches nothing. */
function inList(column: SQL, ids: string[]): SQL {
  return ids.length
    ? sql`${column} in (${sql.join(
        ids.map((id) => sql`${id}`),
        sql`, `,
      )})`
    : sql`false`;
}

function rowsOf(result: unknown): Record<string, any>[] {
  return (Array.isArray(result) ? result : (result as { rows: Record<string, any>[] }).rows) as Record<string, any>[];
}

/**
 * Usage totals from the daily rollups (never the raw table), grouped as asked. Money is summed as
 * numeric in the database and returned as decimal text; the totals are exact sums of the rows.
 */
export async function usageReport(db: Db, groups: Group[], filter: ReportFilter): Promise<{ data: ReportRow[]; totals: Totals }> {
  const inner = groups.map((g) => GROUP_SQL[g].inner);
  const outer = groups.flatMap((g) => [GROUP_SQL[g].outer, ...(g === 'key' && keyWorkspace(groups) ? [KEY_WORKSPACE.outer] : [])]);
  const positions = groups.map((_, i) => sql.raw(String(i + 1)));
  const orderBy = groups.map((g) => sql.raw(`g.g_${g}`));
  const query = sql`
    select ${outer.length ? sql`${sql.join(outer, sql`, `)},` : sql``}
      g.requests, g.errors, g.prompt_tokens, g.completion_tokens, g.cost_usd, g.unpriced_requests, g.unpriced_tokens
    from (
      select ${inner.length ? sql`${sql.join(inner, sql`, `)},` : sql``}
        sum(d.requests)::bigint as requests, sum(d.errors)::bigint as errors,
        sum(d.prompt_tokens)::bigint as prompt_tokens, sum(d.completion_tokens)::bigint as completion_tokens,
        sum(d.cost_usd)::text as cost_usd,
        sum(d.unpriced_requests)::bigint as unpriced_requests, sum(d.unpriced_prompt_tokens + d.unpriced_completion_tokens)::bigint as unpriced_tokens
      from usage_daily d
      where ${whereClause(filter)}
      ${positions.length ? sql`group by ${sql.join(positions, sql`, `)}` : sql``}
    ) g
    ${groups.includes('workspace') ? sql`left join workspaces w on w.id = g.g_workspace` : sql``}
    ${groups.includes('key') ? sql`left join api_keys k on k.id = g.g_key` : sql``}
    ${keyWorkspace(groups) ? sql`left join workspaces kw on kw.id = k.workspace_id` : sql``}
    ${orderBy.length ? sql`order by ${sql.join(orderBy, sql`, `)}` : sql``}
  `;
  const raw = rowsOf(await db.execute(query));
  const totals = { requests: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0, cost: 0n, unpriced_requests: 0, unpriced_tokens: 0 };
  const data: ReportRow[] = [];
  for (const r of raw) {
    if (r.requests === null) continue; // no groups and no rows: sum() gives one all-null row
    const row: Record<string, string | number | null> = {};
    for (const col of shownColumns(groups)) row[col] = (r[col] as string | null) ?? null;
    const cost = normalizeDecimal(r.cost_usd as string);
    const out = {
      ...row,
      requests: Number(r.requests),
      errors: Number(r.errors),
      prompt_tokens: Number(r.prompt_tokens),
      completion_tokens: Number(r.completion_tokens),
      cost_usd: cost,
      unpriced_requests: Number(r.unpriced_requests),
      unpriced_tokens: Number(r.unpriced_tokens),
    } as ReportRow;
    totals.requests += out.requests;
    totals.errors += out.errors;
    totals.prompt_tokens += out.prompt_tokens;
    totals.completion_tokens += out.completion_tokens;
    totals.cost += parseDecimal(cost);
    totals.unpriced_requests += out.unpriced_requests;
    totals.unpriced_tokens += out.unpriced_tokens;
    data.push(out);
  }
  const { cost, ...counts } = totals;
  return {
    data,
    totals: {
      requests: counts.requests,
      errors: counts.errors,
      prompt_tokens: counts.prompt_tokens,
      completion_tokens: counts.completion_tokens,
      cost_usd: formatDecimal(cost),
      unpriced_requests: counts.unpriced_requests,
      unpriced_tokens: counts.unpriced_tokens,
    },
  };
}

export interface RecordsQuery extends ReportFilter {
  statuses?: string[];
  routes?: string[];
  limit: number;
  cursor?: { createdAt: string; requestId: string };
}

/**
 * The per-request report's columns, in order (also its CSV header): the ledger's columns with the
 * workspace's and the key's names beside their ids (names as they are now; null for the gateway's
 * own `gateway:…` calls, which have no key).
 */
export const RECORD_COLUMNS: readonly string[] = [
  'request_id',
  'client_request_id',
  'created_at',
  'workspace_id',
  'workspace_name',
  'key_id',
  'key_name',
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
];

/** Raw records, newest first, paginated by a (created_at, request_id) cursor, with workspace and key names. */
export async function usageRecordsPage(db: Db, q: RecordsQuery) {
  const parts: SQL[] = [sql`r.created_at >= ${q.from}::timestamptz`, sql`r.created_at < ${q.to}::timestamptz`];
  if (q.workspaceIds) parts.push(inList(sql`r.workspace_id`, q.workspaceIds));
  if (q.keyIds) parts.push(inList(sql`r.key_id`, q.keyIds));
  if (q.model) parts.push(sql`r.model = ${q.model}`);
  if (q.statuses) parts.push(inList(sql`r.status`, q.statuses));
  if (q.routes) parts.push(inList(sql`r.route`, q.routes));
  if (q.cursor) parts.push(sql`(r.created_at, r.request_id) < (${q.cursor.createdAt}::timestamptz, ${q.cursor.requestId})`);
  // The page is cut first, then the names are joined to its rows only (by primary key).
  const raw = rowsOf(
    await db.execute(sql`
      select p.request_id, p.client_request_id, to_char(p.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as created_at,
        p.workspace_id, w.name as workspace_name, p.key_id, k.name as key_name, p.route,
        p.model_requested, p.model_served, p.model, p.thread_id, p.stream, p.status, p.http_status, p.error_code, p.prompt_tokens, p.completion_tokens,
        p.cached_tokens, p.reasoning_tokens, p.cost_usd::text as cost_usd, p.cost_source, p.estimated, p.latency_ms, p.ttfb_ms, p.generation_id, p.provider
      from (
        select r.* from usage_records r
        where ${sql.join(parts, sql` and `)}
        order by r.created_at desc, r.request_id desc
        limit ${q.limit + 1}
      ) p
      left join workspaces w on w.id = p.workspace_id
      left join api_keys k on k.id = p.key_id
      order by p.created_at desc, p.request_id desc
    `),
  );
  const more = raw.length > q.limit;
  const data: Record<string, any>[] = raw.slice(0, q.limit).map((r) => ({
    ...r,
    http_status: Number(r.http_status),
    prompt_tokens: Number(r.prompt_tokens),
    completion_tokens: Number(r.completion_tokens),
    cached_tokens: Number(r.cached_tokens),
    reasoning_tokens: Number(r.reasoning_tokens),
    latency_ms: Number(r.latency_ms),
    ttfb_ms: r.ttfb_ms === null ? null : Number(r.ttfb_ms),
    cost_usd: normalizeDecimal(r.cost_usd as string),
  }));
  const last = data.at(-1);
  return { data, next: more && last ? { createdAt: last.created_at as string, requestId: last.request_id as string } : null };
}

/**
 * Models with usage recorded without a price (no upstream cost, no catalog price) since `fromDay`,
 * with their unpriced request counts, from the rollups.
 */
export async function unpricedModels(db: Db, fromDay: string): Promise<{ model: string; requests: number }[]> {
  const rows = rowsOf(
    await db.execute(sql`
      select model, sum(unpriced_requests)::bigint as requests
      from usage_daily
      where day >= ${fromDay}::date and unpriced_requests > 0
      group by model
      order by model
      limit 100
    `),
  );
  return rows.map((r) => ({ model: String(r.model), requests: Number(r.requests) }));
}
