import { Hono } from 'hono';
import { GatewayError } from '../errors.js';
import { storableText } from '../db/storable.js';
import { resolveReportsAccess, type ReportsAccess } from '../middleware/reports-access.js';
import { toCsv } from '../usage/csv.js';
import { USAGE_COLUMNS } from '../usage/ledger-store.js';
import { buildReportFilter, parseGroups } from '../usage/report-filter.js';
import { reportColumns, usageRecordsPage, usageReport, type ReportFilter } from '../usage/reports.js';
import type { AppContext, AppDeps, AppEnv } from './context.js';

const RECORD_COLUMNS = [...USAGE_COLUMNS];

async function readFilter(c: AppContext, deps: AppDeps, access: ReportsAccess): Promise<ReportFilter> {
  const q = (name: string) => c.req.query(name) || undefined;
  const params = { from: q('from'), to: q('to'), workspace: q('workspace'), key: q('key'), model: q('model') };
  return buildReportFilter(deps.keys, params, deps.now(), access.kind === 'key' ? access.workspaceId : undefined);
}

function wantsCsv(c: AppContext): boolean {
  const format = c.req.query('format') ?? 'json';
  if (format !== 'json' && format !== 'csv') throw new GatewayError('invalid_value', 'format is json or csv.', { param: 'format' });
  return format === 'csv';
}

function csvResponse(c: AppContext, name: string, body: string) {
  return c.body(body, 200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="${name}"` });
}

/** `GET /admin/usage` and `GET /admin/usage/requests`: the admin token, or a `reports` key (own workspace). */
export function adminUsageRoutes(deps: AppDeps) {
  const usage = new Hono<AppEnv>();
  const recording = () => (deps.usage.enabled ? 'on' : 'off');

  usage.get('/', async (c) => {
    const access = await resolveReportsAccess(c, deps);
    const groups = parseGroups(c.req.query('group_by'));
    const csv = wantsCsv(c);
    const filter = await readFilter(c, deps, access);
    const report = await usageReport(deps.database.db, groups, filter);
    c.header('x-usage-recording', recording());
    if (csv) return csvResponse(c, `usage_${filter.from}_${filter.to}.csv`, toCsv(reportColumns(groups), report.data));
    return c.json({ object: 'usage_report', from: filter.from, to: filter.to, group_by: groups, recording: recording(), ...report });
  });

  usage.get('/requests', async (c) => {
    const access = await resolveReportsAccess(c, deps);
    const csv = wantsCsv(c);
    const filter = await readFilter(c, deps, access);
    const limit = Number(c.req.query('limit') ?? 100);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new GatewayError('invalid_value', 'limit is 1 to 1000.', { param: 'limit' });
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
    const page = await usageRecordsPage(deps.database.db, {
      ...filter,
      from: `${filter.from}T00:00:00Z`,
      to: `${filter.to}T00:00:00Z`,
      status: c.req.query('status') === undefined ? undefined : storableText(c.req.query('status')!),
      limit,
      cursor,
    });
    const next = page.next ? Buffer.from(JSON.stringify([page.next.createdAt, page.next.requestId])).toString('base64url') : null;
    c.header('x-usage-recording', recording());
    if (next) c.header('x-next-cursor', next);
    if (csv) return csvResponse(c, `usage_requests_${filter.from}_${filter.to}.csv`, toCsv(RECORD_COLUMNS, page.data));
    return c.json({ object: 'list', data: page.data, next_cursor: next, recording: recording() });
  });

  return usage;
}
