import { GatewayError } from '../errors.js';
import { storableText } from '../db/storable.js';
import type { KeyStore } from '../keys/key-store.js';
import type { OutcomeStatus, RequestOutcome } from '../proxy/outcome.js';
import { GROUPS, type Group, type ReportFilter } from './reports.js';

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const MONTH = /^(\d{4})-(\d{2})$/;

/** Record statuses a `status` filter takes (every status the ledger writes). */
export const RECORD_STATUSES = [
  'ok',
  'upstream_error',
  'client_aborted',
  'timeout',
  'rejected',
  'aborted',
] as const satisfies readonly OutcomeStatus[];
/** Proxied routes a `route` filter takes. */
export const RECORD_ROUTES = [
  'chat.completions',
  'completions',
  'responses',
  'embeddings',
] as const satisfies readonly RequestOutcome['route'][];
// A status or route added to the outcome type and not here fails the build.
const everyStatus: Record<Exclude<OutcomeStatus, (typeof RECORD_STATUSES)[number]>, never> = {};
const everyRoute: Record<Exclude<RequestOutcome['route'], (typeof RECORD_ROUTES)[number]>, never> = {};
void everyStatus;
void everyRoute;

/** Named periods `period` takes, besides a calendar month as YYYY-MM. Weeks start on Monday (as group_by=week). */
export const PERIODS = ['today', 'yesterday', 'this_week', 'last_week', 'this_month', 'last_month'] as const;

export interface ReportParams {
  from?: string;
  to?: string;
  /** A named period or a month (YYYY-MM) instead of from/to. */
  period?: string;
  workspace?: string;
  key?: string;
  model?: string;
}

/** Reads the report parameters every report takes from a query (empty values count as absent). */
export function readReportParams(query: (name: string) => string | undefined): ReportParams {
  const q = (name: string) => query(name) || undefined;
  return { from: q('from'), to: q('to'), period: q('period'), workspace: q('workspace'), key: q('key'), model: q('model') };
}

/** OpenAI's shape for a value outside a closed list: a 400 naming the parameter and what it takes. */
export function invalidChoice(param: string, got: string, allowed: readonly string[], extra = ''): GatewayError {
  const shown = got.length > 100 ? `${got.slice(0, 100)}…` : got;
  const values = allowed.map((v) => `'${v}'`).join(', ');
  return new GatewayError('invalid_value', `Invalid value for '${param}': '${shown}'. Supported values are: ${values}${extra}.`, { param });
}

/** A comma-separated list of values from a closed set (`status=upstream_error,timeout`); undefined when absent. */
export function parseChoices<T extends string>(value: string | undefined, param: string, allowed: readonly T[]): T[] | undefined {
  if (value === undefined || value === '') return undefined;
  const picked = value.split(',').map((v) => v.trim());
  for (const v of picked) if (!(allowed as readonly string[]).includes(v)) throw invalidChoice(param, v, allowed);
  return [...new Set(picked)] as T[];
}

function parseDay(value: string | undefined, name: string, fallback: string): string {
  const v = value ?? fallback;
  const date = new Date(`${v}T00:00:00Z`);
  if (!DAY.test(v) || Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== v) {
    throw new GatewayError('invalid_value', `${name} must be a date as YYYY-MM-DD (UTC).`, { param: name });
  }
  return v;
}

