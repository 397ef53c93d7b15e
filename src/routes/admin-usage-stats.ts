import { Hono } from 'hono';
import { resolveReportsAccess } from '../middleware/reports-access.js';
import { buildReportFilter, readReportParams } from '../usage/report-filter.js';
import type { ReportFilter } from '../usage/reports.js';
import { errorsByStatus, latencyByModel } from '../usage/stats.js';
import type { AppContext, AppDeps, AppEnv } from './context.js';

/**
 * `GET /admin/usage/latency` and `GET /admin/usage/errors`: the console's latency and error views,
 * with the report filters (`from`, `to`, `period`, `workspace`, `key`, `model`) and the report access rule
 * (the admin token, or a `reports` key for its own workspace).
 */
export function adminUsageStatsRoutes(deps: AppDeps) {
  const stats = new Hono<AppEnv>();

  async function filterOf(c: AppContext): Promise<ReportFilter> {
    const access = await resolveReportsAccess(c, deps);
    // The reports' own parameters (period too), each refused with a 400 when out of what it takes.
    return buildReportFilter(
      deps.keys,
      readReportParams((name) => c.req.query(name)),
      deps.now(),
      access.kind === 'key' ? access.workspaceId : undefined,
    );
  }

  stats.get('/latency', async (c) => {
    const filter = await filterOf(c);
    const data = await latencyByModel(deps.database.db, filter);
    return c.json({ object: 'usage_latency', from: filter.from, to: filter.to, data });
  });

  stats.get('/errors', async (c) => {
    const filter = await filterOf(c);
    const data = await errorsByStatus(deps.database.db, filter);
    return c.json({ object: 'usage_errors', from: filter.from, to: filter.to, data, total: data.reduce((n, r) => n + r.requests, 0) });
  });

  return stats;
}
