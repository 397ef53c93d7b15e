import { Hono } from 'hono';
import { GatewayError } from '../errors.js';
import { resolveReportsAccess, type ReportsAccess } from '../middleware/reports-access.js';
import { toCsv } from '../usage/csv.js';
import {
  buildReportFilter,
  parseChoices,
  parseFormat,
  parseGroups,
  readReportParams,
  RECORD_ROUTES,
  RECORD_STATUSES,
} from '../usage/report-filter.js';
import { RECORD_COLUMNS, reportColumns, usageRecordsPage, usageReport, type ReportFilter } from '../usage/reports.js';
import type { AppContext, AppDeps, AppEnv } from './context.js';

async function readFilter(c: AppContext, deps: AppDeps, access: ReportsAccess): Promise<ReportFilter> {
  return buildReportFilter(
    deps.keys,
    readReportParams((name) => c.req.query(name)),
    deps.now(),
    access.kind === 'key' ? access.workspaceId : undefined,
  );
}

/** The days a CSV covers, as its name says them: `from` to the last day included (`to` is exclusive). */
function days(filter: ReportFilter): string {
  const last = new Date(Date.parse(`${filter.to}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
  return `${filter.from}_${last}`;
}

function csvResponse(c: AppContext, name: string, body: string) {
  return c.body(body, 200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="${name}"` });
}

/**
 * `GET /admin/usage` and `GET /admin/usage/requests`: the admin token, or a `reports` key (own
 * workspace). Every parameter is checked before any query: a value outside what it takes is a 400
 * naming the parameter and the values it takes, never an empty report.
 */
export function adminUsageRoutes(deps: AppDeps) {
  const usage = new Hono<AppEnv>();
  const recording = () => (deps.usage.enabled ? 'on' : 'off');

  usage.get('/', async (c) => {
    const access = await resolveReportsAccess(c, deps);
    // The grouped report reads the daily rollups, which keep neither status nor route: such a
    // filter would be silently ignored, and the totals taken for filtered ones.
    for (const param of ['status', 'route']) {
      if (c.req.query(param)) {
        throw new GatewayError(
          'invalid_value',
          `'${param}' is a filter of /admin/usage/requests only: /admin/usage sums daily rollups, which keep no ${param} (failed requests are counted in "errors").`,
          { param },
        );
      }
    }
    const groups = parseGroups(c.req.query('group_by'));
    const csv = parseFormat(c.req.query('format')) === 'csv';
    const filter = await readFilter(c, deps, access);
    const report = await usageReport(deps.database.db, groups, filter);
    c.header('x-usage-recording', recording());
    if (csv) return csvResponse(c, `usage_${days(filter)}.csv`, toCsv(reportColumns(groups), report.data));
    return c.json({ object: 'usage_report', from: filter.from, to: filter.to, group_by: groups, recording: recording(), ...report });
  });

  usage.get('/requests', async (c) => {
    const access = await resolveReportsAccess(c, deps);
    const csv = parseFormat(c.req.query('format')) === 'csv';
    const statuses = parseChoices(c.req.query('status'), 'status', RECORD_STATUSES);
    const routes = parseChoices(c.req.query('route'), 'route', RECORD_ROUTES);
    const rawLimit = c.req.query('limit') ?? '100';
    const limit = /^\d{1,4}$/.test(rawLimit) ? Number(rawLimit) : NaN;
    if (!(limit >= 1 && limit <= 1000))
      throw new GatewayError(
        'invalid_value',
        `Invalid value for 'limit': '${rawLimit.slice(0, 100)}'. Supported values are whole numbers from 1 to 1000.`,
        { param: 'limit' },
      );
    let cursor: { createdAt: string; requestId: string } | undefined;
    const rawCursor = c.req.query('cursor');
    if (rawCursor) {
      try {
        const [createdAt, requestId] = JSON.parse(Buffer.from(rawCursor, 'base64url').toString('utf8'));
        if (typeof createdAt !== 'string' || typeof requestId !== 'string' || Number.isNaN(Date.parse(createdAt))) throw new Error('bad');
        cursor = { createdAt, requestId };
      } catch {
        throw new GatewayError('invalid_value', 'cursor is not one this API returned.', { param: 'cursor' });
      }
    }
    const filter = await readFilter(c, deps, access);
    const page = await usageRecordsPage(deps.database.db, {
      ...filter,
      from: `${filter.from}T00:00:00Z`,
      to: `${filter.to}T00:00:00Z`,
      statuses,
      routes,
      limit,
      cursor,
    });
    const next = page.next ? Buffer.from(JSON.stringify([page.next.createdAt, page.next.requestId])).toString('base64url') : null;
    c.header('x-usage-recording', recording());
    if (next) c.header('x-next-cursor', next);
    if (csv) return csvResponse(c, `usage_requests_${days(filter)}.csv`, toCsv([...RECORD_COLUMNS], page.data));
    return c.json({ object: 'list', data: page.data, next_cursor: next, recording: recording() });
  });

  return usage;
}