const addDays = (day: string, n: number) => new Date(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
const utcDay = (y: number, m: number, d: number) => new Date(Date.UTC(y, m, d)).toISOString().slice(0, 10);

/** A period as [from, to): UTC days, `to` exclusive. */
export function periodRange(period: string, now: number): { from: string; to: string } {
  const today = new Date(now).toISOString().slice(0, 10);
  const d = new Date(now);
  const [y, m] = [d.getUTCFullYear(), d.getUTCMonth()];
  const monday = addDays(today, -((d.getUTCDay() + 6) % 7));
  switch (period) {
    case 'today':
      return { from: today, to: addDays(today, 1) };
    case 'yesterday':
      return { from: addDays(today, -1), to: today };
    case 'this_week':
      return { from: monday, to: addDays(monday, 7) };
    case 'last_week':
      return { from: addDays(monday, -7), to: monday };
    case 'this_month':
      return { from: utcDay(y, m, 1), to: utcDay(y, m + 1, 1) };
    case 'last_month':
      return { from: utcDay(y, m - 1, 1), to: utcDay(y, m, 1) };
  }
  const month = MONTH.exec(period);
  if (month && Number(month[2]) >= 1 && Number(month[2]) <= 12) {
    const [yy, mm] = [Number(month[1]), Number(month[2]) - 1];
    return { from: utcDay(yy, mm, 1), to: utcDay(yy, mm + 1, 1) };
  }
  throw invalidChoice('period', period, PERIODS, ', or a month as YYYY-MM');
}

/**
 * Turns report parameters into a filter: `from` inclusive and `to` exclusive UTC days (default:
 * this month so far), or a `period`; workspace and key by name or id, an unknown one "not found"
 * (never an empty report that looks like no usage). With `scopeWorkspaceId` (a `reports` key) the
 * filter never leaves that workspace, and another workspace or its keys are "not found".
 */
export async function buildReportFilter(
  keys: KeyStore,
  params: ReportParams,
  now: number,
  scopeWorkspaceId?: string,
): Promise<ReportFilter> {
  const today = new Date(now).toISOString().slice(0, 10);
  let from: string;
  let to: string;
  if (params.period) {
    if (params.from || params.to) {
      throw new GatewayError('invalid_value', 'period replaces from and to: give one or the other.', { param: 'period' });
    }
    ({ from, to } = periodRange(params.period, now));
  } else {
    from = parseDay(params.from, 'from', `${today.slice(0, 8)}01`);
    to = parseDay(params.to, 'to', addDays(today, 1));
  }
  if (from >= to) throw new GatewayError('invalid_value', '`from` must be before `to` (`to` is exclusive).', { param: 'to' });
  const filter: ReportFilter = { from, to };
  if (scopeWorkspaceId) filter.workspaceIds = [scopeWorkspaceId];
  if (params.workspace) {
    const ws = await keys.findWorkspace(params.workspace);
    if (!ws || (scopeWorkspaceId && ws.id !== scopeWorkspaceId)) {
      throw new GatewayError('not_found', `Workspace "${params.workspace}" not found.`, { param: 'workspace' });
    }
    filter.workspaceIds = [ws.id];
  }
  if (params.key) {
    const wanted = storableText(params.key);
    const matches = (await keys.listKeys(filter.workspaceIds?.[0])).filter((k) => k.id === wanted || k.name === wanted);
    // The gateway's own calls (memory summaries, embeddings) are recorded under `gateway:…` ids.
    if (matches.length === 0 && !wanted.startsWith('gateway:')) {
      const where = params.workspace ? ` in workspace "${params.workspace}"` : '';
      throw new GatewayError('not_found', `Key "${params.key}" not found${where} (key takes a key name or id).`, { param: 'key' });
    }
    filter.keyIds = matches.length ? matches.map((k) => k.id) : [wanted];
  }
  // Stored models were made storable; a filter is compared the same way (and never poisons a query).
  if (params.model) filter.model = storableText(params.model);
  return filter;
}

/** Parses `group_by` (default `day`): any of day, week, month, workspace, key, model. */
export function parseGroups(value: string | undefined): Group[] {
  const groups = (value ?? 'day')
    .split(',')
    .map((g) => g.trim())
    .filter(Boolean);
  for (const g of groups) {
    if (!(GROUPS as readonly string[]).includes(g)) throw invalidChoice('group_by', g, GROUPS, ' (comma-separated)');
  }
  return [...new Set(groups)] as Group[];
}

/** Parses `format` (default `json`). */
export function parseFormat(value: string | undefined): 'json' | 'csv' {
  const format = value ?? 'json';
  if (format !== 'json' && format !== 'csv') throw invalidChoice('format', format, ['json', 'csv']);
  return format;
}
