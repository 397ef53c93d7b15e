import { GatewayError } from '../errors.js';
import { storableText } from '../db/storable.js';
import type { KeyStore } from '../keys/key-store.js';
import { GROUPS, type Group, type ReportFilter } from './reports.js';

const DAY = /^\d{4}-\d{2}-\d{2}$/;

export interface ReportParams {
  from?: string;
  to?: string;
  workspace?: string;
  key?: string;
  model?: string;
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

/**
 * Turns report parameters into a filter: `from` inclusive and `to` exclusive UTC days (default:
 * this month so far), workspace and key by name or id. With `scopeWorkspaceId` (a `reports` key)
 * the filter never leaves that workspace, and another workspace is "not found".
 */
export async function buildReportFilter(keys: KeyStore, params: ReportParams, now: number, scopeWorkspaceId?: string): Promise<ReportFilter> {
  const today = new Date(now).toISOString().slice(0, 10);
  const from = parseDay(params.from, 'from', `${today.slice(0, 8)}01`);
  const to = parseDay(params.to, 'to', addDays(today, 1));
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
    filter.keyIds = matches.map((k) => k.id);
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
    if (!(GROUPS as readonly string[]).includes(g)) {
      throw new GatewayError('invalid_value', `group_by takes ${GROUPS.join(', ')}; got "${g}".`, { param: 'group_by' });
    }
  }
  return [...new Set(groups)] as Group[];
}
