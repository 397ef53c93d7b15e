import { describe, expect, it } from 'vitest';
import type { GatewayError } from '../errors.js';
import type { KeyStore } from '../keys/key-store.js';
import { buildReportFilter, parseChoices, parseFormat, parseGroups, periodRange, RECORD_ROUTES, RECORD_STATUSES } from './report-filter.js';

const NOW = Date.parse('2026-11-26T15:30:00Z');
const workspaces = [
  { id: 'ws_a', name: 'acme', createdAt: new Date(0) },
  { id: 'ws_b', name: 'beta', createdAt: new Date(0) },
];
const keys = [
  { id: 'key_1', name: 'app', workspaceId: 'ws_a' },
  { id: 'key_2', name: 'app', workspaceId: 'ws_b' },
  { id: 'key_3', name: 'batch', workspaceId: 'ws_a' },
];
const store = {
  findWorkspace: async (nameOrId: string) => workspaces.find((w) => w.id === nameOrId || w.name === nameOrId),
  listKeys: async (workspaceId?: string) => keys.filter((k) => !workspaceId || k.workspaceId === workspaceId),
} as unknown as KeyStore;

const refusal = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: GatewayError) => ({ status: e.status, code: e.code, param: e.param, message: e.message }),
  );

describe('report filter', () => {
  it('defaults to this month so far: the 1st inclusive, tomorrow exclusive (UTC)', async () => {
    expect(await buildReportFilter(store, {}, NOW)).toEqual({ from: '2026-11-01', to: '2026-11-27' });
    // Tomorrow across a month and a year end.
    expect(await buildReportFilter(store, {}, Date.parse('2026-12-31T23:59:59Z'))).toEqual({ from: '2026-12-01', to: '2027-01-01' });
  });

  it('takes explicit days', async () => {
    expect(await buildReportFilter(store, { from: '2026-10-01', to: '2026-10-02' }, NOW)).toEqual({ from: '2026-10-01', to: '2026-10-02' });
  });

  it.each([
    [{ from: '2026-1-01' }, 'from'],
    [{ from: '2026-02-30' }, 'from'],
    [{ from: '2026-13-01' }, 'from'],
    [{ from: 'x2026-01-01' }, 'from'],
    [{ from: '2026-01-01x' }, 'from'],
    [{ to: 'tomorrow' }, 'to'],
  ])('refuses a day that is not YYYY-MM-DD: %j', async (params, param) => {
    expect(await refusal(buildReportFilter(store, params, NOW))).toEqual({
      status: 400,
      code: 'invalid_value',
      param,
      message: `${param} must be a date as YYYY-MM-DD (UTC).`,
    });
  });

  it('refuses an empty or backwards range', async () => {
    for (const params of [
      { from: '2026-10-02', to: '2026-10-02' },
      { from: '2026-10-03', to: '2026-10-02' },
    ]) {
      expect(await refusal(buildReportFilter(store, params, NOW))).toMatchObject({
        status: 400,
        param: 'to',
        message: '`from` must be before `to` (`to` is exclusive).',
      });
    }
  });

  it('finds a workspace by name or id, and its keys by name or id', async () => {
    const base = { from: '2026-11-01', to: '2026-11-02' };
    expect(await buildReportFilter(store, { ...base, workspace: 'acme' }, NOW)).toEqual({ ...base, workspaceIds: ['ws_a'] });
    expect(await buildReportFilter(store, { ...base, workspace: 'ws_b' }, NOW)).toEqual({ ...base, workspaceIds: ['ws_b'] });
    expect(await buildReportFilter(store, { ...base, workspace: 'acme', key: 'app' }, NOW)).toEqual({
      ...base,
      workspaceIds: ['ws_a'],
      keyIds: ['key_1'],
    });
    // Without a workspace a key name may match in several.
    expect(await buildReportFilter(store, { ...base, key: 'app' }, NOW)).toEqual({ ...base, keyIds: ['key_1', 'key_2'] });
    expect(await buildReportFilter(store, { ...base, key: 'key_3' }, NOW)).toEqual({ ...base, keyIds: ['key_3'] });
    // A key that matches nothing is not found (never an empty report that looks like no usage)...
    expect(await refusal(buildReportFilter(store, { ...base, key: 'nope' }, NOW))).toEqual({
      status: 404,
      code: 'not_found',
      param: 'key',
      message: 'Key "nope" not found (key takes a key name or id).',
    });
    // ...but the gateway's own calls, recorded under gateway:… ids, can be picked out.
    expect(await buildReportFilter(store, { ...base, key: 'gateway:memory-summary' }, NOW)).toEqual({
      ...base,
      keyIds: ['gateway:memory-summary'],
    });
    expect(await buildReportFilter(store, { ...base, model: 'openai/gpt-4o-mini' }, NOW)).toEqual({ ...base, model: 'openai/gpt-4o-mini' });
  });

  it('an unknown workspace is not found', async () => {
    expect(await refusal(buildReportFilter(store, { workspace: 'nope' }, NOW))).toEqual({
      status: 404,
      code: 'not_found',
      param: 'workspace',
      message: 'Workspace "nope" not found.',
    });
  });

  it('a reports key stays in its own workspace: another one is not found, its keys are not matched', async () => {
    const base = { from: '2026-11-01', to: '2026-11-02' };
    expect(await buildReportFilter(store, base, NOW, 'ws_a')).toEqual({ ...base, workspaceIds: ['ws_a'] });
    expect(await buildReportFilter(store, { ...base, workspace: 'acme' }, NOW, 'ws_a')).toEqual({ ...base, workspaceIds: ['ws_a'] });
    expect(await refusal(buildReportFilter(store, { ...base, workspace: 'beta' }, NOW, 'ws_a'))).toMatchObject({
      status: 404,
      param: 'workspace',
    });
    expect(await buildReportFilter(store, { ...base, key: 'app' }, NOW, 'ws_a')).toEqual({
      ...base,
      workspaceIds: ['ws_a'],
      keyIds: ['key_1'],
    });
    expect(await refusal(buildReportFilter(store, { ...base, key: 'key_2' }, NOW, 'ws_a'))).toMatchObject({ status: 404, param: 'key' });
  });
});

