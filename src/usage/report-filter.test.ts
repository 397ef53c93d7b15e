import { describe, expect, it } from 'vitest';
import type { GatewayError } from '../errors.js';
import type { KeyStore } from '../keys/key-store.js';
import { buildReportFilter, parseGroups } from './report-filter.js';

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

const refusal = (p: Promise<unknown>) => p.then(() => null, (e: GatewayError) => ({ status: e.status, code: e.code, param: e.param, message: e.message }));

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
    expect(await refusal(buildReportFilter(store, params, NOW))).toEqual({ status: 400, code: 'invalid_value', param, message: `${param} must be a date as YYYY-MM-DD (UTC).` });
  });

  it('refuses an empty or backwards range', async () => {
    for (const params of [{ from: '2026-10-02', to: '2026-10-02' }, { from: '2026-10-03', to: '2026-10-02' }]) {
      expect(await refusal(buildReportFilter(store, params, NOW))).toMatchObject({ status: 400, param: 'to', message: '`from` must be before `to` (`to` is exclusive).' });
    }
  });

  it('finds a workspace by name or id, and its keys by name or id', async () => {
    const base = { from: '2026-11-01', to: '2026-11-02' };
    expect(await buildReportFilter(store, { ...base, workspace: 'acme' }, NOW)).toEqual({ ...base, workspaceIds: ['ws_a'] });
    expect(await buildReportFilter(store, { ...base, workspace: 'ws_b' }, NOW)).toEqual({ ...base, workspaceIds: ['ws_b'] });
    expect(await buildReportFilter(store, { ...base, workspace: 'acme', key: 'app' }, NOW)).toEqual({ ...base, workspaceIds: ['ws_a'], keyIds: ['key_1'] });
    // Without a workspace a key name may match in several.
    expect(await buildReportFilter(store, { ...base, key: 'app' }, NOW)).toEqual({ ...base, keyIds: ['key_1', 'key_2'] });
    expect(await buildReportFilter(store, { ...base, key: 'key_3' }, NOW)).toEqual({ ...base, keyIds: ['key_3'] });
    // A key that matches nothing filters to nothing (not to everything).
    expect(await buildReportFilter(store, { ...base, key: 'nope' }, NOW)).toEqual({ ...base, keyIds: [] });
    expect(await buildReportFilter(store, { ...base, model: 'openai/gpt-4o-mini' }, NOW)).toEqual({ ...base, model: 'openai/gpt-4o-mini' });
  });

  it('an unknown workspace is not found', async () => {
    expect(await refusal(buildReportFilter(store, { workspace: 'nope' }, NOW))).toEqual({ status: 404, code: 'not_found', param: 'workspace', message: 'Workspace "nope" not found.' });
  });

  it("a reports key stays in its own workspace: another one is not found, its keys are not matched", async () => {
    const base = { from: '2026-11-01', to: '2026-11-02' };
    expect(await buildReportFilter(store, base, NOW, 'ws_a')).toEqual({ ...base, workspaceIds: ['ws_a'] });
    expect(await buildReportFilter(store, { ...base, workspace: 'acme' }, NOW, 'ws_a')).toEqual({ ...base, workspaceIds: ['ws_a'] });
    expect(await refusal(buildReportFilter(store, { ...base, workspace: 'beta' }, NOW, 'ws_a'))).toMatchObject({ status: 404, param: 'workspace' });
    expect(await buildReportFilter(store, { ...base, key: 'app' }, NOW, 'ws_a')).toEqual({ ...base, workspaceIds: ['ws_a'], keyIds: ['key_1'] });
  });
});

describe('group_by', () => {
  it('defaults to day, trims, drops empties and repeats, keeps the order given', () => {
    expect(parseGroups(undefined)).toEqual(['day']);
    expect(parseGroups(' model , key,,model ')).toEqual(['model', 'key']);
    expect(parseGroups('day,week,month,workspace,key,model')).toEqual(['day', 'week', 'month', 'workspace', 'key', 'model']);
  });

  it('refuses anything else, naming what it takes', () => {
    expect(() => parseGroups('day,hour')).toThrow('group_by takes day, week, month, workspace, key, model; got "hour".');
    try {
      parseGroups('Day');
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ status: 400, code: 'invalid_value', param: 'group_by' });
    }
  });
});
