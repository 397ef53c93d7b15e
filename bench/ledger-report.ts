// A month's usage report grouped by key × model over 1,000,000 records: seeded on the server with
// generate_series, usage_daily built with one group-by of the same shape insertUsageBatch maintains,
// then usageReport (src/usage/reports.ts) timed; a plain group-by on usage_records for contrast.

import { sql } from 'drizzle-orm';
import type { Db } from '../src/db/client.js';
import { usageReport } from '../src/usage/reports.js';
import { percentile } from './report.js';

const rowsOf = (r: unknown) => (Array.isArray(r) ? r : (r as { rows: unknown[] }).rows) as Record<string, any>[];

export interface ReportResult {
  records: number;
  dailyRows: number;
  keys: number;
  models: number;
  days: number;
  from: string;
  to: string;
  seedSeconds: number;
  rollupSeconds: number;
  reportRows: number;
  reportTotal: number;
  timings: number[];
  p50: number;
  p99: number;
  rawMs: number;
  rawRows: number;
  rawMatches: boolean;
}

/** The previous full month (UTC) as [from, to) days, and its length in days. */
export function previousMonth(now = Date.now()) {
  const d = new Date(now);
  const from = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1));
  const to = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
  const day = (x: Date) => x.toISOString().slice(0, 10);
  return { from: day(from), to: day(to), days: Math.round((to.getTime() - from.getTime()) / 86_400_000) };
}

export async function measureReport(
  db: Db,
  o: { records: number; keys: number; models: number; warmups: number; runs: number },
): Promise<ReportResult> {
  const { from, to, days } = previousMonth();
  const { records: n, keys, models } = o;
  await db.execute(sql`truncate usage_records, usage_daily`);
  // Workspaces and keys exist, so the report's join on api_keys finds names as in production.
  await db.execute(
    sql`insert into workspaces (id, name) select 'ws_rep_' || w, 'report-bench-' || w from generate_series(0, 3) w on conflict do nothing`,
  );
  await db.execute(sql`
    insert into api_keys (id, workspace_id, name, key_hash, prefix, scopes)
    select 'key_rep_' || k, 'ws_rep_' || (k % 4), 'key-' || k, 'hash_rep_' || k, 'cmg_rep', array['proxy']
    from generate_series(0, ${keys - 1}::int) k on conflict do nothing`);

  // Record g: key g % keys, model (g / keys) % models, day (g / (keys*models)) % days: every
  // key × model × day combination occurs, ~n / (keys*models*days) times each.
  let t = performance.now();
  await db.execute(sql`
    insert into usage_records (request_id, created_at, workspace_id, key_id, route, model_requested, model_served, model, thread_id,
      stream, status, http_status, error_code, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_usd, cost_source,
      estimated, latency_ms, ttfb_ms, generation_id, provider)
    select 'req_rep_' || g,
      ${from}::timestamptz + ((g / ${keys * models}::int) % ${days}::int) * interval '1 day' + (g % 86400) * interval '1 second',
      'ws_rep_' || ((g % ${keys}::int) % 4), 'key_rep_' || (g % ${keys}::int), 'chat.completions',
      'vendor/model-' || ((g / ${keys}::int) % ${models}::int), 'vendor/model-' || ((g / ${keys}::int) % ${models}::int),
      'vendor/model-' || ((g / ${keys}::int) % ${models}::int), case when g % 5 = 0 then 'thread-' || (g % 997) end,
      g % 3 = 0, case when g % 37 = 0 then 'upstream_error' else 'ok' end, case when g % 37 = 0 then 502 else 200 end,
      case when g % 37 = 0 then 'upstream_error' end, 20 + g % 3000, 5 + g % 700, g % 200, 0,
      ((20 + g % 3000) * 0.15 + (5 + g % 700) * 0.6) / 1000000.0, 'upstream', false, 150 + g % 3000, null, 'gen-rep-' || g, 'BenchProvider'
    from generate_series(1, ${n}::int) g`);
  const seedSeconds = (performance.now() - t) / 1000;

  t = performance.now();
  await db.execute(sql`
    insert into usage_daily (day, workspace_id, key_id, model, requests, errors, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_usd)
    select (created_at at time zone 'UTC')::date, workspace_id, key_id, model, count(*), count(*) filter (where status <> 'ok'),
      sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(reasoning_tokens), sum(cost_usd)
    from usage_records group by 1, 2, 3, 4`);
  await db.execute(sql`vacuum analyze usage_records`);
  await db.execute(sql`vacuum analyze usage_daily`);
  const rollupSeconds = (performance.now() - t) / 1000;
  const [{ daily }] = rowsOf(await db.execute(sql`select count(*)::int as daily from usage_daily`));

  const filter = { from, to };
  for (let i = 0; i < o.warmups; i++) await usageReport(db, ['key', 'model'], filter);
  const timings: number[] = [];
  let last: Awaited<ReturnType<typeof usageReport>> | undefined;
  for (let i = 0; i < o.runs; i++) {
    const t1 = performance.now();
    last = await usageReport(db, ['key', 'model'], filter);
    timings.push(performance.now() - t1);
  }

  t = performance.now();
  const raw = rowsOf(
    await db.execute(sql`
      select r.key_id as key, k.name as key_name, r.model, count(*)::bigint as requests, count(*) filter (where r.status <> 'ok')::bigint as errors,
        sum(r.prompt_tokens)::bigint as prompt_tokens, sum(r.completion_tokens)::bigint as completion_tokens, sum(r.cost_usd)::text as cost_usd
      from usage_records r left join api_keys k on k.id = r.key_id
      where r.created_at >= ${from}::timestamptz and r.created_at < ${to}::timestamptz
      group by 1, 2, 3 order by 1, 2, 3`),
  );
  const rawMs = performance.now() - t;
  const rawTotal = raw.reduce((s, r) => s + Number(r.requests), 0);

  return {
    records: n,
    dailyRows: Number(daily),
    keys,
    models,
    days,
    from,
    to,
    seedSeconds,
    rollupSeconds,
    reportRows: last!.data.length,
    reportTotal: last!.totals.requests,
    timings,
    p50: percentile(timings, 50),
    p99: percentile(timings, 99),
    rawMs,
    rawRows: raw.length,
    rawMatches: raw.length === last!.data.length && rawTotal === last!.totals.requests,
  };
}