describe('period', () => {
  // 2026-11-26 is a Thursday.
  it.each([
    ['today', '2026-11-26', '2026-11-27'],
    ['yesterday', '2026-11-25', '2026-11-26'],
    ['this_week', '2026-11-23', '2026-11-30'],
    ['last_week', '2026-11-16', '2026-11-23'],
    ['this_month', '2026-11-01', '2026-12-01'],
    ['last_month', '2026-10-01', '2026-11-01'],
    ['2026-02', '2026-02-01', '2026-03-01'],
    ['2025-12', '2025-12-01', '2026-01-01'],
  ])('%s is %s to %s (exclusive)', async (period, from, to) => {
    expect(await buildReportFilter(store, { period }, NOW)).toEqual({ from, to });
    expect(periodRange(period, NOW)).toEqual({ from, to });
  });

  it('crosses year ends, and a Monday or a Sunday is in its own week', () => {
    expect(periodRange('last_month', Date.parse('2027-01-15T00:00:00Z'))).toEqual({ from: '2026-12-01', to: '2027-01-01' });
    expect(periodRange('this_month', Date.parse('2026-12-31T23:59:59Z'))).toEqual({ from: '2026-12-01', to: '2027-01-01' });
    expect(periodRange('this_week', Date.parse('2026-11-23T00:00:00Z'))).toEqual({ from: '2026-11-23', to: '2026-11-30' });
    expect(periodRange('this_week', Date.parse('2026-11-29T23:00:00Z'))).toEqual({ from: '2026-11-23', to: '2026-11-30' });
  });

  it('refuses an unknown period, naming what it takes, and a period with from or to', async () => {
    for (const period of ['month', 'bogus', '2026-13', '2026-00', '2026-1', 'This_month']) {
      expect(await refusal(buildReportFilter(store, { period }, NOW))).toEqual({
        status: 400,
        code: 'invalid_value',
        param: 'period',
        message: `Invalid value for 'period': '${period}'. Supported values are: 'today', 'yesterday', 'this_week', 'last_week', 'this_month', 'last_month', or a month as YYYY-MM.`,
      });
    }
    expect(await refusal(buildReportFilter(store, { period: 'today', from: '2026-11-01' }, NOW))).toMatchObject({
      status: 400,
      param: 'period',
    });
    expect(await refusal(buildReportFilter(store, { period: 'today', to: '2026-11-01' }, NOW))).toMatchObject({
      status: 400,
      param: 'period',
    });
  });
});

describe('closed lists: status, route, format', () => {
  it('takes comma-separated values of the list, refuses anything else naming the param and the values', () => {
    expect(parseChoices(undefined, 'status', RECORD_STATUSES)).toBeUndefined();
    expect(parseChoices('upstream_error, timeout,timeout', 'status', RECORD_STATUSES)).toEqual(['upstream_error', 'timeout']);
    expect(() => parseChoices('bogus', 'status', RECORD_STATUSES)).toThrow(
      "Invalid value for 'status': 'bogus'. Supported values are: 'ok', 'upstream_error', 'client_aborted', 'timeout', 'rejected', 'aborted'.",
    );
    expect(() => parseChoices('ok,', 'status', RECORD_STATUSES)).toThrow("Invalid value for 'status': ''.");
    expect(() => parseChoices('chat', 'route', RECORD_ROUTES)).toThrow(
      "Supported values are: 'chat.completions', 'completions', 'responses', 'embeddings'.",
    );
    expect(parseFormat(undefined)).toBe('json');
    expect(parseFormat('csv')).toBe('csv');
    try {
      parseFormat('xml');
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({
        status: 400,
        code: 'invalid_value',
        param: 'format',
        message: "Invalid value for 'format': 'xml'. Supported values are: 'json', 'csv'.",
      });
    }
  });

  it('cuts a long bad value in the message', () => {
    expect(() => parseChoices('x'.repeat(500), 'status', RECORD_STATUSES)).toThrow(`'${'x'.repeat(100)}…'`);
  });
});

describe('group_by', () => {
  it('defaults to day, trims, drops empties and repeats, keeps the order given', () => {
    expect(parseGroups(undefined)).toEqual(['day']);
    expect(parseGroups(' model , key,,model ')).toEqual(['model', 'key']);
    expect(parseGroups('day,week,month,workspace,key,model')).toEqual(['day', 'week', 'month', 'workspace', 'key', 'model']);
  });

  it('refuses anything else, naming what it takes', () => {
    expect(() => parseGroups('day,hour')).toThrow(
      "Invalid value for 'group_by': 'hour'. Supported values are: 'day', 'week', 'month', 'workspace', 'key', 'model' (comma-separated).",
    );
    try {
      parseGroups('Day');
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ status: 400, code: 'invalid_value', param: 'group_by' });
    }
  });
});
